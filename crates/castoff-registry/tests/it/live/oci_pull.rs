//! The read-only pull against real distribution registries (from `cargo xtask test`): a layout
//! pushed with the push API is pulled back by digest through the token registry with a
//! pull-only client, every blob streamed to disk and verified; a missing digest, a descriptor
//! that lies about its blob and wrong credentials are errors naming what failed.

use crate::support::*;
use castoff_registry::oci::{
    Descriptor, OciClient, OciCredentials, OciLayout, OciRepository, PinnedReference, PushOptions,
};
use castoff_registry::{RegistryError, Secret};
use castoff_test_support::TestEnv;

fn check_error(env: &TestEnv, error: &RegistryError) -> String {
    let text = format!(
        "{}\n{error:?}",
        castoff_test_support::with_hint(error, error.hint())
    );
    env.assert_no_secret(&text);
    text
}

#[test]
fn token_registry_pull_by_digest_streams_and_verifies() {
    let env = TestEnv::get();
    let host = TestEnv::host_port(&env.registry_token).to_owned();
    let name = format!("castoff-test/pull-{}", unique_suffix());
    let credentials = OciCredentials::Basic {
        username: env.user.clone(),
        password: Secret::new(env.password.clone()),
    };
    let dir = env.scratch_dir("oci-pull-source");
    let (index, _) = write_oci_layout(&dir, "1.0.0", "pulled", &["linux/amd64"], 0);
    let layout = OciLayout::open(&dir).unwrap();
    let index = index.parse().unwrap();
    let repository = OciRepository::parse(&format!("{host}/{name}")).unwrap();
    OciClient::new(
        &http(),
        repository.clone(),
        credentials.clone(),
        PushOptions::default(),
    )
    .unwrap()
    .push(&layout, &index)
    .unwrap();

    let pinned = PinnedReference::parse(&format!("{host}/{name}:1.0.0@{index}")).unwrap();
    assert_eq!(pinned.repository, repository);
    let puller = OciClient::for_pull(&http(), pinned.repository, credentials.clone()).unwrap();
    let pulled = puller.pull_manifest(&pinned.digest).unwrap();
    assert!(pulled.is_index());
    assert_eq!(
        pulled.bytes,
        std::fs::read(layout.blob_path(&index)).unwrap()
    );
    let manifest = puller.pull_manifest(&pulled.children[0].digest).unwrap();
    let target = env.scratch_dir("oci-pull-target");
    for blob in &manifest.blobs {
        let path = target.join(blob.digest.hex());
        assert_eq!(puller.pull_blob(blob, &path).unwrap(), blob.size);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(layout.blob_path(&blob.digest)).unwrap()
        );
    }
    // Nothing but the blobs: temporary files are renamed or removed.
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        manifest.blobs.len()
    );

    // A descriptor whose size does not match the blob: refused, nothing left behind.
    let layer = &manifest.blobs[1];
    let lying = Descriptor {
        size: layer.size + 1,
        ..layer.clone()
    };
    let stray = env.scratch_dir("oci-pull-lying").join("blob");
    let error = puller.pull_blob(&lying, &stray).unwrap_err();
    let text = check_error(&env, &error);
    assert!(matches!(error, RegistryError::Verify { .. }), "{text}");
    assert!(!stray.exists());
    assert_eq!(
        std::fs::read_dir(stray.parent().unwrap()).unwrap().count(),
        0
    );

    // A digest the registry does not have.
    let missing = format!("sha256:{}", "f".repeat(64)).parse().unwrap();
    let error = puller.pull_manifest(&missing).unwrap_err();
    let text = check_error(&env, &error);
    assert_eq!(error.status(), Some(404), "{text}");
    assert!(text.contains("MANIFEST_UNKNOWN"), "{text}");
    assert!(
        text.contains(&format!("{host}/{name}@sha256:ffff")),
        "{text}"
    );

    // Wrong credentials: the token server says no, and the message says why.
    let wrong = OciClient::for_pull(
        &http(),
        OciRepository::parse(&format!("{host}/{name}")).unwrap(),
        OciCredentials::Basic {
            username: env.user.clone(),
            password: Secret::new("wrong".to_owned()),
        },
    )
    .unwrap();
    let error = wrong.pull_manifest(&index).unwrap_err();
    let text = check_error(&env, &error);
    assert_eq!(error.status(), Some(401), "{text}");
    assert!(
        text.contains("the registry rejected the credentials"),
        "{text}"
    );
}
