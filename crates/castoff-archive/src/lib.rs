//! Deterministic archive writers (tar, gzip, zip) and streaming digests shared by the
//! wheel, npm and OCI builders, and the compress-once engine they all splice from; and the
//! one home of the words several crates share: civil dates (`date`), ELF headers (`elf`) and
//! the OCI vocabulary (`oci`), below both the builders and castoff-registry.

pub mod date;
pub mod deflate;
pub mod digest;
pub mod elf;
pub mod foreign;
pub mod oci;
pub mod tar;
pub mod zip;

/// The fixed modification time npm writes into every tarball entry (1985-10-26T08:15:00Z).
pub const NPM_EPOCH: u64 = 499_162_500;
