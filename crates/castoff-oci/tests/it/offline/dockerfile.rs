//! The Dockerfiles of `dist/deploy/<app>/`: their text for two platforms (snapshots), the
//! builder that `oci.builder` pins, a base layout's layers added from the dist, and a value a
//! Dockerfile cannot hold refused with nothing written. `live::docker` builds and runs them.

use std::path::{Path, PathBuf};

use castoff_oci::{BuiltIndex, DockerfileOptions, OciError, write_dockerfiles};
use castoff_plan::plan::BaseImage;
use castoff_plan::{AppId, Release};
use expect_test::{expect, expect_file};

use castoff_test_support::workspace::fixture_release;

use crate::common::*;

#[allow(clippy::result_large_err)] // OciError as the library returns it
fn dockerfiles(release: &Release, built: &BuiltIndex) -> Result<Vec<PathBuf>, OciError> {
    let app = &release.apps[0];
    let dist = built.layout_dir.parent().unwrap().parent().unwrap();
    write_dockerfiles(
        app,
        app.oci.as_ref().unwrap(),
        built,
        dist,
        &DockerfileOptions {
            workspace_root: &release.workspace_root,
            dist_in_workspace: Some(Path::new("dist")),
        },
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn two_platforms_get_a_stage_each_and_the_config_s_instructions() {
    let release = service_release_with_deploy_settings();
    let dir = temp_dir("dockerfile-two-platforms");
    let built = build(
        &release,
        fake_inputs(&release, AppId(0), &dir.join("bin")),
        &dir.join("dist"),
    );
    let files = dockerfiles(&release, &built).unwrap();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Dockerfile",
            "Dockerfile.dockerignore",
            "Dockerfile.source",
            "Dockerfile.source.dockerignore"
        ]
    );
    expect_file!["../../snapshots/http-service.Dockerfile"].assert_eq(&read(&files[0]));
    expect_file!["../../snapshots/http-service.Dockerfile.dockerignore"]
        .assert_eq(&read(&files[1]));
    expect_file!["../../snapshots/http-service.Dockerfile.source"].assert_eq(&read(&files[2]));
    expect_file!["../../snapshots/http-service.Dockerfile.source.dockerignore"]
        .assert_eq(&read(&files[3]));
    // Every layer of every platform is one `ADD` of its blob, which the layout holds.
    for image in &built.images {
        for layer in &image.layers {
            let hex = layer.digest.trim_start_matches("sha256:");
            assert!(read(&files[0]).contains(&format!("ADD oci/pinger/blobs/sha256/{hex} /")));
            assert!(built.layout_dir.join("blobs/sha256").join(hex).is_file());
        }
    }
}

#[test]
fn a_configured_builder_is_the_source_build_s_from() {
    let mut release = fixture_release("http-service");
    let builder = format!("rust:1.85-alpine@sha256:{}", "ab".repeat(32));
    release.apps[0].oci.as_mut().unwrap().builder = Some(builder.clone());
    let dir = temp_dir("dockerfile-builder");
    let built = build(
        &release,
        fake_inputs(&release, AppId(0), &dir.join("bin")),
        &dir.join("dist"),
    );
    let files = dockerfiles(&release, &built).unwrap();
    let source = read(&files[2]);
    assert!(
        source.contains(&format!("FROM {builder} AS build-amd64\n")),
        "{source}"
    );
    assert!(
        source.contains(&format!("FROM {builder} AS build-arm64\n")),
        "{source}"
    );
    assert!(!source.contains("not pinned"), "{source}");
}

#[test]
fn a_base_layout_s_layers_are_added_from_the_dist() {
    let single = fixture_release("single-cli");
    let base_dir = temp_dir("dockerfile-base-of");
    let base = build(
        &single,
        fake_inputs(&single, AppId(0), &base_dir.join("bin")),
        &base_dir.join("dist"),
    );
    let mut release = fixture_release("http-service");
    release.apps[0].oci.as_mut().unwrap().base = BaseImage::Layout(base.layout_dir.clone());
    let dir = temp_dir("dockerfile-base");
    let mut inputs = fake_inputs(&release, AppId(0), &dir.join("bin"));
    inputs.sort_by_key(|input| input.target.triple);
    let built = build(&release, inputs, &dir.join("dist"));
    let files = dockerfiles(&release, &built).unwrap();
    let dockerfile = read(&files[0]);
    for image in &built.images {
        let adds = image
            .layers
            .iter()
            .filter(|layer| dockerfile.contains(layer.digest.trim_start_matches("sha256:")))
            .count();
        assert_eq!(adds, image.layers.len(), "{dockerfile}");
    }
    assert!(dockerfile.contains("# base layer\n"), "{dockerfile}");
    assert!(!dockerfile.contains("FROM oci-layout"), "{dockerfile}");
}

#[test]
fn a_label_with_a_line_break_is_refused_and_nothing_is_written() {
    let mut release = fixture_release("http-service");
    release.apps[0]
        .oci
        .as_mut()
        .unwrap()
        .labels
        .insert("notes".to_owned(), "two\nlines".to_owned());
    let dir = temp_dir("dockerfile-line-break");
    let built = build(
        &release,
        fake_inputs(&release, AppId(0), &dir.join("bin")),
        &dir.join("dist"),
    );
    let error = dockerfiles(&release, &built).unwrap_err();
    expect![[r#"cannot write a Dockerfile for `pinger`: its label notes `two\nlines` has a line break, which a Dockerfile instruction cannot hold"#]]
        .assert_eq(&error.to_string());
    assert!(error.hint().unwrap().contains("keep line breaks out"));
    assert!(!dir.join("dist/deploy/pinger").exists());
}
