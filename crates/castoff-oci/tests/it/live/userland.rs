//! The system data of a `scratch` image, used by a real program under runc: the
//! `userland-probe` fixture (static) loads the platform trust store with rustls-native-certs,
//! looks up a zone with jiff's zoneinfo reader and writes into its home, as the image's user.

use castoff_plan::plan::Userland;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::fixture_release;

use super::real_tools::{build_release, runc_output, runc_run, unpack_host_image};

const PROBE: &str = "/usr/local/bin/userland-probe";

#[test]
fn a_program_under_runc_finds_the_certificates_the_zones_and_its_home() {
    let env = TestEnv::get();
    let release = fixture_release("userland-probe");
    let userland = release.apps[0].oci.as_ref().unwrap().userland;
    assert!(userland.ca_certificates && userland.tzdata, "{userland:?}");
    let (_, built, dir) = build_release(&env, release, "userland-probe", "userland-on");
    let bundle = unpack_host_image(&env, &built, &dir);

    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "certs"]),
        format!(
            "certificates={} errors=0\n",
            castoff_oci::ca_certificate_count()
        )
    );
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "tz", "Europe/Berlin"]),
        "Europe/Berlin +01 +02\n"
    );
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "tz", "America/New_York"]),
        "America/New_York -05 -04\n"
    );
    // umoci's runtime config runs the image's user; its home is writable, / is not.
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "home", "/home/nonroot"]),
        "wrote /home/nonroot/probe.txt as 65532:65532\n"
    );
    let root = runc_output(&env, &bundle, &[PROBE, "home", "/"]);
    assert_eq!(root.status.code(), Some(4), "{root:?}");
    assert!(
        String::from_utf8_lossy(&root.stdout).starts_with("cannot write /probe.txt: "),
        "{root:?}"
    );
}

#[test]
fn without_the_keys_the_program_finds_no_certificates_and_no_zones() {
    let env = TestEnv::get();
    let mut release = fixture_release("userland-probe");
    release.apps[0].oci.as_mut().unwrap().userland = Userland::default();
    let (_, built, dir) = build_release(&env, release, "userland-probe", "userland-off");
    let bundle = unpack_host_image(&env, &built, &dir);

    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "certs"]),
        "certificates=0 errors=0\n"
    );
    let zone = runc_output(&env, &bundle, &[PROBE, "tz", "Europe/Berlin"]);
    assert_eq!(zone.status.code(), Some(3), "{zone:?}");
    assert!(
        String::from_utf8_lossy(&zone.stdout).starts_with("no zone Europe/Berlin: "),
        "{zone:?}"
    );
    // The home exists without the keys too.
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "home", "/home/nonroot"]),
        "wrote /home/nonroot/probe.txt as 65532:65532\n"
    );
}

/// `oci.files` with a directory and `oci.volumes` under runc: the program, as the image's
/// non-root user, reads the copied tree with its modes and owner, and writes into the volume
/// directory (owned by that user) while `/` stays read-only to it.
#[test]
fn a_program_under_runc_reads_a_copied_tree_and_writes_its_volume() {
    use castoff_plan::plan::ExtraFile;
    let env = TestEnv::get();
    let mut release = fixture_release("userland-probe");
    let dir = env.scratch_dir("userland-files-source");
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(workspace.join("site/css")).unwrap();
    std::fs::write(workspace.join("site/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(workspace.join("site/css/app.css"), "a{}\n").unwrap();
    release.workspace_root = workspace.clone();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.userland = Userland::default();
    oci.files = vec![ExtraFile {
        src: workspace.join("site"),
        glob: None,
        dst: "/srv/www".to_owned(),
        mode: Some(0o640),
        dir_mode: 0o750,
        owner: (65532, 65532),
    }];
    oci.volumes = vec!["/data".to_owned()];
    let (_, built, dir) = build_release(&env, release, "userland-probe", "userland-files");
    let bundle = unpack_host_image(&env, &built, &dir);
    // umoci turns each of the config's `Volumes` into a fresh tmpfs mount (owned by root);
    // Docker instead fills a named volume from the image's directory, owner included. Drop
    // the tmpfs so runc shows the image's own `/data`, the directory Docker copies.
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let mounts = config["mounts"].as_array_mut().unwrap();
    let before = mounts.len();
    mounts.retain(|mount| mount["destination"] != "/data");
    assert_eq!(mounts.len(), before - 1, "umoci mounted no volume at /data");
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "read", "/srv/www/index.html"]),
        "/srv/www/index.html 640 65532:65532 <h1>hi</h1>\n"
    );
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "read", "/srv/www/css/app.css"]),
        "/srv/www/css/app.css 640 65532:65532 a{}\n"
    );
    assert_eq!(
        runc_run(&env, &bundle, &[PROBE, "home", "/data"]),
        "wrote /data/probe.txt as 65532:65532\n"
    );
    let root = runc_output(&env, &bundle, &[PROBE, "home", "/srv"]);
    assert_eq!(root.status.code(), Some(4), "{root:?}");
}
