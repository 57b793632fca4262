//! The network side of castoff: PyPI uploads, npm publishes and OCI distribution pushes,
//! with credentials that never leak. The only crate that opens sockets.

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("castoff/", env!("CARGO_PKG_VERSION"));
