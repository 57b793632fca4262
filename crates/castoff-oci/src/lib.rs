//! OCI images built straight from a compiled binary: layers, config, manifests, index,
//! image layout and `docker load` archives, reproducibly and without a daemon.

/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
