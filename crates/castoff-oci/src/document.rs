//! The JSON documents of an image: the config (Docker-compatible runtime settings, rootfs,
//! history), the manifest of each platform, the index over them, and the annotations they
//! carry. All are `serde_json::Value`s serialized canonically (see `json.rs`).
//!
//! A base config is edited as generic JSON rather than parsed into types: fields castoff does
//! not know (`ArgsEscaped`, `OnBuild`, vendor extensions) must survive untouched.

use castoff_archive::date::rfc3339;
use castoff_archive::oci::{CONFIG_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use castoff_plan::plan::{App, OciChannel};
use castoff_plan::target::OciPlatform;
use serde_json::{Map, Value, json};

use crate::layer::BIN_DIR;

/// The `PATH` of an image from `scratch` (Docker's default, so `docker exec` finds binaries).
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Label and annotation prefix of the OCI pre-defined keys; a base's keys with it are dropped.
const OCI_KEY_PREFIX: &str = "org.opencontainers.image.";

/// The `org.opencontainers.image.*` facts of an app (without the base keys), in key order.
pub(crate) fn app_annotations(
    app: &App,
    revision: Option<&str>,
    source_date_epoch: u64,
) -> Map<String, Value> {
    let package = &app.package;
    let mut annotations = Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            annotations.insert(format!("{OCI_KEY_PREFIX}{key}"), json!(value));
        }
    };
    put("created", Some(&rfc3339(source_date_epoch)));
    put("description", package.summary().as_deref());
    put("licenses", package.license.as_deref());
    put("revision", revision);
    put("source", package.repository.as_deref());
    put("title", Some(&package.name));
    put(
        "url",
        package
            .homepage
            .as_deref()
            .or(package.repository.as_deref()),
    );
    put("version", Some(&package.version.to_string()));
    annotations
}

/// The OCI `platform` object of an index entry or config.
pub(crate) fn platform_json(platform: &OciPlatform) -> Value {
    let mut value = json!({ "architecture": platform.architecture, "os": platform.os });
    if let Some(variant) = platform.variant {
        value["variant"] = json!(variant);
    }
    value
}

/// Everything the config of one platform's image is made of.
#[derive(Debug)]
pub(crate) struct ConfigInput<'a> {
    pub(crate) app: &'a App,
    pub(crate) oci: &'a OciChannel,
    pub(crate) platform: &'a OciPlatform,
    /// The base config, `None` for `scratch`.
    pub(crate) base: Option<&'a Value>,
    /// diff_ids of the base layers, then of castoff's layer.
    pub(crate) diff_ids: Vec<String>,
    pub(crate) annotations: &'a Map<String, Value>,
    pub(crate) source_date_epoch: u64,
    /// What the history entry of each of castoff's layers says it contains, in layer order.
    pub(crate) layer_summaries: Vec<String>,
}

