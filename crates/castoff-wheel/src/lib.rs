//! Python wheels that carry a Rust binary: platform tags from the binary's headers,
//! METADATA, WHEEL, RECORD and a small module that finds the binary.

/// The Python and ABI tags of a wheel holding only binaries: any Python 3, no ABI.
pub const PYTHON_ABI_TAG: &str = "py3-none";