/// The image config.
pub(crate) fn image_config(input: &ConfigInput<'_>) -> Value {
    let oci = input.oci;
    let mut config = input.base.cloned().unwrap_or_else(|| json!({}));
    if !config.is_object() {
        config = json!({});
    }
    let created = rfc3339(input.source_date_epoch);
    config["created"] = json!(created);
    config["architecture"] = json!(input.platform.architecture);
    config["os"] = json!(input.platform.os);
    match input.platform.variant {
        Some(variant) => config["variant"] = json!(variant),
        None => {
            if let Some(object) = config.as_object_mut() {
                object.remove("variant");
            }
        }
    }
    // The base's author is not this image's author.
    if let Some(object) = config.as_object_mut() {
        object.remove("author");
    }

    let runtime = config
        .as_object_mut()
        .expect("config is an object")
        .entry("config")
        .or_insert_with(|| json!({}));
    if !runtime.is_object() {
        *runtime = json!({});
    }
    let runtime = runtime.as_object_mut().expect("checked above");

    // Env: the base's entries in their order (values overridden), then ours by name.
    let mut env: Vec<(String, String)> = match runtime.get("Env").and_then(Value::as_array) {
        Some(entries) => entries
            .iter()
            .filter_map(Value::as_str)
            .map(|entry| match entry.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (entry.to_owned(), String::new()),
            })
            .collect(),
        None => Vec::new(),
    };
    if input.base.is_none() && !env.iter().any(|(name, _)| name == "PATH") {
        let (name, value) = DEFAULT_PATH.split_once('=').expect("has =");
        env.push((name.to_owned(), value.to_owned()));
    }
    for (name, value) in &oci.env {
        match env.iter_mut().find(|(existing, _)| existing == name) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((name.clone(), value.clone())),
        }
    }
    runtime.insert(
        "Env".to_owned(),
        env.iter()
            .map(|(name, value)| json!(format!("{name}={value}")))
            .collect(),
    );

    runtime.insert(
        "Entrypoint".to_owned(),
        json!([format!("{BIN_DIR}/{}", oci.entrypoint)]),
    );
    // A new entrypoint makes the base's Cmd meaningless (Docker resets it too).
    match &oci.cmd {
        Some(cmd) => runtime.insert("Cmd".to_owned(), json!(cmd)),
        None => runtime.remove("Cmd"),
    };
    runtime.insert("User".to_owned(), json!(oci.user));
    if let Some(workdir) = &oci.workdir {
        runtime.insert("WorkingDir".to_owned(), json!(workdir));
    }
    if !oci.ports.is_empty() {
        let ports = runtime.entry("ExposedPorts").or_insert_with(|| json!({}));
        if !ports.is_object() {
            *ports = json!({});
        }
        for port in &oci.ports {
            ports[format!("{}/{}", port.number, port.protocol.as_str())] = json!({});
        }
    }
    if !oci.volumes.is_empty() {
        let volumes = runtime.entry("Volumes").or_insert_with(|| json!({}));
        if !volumes.is_object() {
            *volumes = json!({});
        }
        for volume in &oci.volumes {
            volumes[volume.as_str()] = json!({});
        }
    }
    if let Some(signal) = &oci.stop_signal {
        runtime.insert("StopSignal".to_owned(), json!(signal));
    }

    // Labels: the base's minus its OCI keys (they describe the base, not this image), then
    // this image's OCI facts (so `docker inspect` shows them), then the configured labels.
    let mut labels: Map<String, Value> = runtime
        .get("Labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter(|(key, _)| !key.starts_with(OCI_KEY_PREFIX))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (key, value) in input.annotations {
        if !key.starts_with(&format!("{OCI_KEY_PREFIX}base.")) {
            labels.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in &oci.labels {
        labels.insert(key.clone(), json!(value));
    }
    runtime.insert("Labels".to_owned(), Value::Object(labels));

    if let Some(check) = &oci.healthcheck {
        let mut test = vec![json!("CMD")];
        test.extend(check.command().iter().map(|arg| json!(arg)));
        let mut healthcheck = json!({ "Test": test });
        if let Some(nanos) = check.interval_nanos {
            healthcheck["Interval"] = json!(nanos);
        }
        if let Some(nanos) = check.timeout_nanos {
            healthcheck["Timeout"] = json!(nanos);
        }
        if let Some(nanos) = check.start_period_nanos {
            healthcheck["StartPeriod"] = json!(nanos);
        }
        // Docker Engine 25 (API 1.44) and later; older engines ignore the field.
        if let Some(nanos) = check.start_interval_nanos {
            healthcheck["StartInterval"] = json!(nanos);
        }
        if let Some(retries) = check.retries {
            healthcheck["Retries"] = json!(retries);
        }
        runtime.insert("Healthcheck".to_owned(), healthcheck);
    }

    config["rootfs"] = json!({ "type": "layers", "diff_ids": input.diff_ids });
    let mut history: Vec<Value> = config["history"].as_array().cloned().unwrap_or_default();
    for summary in &input.layer_summaries {
        history.push(json!({
            "created": created,
            "created_by": format!("castoff: {summary}"),
            "comment": format!("{} {}", input.app.package.name, input.app.package.version),
        }));
    }
    config["history"] = json!(history);
    config
}

/// The manifest of one platform's image.
pub(crate) fn image_manifest(
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &Map<String, Value>,
) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": Descriptor { media_type: CONFIG_MEDIA_TYPE.to_owned(), ..config.clone() }.to_json(),
        "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        "annotations": annotations,
    })
}

/// The index over every platform's manifest.
pub(crate) fn image_index(manifests: &[Descriptor], annotations: &Map<String, Value>) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": manifests.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        "annotations": annotations,
    })
}
