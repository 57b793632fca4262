//! The `docker load` archives in a real Docker engine: load each host-platform archive, run
//! the HTTP service fixture with `--network host`, watch Docker's health check (from the image
//! config) report `healthy`, and ask `/healthz` ourselves; then the generated compose file,
//! as written, right after `docker load`.
//!
//! The harness runs `dockerd` on a private socket (no bridge, no iptables) and names it in
//! `CASTOFF_TEST_DOCKER_HOST`; without it this test fails with the reason, never skips.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use castoff_plan::AppId;
use castoff_test_support::TestEnv;
use castoff_test_support::workspace::fixture_release;

use crate::common::*;

/// How often and how long to wait for `healthy` (the fixture checks every 2 s).
const HEALTH_POLLS: u32 = 60;
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A `docker` command talking to the harness's daemon, with a private client config.
fn docker(env: &TestEnv, docker_host: &str, config: &Path) -> Command {
    let mut command = Command::new(env.tool("docker"));
    command
        .env("DOCKER_HOST", docker_host)
        .env("DOCKER_CONFIG", config);
    command
}

/// Removes the container however the test ends.
struct Container<'a> {
    name: String,
    env: &'a TestEnv,
    docker_host: &'a str,
    config: &'a Path,
}

impl<'a> Container<'a> {
    /// `docker run --detach` of `image` on the host's network (with `extra` options) as the
    /// container `<name>-<pid>`, removed when dropped.
    fn start(
        env: &'a TestEnv,
        docker_host: &'a str,
        config: &'a Path,
        name: &str,
        extra: &[&str],
        image: &str,
    ) -> Self {
        let container = Container {
            name: format!("{name}-{}", std::process::id()),
            env,
            docker_host,
            config,
        };
        run(docker(env, docker_host, config)
            .args([
                "run",
                "--detach",
                "--name",
                &container.name,
                "--network",
                "host",
            ])
            .args(extra)
            .arg(image));
        container
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = docker(self.env, self.docker_host, self.config)
            .args(["rm", "--force", &self.name])
            .output();
    }
}

/// Polls Docker's health status of `container` until it is `wanted` (or the polls run out):
/// whether it got there, and every status seen.
fn wait_for_health(
    env: &TestEnv,
    docker_host: &str,
    config: &Path,
    container: &str,
    wanted: &str,
) -> (bool, Vec<String>) {
    let mut statuses = Vec::new();
    let reached = (0..HEALTH_POLLS).any(|_| {
        std::thread::sleep(HEALTH_POLL_INTERVAL);
        let status = run(docker(env, docker_host, config).args([
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            container,
        ]));
        statuses.push(status.trim().to_owned());
        status.trim() == wanted
    });
    (reached, statuses)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn docker_loads_runs_and_reports_healthy() {
    let env = TestEnv::get();
    // The harness's dockerd (TestEnv::get panics when it is not running: never a skip).
    let docker_host = env.docker_host.clone();
    let dir = env.scratch_dir("oci-docker");
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let version = run(docker(&env, &docker_host, &config).args([
        "version",
        "--format",
        "{{.Server.Version}}",
    ]));
    assert!(
        !version.trim().is_empty(),
        "no Docker engine answered on {docker_host}"
    );

    // The command-line fixture: load, run `--version`.
    let greeter_release = fixture_release("single-cli");
    let greeter_inputs = inputs(&greeter_release, AppId(0), |target, bin| {
        assert_eq!(
            target.oci.unwrap().architecture == "amd64",
            target.triple == HOST_TRIPLE
        );
        if target.triple == HOST_TRIPLE {
            fixture_binary("single-cli", bin, Linking::Static)
        } else {
            fake_static_elf(
                &dir.join("fake").join(target.triple),
                bin,
                EM_AARCH64,
                "fake\n",
            )
        }
    });
    let greeter = build(&greeter_release, greeter_inputs, &dir.join("greeter-dist"));

    // The service fixture.
    // With issue 23's settings: a UDP port and a start interval in the image config, which
    // the harness's Docker Engine (older than 25) ignores while running the check.
    let release = service_release_with_deploy_settings();
    let service_inputs = host_inputs(&release, "http-service", &dir.join("fake"));
    let pinger = build(&release, service_inputs, &dir.join("dist"));

    for built in [&greeter, &pinger] {
        for image in built
            .images
            .iter()
            .filter(|image| image.target.triple == HOST_TRIPLE)
        {
            let loaded = run(docker(&env, &docker_host, &config)
                .arg("load")
                .arg("-i")
                .arg(&image.archive));
            let name = format!("{}:{}", built.repository, built.tag);
            assert!(
                loaded.contains(&format!("Loaded image: {name}")),
                "{loaded}"
            );
            // Docker's image id is the config digest: the image arrived unchanged.
            let id = run(docker(&env, &docker_host, &config)
                .args(["image", "inspect", "--format", "{{.Id}}", &name]));
            assert_eq!(id.trim(), image.config_digest);
        }
    }
    let greeter_name = format!("{}:{}", greeter.repository, greeter.tag);
    let said = run(docker(&env, &docker_host, &config).args([
        "run",
        "--rm",
        "--network",
        "none",
        &greeter_name,
        "--version",
    ]));
    assert_eq!(said, "greeter 0.3.1\n");

    let pinger_name = format!("{}:{}", pinger.repository, pinger.tag);
    let said = run(docker(&env, &docker_host, &config).args([
        "run",
        "--rm",
        "--network",
        "none",
        &pinger_name,
        "--version",
    ]));
    assert_eq!(said, "pinger 1.4.0\n");

    let port = free_port();
    let container = Container::start(
        &env,
        &docker_host,
        &config,
        "castoff-oci-pinger",
        &["--env", &format!("PINGER_PORT={port}")],
        &pinger_name,
    );
    let (healthy, statuses) =
        wait_for_health(&env, &docker_host, &config, &container.name, "healthy");
    if !healthy {
        let logs = output(docker(&env, &docker_host, &config).args(["logs", &container.name]));
        let health = output(docker(&env, &docker_host, &config).args([
            "inspect",
            "--format",
            "{{json .State}}",
            &container.name,
        ]));
        panic!(
            "the container never became healthy: {statuses:?}\nlogs: {}{}\nstate: {}",
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr),
            String::from_utf8_lossy(&health.stdout)
        );
    }
    let response = http_get(port, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
    // The container runs as the image's non-root user.
    let user = run(docker(&env, &docker_host, &config).args([
        "inspect",
        "--format",
        "{{.Config.User}}",
        &container.name,
    ]));
    assert_eq!(user.trim(), "65532:65532");
    // Docker reads the exposed ports with their protocols.
    let exposed = run(docker(&env, &docker_host, &config).args([
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}}",
        &pinger_name,
    ]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&exposed).unwrap(),
        serde_json::json!({ "53/udp": {}, "8080/tcp": {}, "9090/tcp": {} })
    );
    drop(container);
}

/// Stops and removes a compose project however the test ends.
struct ComposeProject<'a> {
    name: String,
    file: std::path::PathBuf,
    env: &'a TestEnv,
    docker_host: &'a str,
    config: &'a Path,
}

impl ComposeProject<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new(self.env.tool("docker-compose"));
        command
            .env("DOCKER_HOST", self.docker_host)
            .env("DOCKER_CONFIG", self.config)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .arg("--project-name")
            .arg(&self.name)
            .arg("--file")
            .arg(&self.file);
        command
    }
}

impl Drop for ComposeProject<'_> {
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["down", "--volumes", "--timeout", "1"])
            .output();
    }
}

/// The generated compose file, as written, right after `docker load` of the dist archive (no
/// registry anywhere: the file names the image by the tag the archive registers, not by the
/// index digest `docker load` never knows): `docker-compose up` starts the service, which
/// Docker's health check (an `http` check: castoff's probe) reports `healthy`, with the
/// restart policy, stop grace period, UDP port and labels of the configuration.
#[test]
fn compose_up_right_after_docker_load_turns_healthy() {
    let env = TestEnv::get();
    let docker_host = env.docker_host.clone();
    let dir = env.scratch_dir("oci-compose");
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // A port nobody uses, configured as a user would: the file is then run as written.
    let port = free_port();
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let release = castoff_test_support::workspace::fixture_release_with("http-service", |m| {
        let oci = &mut m.packages[0].metadata["castoff"]["oci"];
        // A repository of its own: `docker_loads_runs_and_reports_healthy` loads
        // `ghcr.io/acme/pinger:1.4.0` into the same engine at the same time.
        oci["repository"] = serde_json::json!("ghcr.io/castoff-test/pinger-compose");
        oci["ports"] = serde_json::json!([port, format!("{udp_port}/udp")]);
        oci["env"]["PINGER_PORT"] = serde_json::json!(port.to_string());
        oci["labels"] = serde_json::json!({ "team": "payments" });
        oci["deploy"] = serde_json::json!({ "stop-grace-period": "3s" });
        // An `http` check (castoff's probe), its port the one TCP port.
        oci["healthcheck"] = serde_json::json!({
            "http": "/healthz", "interval": "2s", "timeout": "1s", "start-period": "1s", "retries": 3,
        });
    });
    let inputs = host_inputs(&release, "http-service", &dir.join("fake"));
    let dist = dir.join("dist");
    let built = build(&release, inputs, &dist);
    let files = castoff_oci::write_deploy_examples(&release, &[(AppId(0), &built)], &dist).unwrap();
    let compose_file = files[0].clone();
    let compose_text = std::fs::read_to_string(&compose_file).unwrap();
    assert!(
        compose_text.contains(&format!("    image: \"{}\"\n", built.tagged_reference())),
        "{compose_text}"
    );

    // Start from an engine without the image: the load alone must provide it.
    let name = built.tagged_reference();
    let _ = output(docker(&env, &docker_host, &config).args(["image", "rm", "--force", &name]));
    let archive = &built
        .images
        .iter()
        .find(|image| image.target.triple == HOST_TRIPLE)
        .unwrap()
        .archive;
    let loaded = run(docker(&env, &docker_host, &config)
        .arg("load")
        .arg("-i")
        .arg(archive));
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );

    let project = ComposeProject {
        name: format!("castoff-oci-compose-{}", std::process::id()),
        file: compose_file,
        env: &env,
        docker_host: &docker_host,
        config: &config,
    };
    // `--no-build`, and nothing to pull: a pull would fail (no registry named in the file is
    // reachable from here), so `up` succeeding proves the loaded image was used.
    let up = output(project.command().args(["up", "--detach", "--no-build"]));
    assert!(
        up.status.success(),
        "docker-compose up failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    let container = run(project.command().args(["ps", "--quiet", "pinger"]));
    let container = container.trim().to_owned();
    assert!(!container.is_empty(), "no container for the service");

    let (healthy, statuses) = wait_for_health(&env, &docker_host, &config, &container, "healthy");
    if !healthy {
        let logs = output(project.command().arg("logs"));
        panic!(
            "the compose service never became healthy: {statuses:?}\nlogs: {}{}",
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr),
        );
    }
    // What the file asked for is what Docker runs.
    let facts = run(docker(&env, &docker_host, &config).args([
        "inspect",
        "--format",
        "{{.Config.Image}} {{.HostConfig.RestartPolicy.Name}} {{.Config.StopTimeout}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{index .Config.Labels \"team\"}}",
        &container,
    ]));
    assert_eq!(
        facts.trim(),
        format!("{name} unless-stopped 3 65532:65532 true payments")
    );
    let bindings: serde_json::Value =
        serde_json::from_str(&run(docker(&env, &docker_host, &config).args([
            "inspect",
            "--format",
            "{{json .HostConfig.PortBindings}}",
            &container,
        ])))
        .unwrap();
    assert_eq!(
        bindings,
        serde_json::json!({
            format!("{port}/tcp"): [{ "HostIp": "", "HostPort": port.to_string() }],
            format!("{udp_port}/udp"): [{ "HostIp": "", "HostPort": udp_port.to_string() }],
        })
    );
    // The service answers through the published port.
    let response = http_get(port, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(project);
}

/// Removes a named volume however the test ends.
struct Volume<'a> {
    name: String,
    env: &'a TestEnv,
    docker_host: &'a str,
    config: &'a Path,
}

impl Drop for Volume<'_> {
    fn drop(&mut self) {
        let _ = docker(self.env, self.docker_host, self.config)
            .args(["volume", "rm", "--force", &self.name])
            .output();
    }
}

/// `oci.files` with a directory and `oci.volumes` in a real engine: the image declares the
/// volume; with a read-only root filesystem, the non-root program reads the copied tree and
/// writes into a named volume at `/data`, which Docker filled from the image's directory,
/// owner included, as the generated compose file mounts it.
#[test]
fn a_named_volume_is_writable_by_the_image_user_and_files_are_there() {
    use castoff_plan::plan::{ExtraFile, Userland};
    let env = TestEnv::get();
    let docker_host = env.docker_host.clone();
    let dir = env.scratch_dir("oci-docker-volume");
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(workspace.join("site")).unwrap();
    std::fs::write(workspace.join("site/index.html"), "<h1>hi</h1>\n").unwrap();
    let mut release = fixture_release("userland-probe");
    release.workspace_root = workspace.clone();
    let oci = release.apps[0].oci.as_mut().unwrap();
    oci.userland = Userland::default();
    oci.files = vec![ExtraFile {
        src: workspace.join("site"),
        glob: None,
        dst: "/srv/www".to_owned(),
        mode: None,
        dir_mode: 0o755,
        owner: (0, 0),
    }];
    oci.volumes = vec!["/data".to_owned()];
    let probe_inputs = host_inputs(&release, "userland-probe", &dir.join("fake"));
    let built = build(&release, probe_inputs, &dir.join("dist"));
    let image = built
        .images
        .iter()
        .find(|image| image.target.triple == HOST_TRIPLE)
        .unwrap();
    run(docker(&env, &docker_host, &config)
        .arg("load")
        .arg("-i")
        .arg(&image.archive));
    let name = format!("{}:{}", built.repository, built.tag);
    let volumes = run(docker(&env, &docker_host, &config).args([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Volumes}}",
        &name,
    ]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&volumes).unwrap(),
        serde_json::json!({ "/data": {} })
    );
    let volume = Volume {
        name: format!("castoff-oci-data-{}", std::process::id()),
        env: &env,
        docker_host: &docker_host,
        config: &config,
    };
    let probe = |args: &[&str]| {
        run(docker(&env, &docker_host, &config)
            .args(["run", "--rm", "--network", "none", "--read-only"])
            .args(["--volume", &format!("{}:/data", volume.name)])
            .arg(&name)
            .args(args))
    };
    assert_eq!(
        probe(&["read", "/srv/www/index.html"]),
        "/srv/www/index.html 644 0:0 <h1>hi</h1>\n"
    );
    assert_eq!(
        probe(&["home", "/data"]),
        "wrote /data/probe.txt as 65532:65532\n"
    );
    // The write is in the volume: a second container reads it.
    assert_eq!(
        probe(&["read", "/data/probe.txt"]),
        "/data/probe.txt 644 65532:65532 written\n"
    );
    drop(volume);
}

/// Issue 23's checks by protocol, on a service with a health route and no health command of
/// its own in use: Docker runs castoff's probe from the image config, and an `http` check of
/// `/healthz` and a `tcp` check of the port turn `healthy`, an `http` check of a route the
/// service does not have (404) turns `unhealthy`; the health log holds the probe's line.
#[test]
fn http_and_tcp_checks_turn_healthy_and_a_missing_route_unhealthy() {
    let env = TestEnv::get();
    let docker_host = env.docker_host.clone();
    let dir = env.scratch_dir("oci-probe-health");
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // (case, health check, the status Docker must reach, a line of the health log)
    let cases = [
        (
            "http",
            serde_json::json!({ "http": "/healthz" }),
            "healthy",
            "HTTP 200",
        ),
        (
            "tcp",
            serde_json::json!({ "tcp": 0 }),
            "healthy",
            "connected",
        ),
        (
            "missing-route",
            serde_json::json!({ "http": "/missing" }),
            "unhealthy",
            "HTTP 404",
        ),
    ];
    for (case, check, wanted, logged) in cases {
        // `--network host` (the harness's dockerd has no bridge): a port of its own per case.
        let port = free_port();
        let mut check = check;
        if check.get("tcp").is_some() {
            check["tcp"] = serde_json::json!(port);
        }
        check["interval"] = serde_json::json!("1s");
        check["timeout"] = serde_json::json!("2s");
        check["retries"] = serde_json::json!(2);
        let release = castoff_test_support::workspace::fixture_release_with("http-service", |m| {
            let oci = &mut m.packages[0].metadata["castoff"]["oci"];
            oci["repository"] = serde_json::json!(format!("ghcr.io/castoff-test/pinger-{case}"));
            oci["ports"] = serde_json::json!([port]);
            oci["env"]["PINGER_PORT"] = serde_json::json!(port.to_string());
            oci["healthcheck"] = check.clone();
        });
        let inputs = host_inputs(&release, "http-service", &dir.join("fake"));
        let built = build(&release, inputs, &dir.join(case).join("dist"));
        let image = built
            .images
            .iter()
            .find(|image| image.target.triple == HOST_TRIPLE)
            .unwrap();
        let name = built.tagged_reference();
        let loaded = run(docker(&env, &docker_host, &config)
            .arg("load")
            .arg("-i")
            .arg(&image.archive));
        assert!(
            loaded.contains(&format!("Loaded image: {name}")),
            "{loaded}"
        );
        let container = Container::start(
            &env,
            &docker_host,
            &config,
            &format!("castoff-oci-probe-{case}"),
            &[],
            &name,
        );
        let (reached, statuses) =
            wait_for_health(&env, &docker_host, &config, &container.name, wanted);
        let health = run(docker(&env, &docker_host, &config).args([
            "inspect",
            "--format",
            "{{json .State.Health}}",
            &container.name,
        ]));
        assert!(
            reached,
            "{case}: the container never became {wanted}: {statuses:?}\nhealth: {health}"
        );
        assert!(health.contains(logged), "{case}: {health}");
        // The service itself answered all along.
        let response = http_get(port, "/healthz");
        assert!(response.starts_with("HTTP/1.1 200"), "{case}: {response}");
        drop(container);
    }
}

/// The service fixture as a Docker 20.10 builder can build its Dockerfile: an `http` health
/// check (castoff's probe, a layer of castoff's own) on `port`, a UDP port, labels and
/// volumes, but no `start-interval`, whose `HEALTHCHECK` flag needs Docker 25.
fn service_release_for_dockerfile(port: u16) -> castoff_plan::Release {
    castoff_test_support::workspace::fixture_release_with("http-service", |metadata| {
        let oci = &mut metadata.packages[0].metadata["castoff"]["oci"];
        oci["ports"] = serde_json::json!([port, "53/udp"]);
        oci["env"] = serde_json::json!({ "PINGER_PORT": port.to_string(), "GREETING": "$HOME \"quoted\" a\\b" });
        oci["labels"] = serde_json::json!({ "team": "payments", "org.opencontainers.image.vendor": "Acme Inc." });
        oci["volumes"] = serde_json::json!(["/var/cache/pinger", "/data"]);
        oci["workdir"] = serde_json::json!("/data");
        oci["cmd"] = serde_json::json!(["serve"]);
        oci["healthcheck"] = serde_json::json!({
            "http": "/healthz", "port": port, "interval": "2s", "timeout": "1s",
            "start-period": "1s", "retries": 3,
        });
    })
}

/// `docker inspect`'s image fields that a build sets, as one JSON object per field.
fn image_fields(env: &TestEnv, docker_host: &str, config: &Path, image: &str) -> serde_json::Value {
    let text = run(docker(env, docker_host, config).args(["image", "inspect", image]));
    let inspected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let image = &inspected[0];
    serde_json::json!({
        "Architecture": image["Architecture"],
        "Os": image["Os"],
        "Variant": image["Variant"],
        "Config": image["Config"],
    })
}

#[test]
fn the_dockerfile_builds_the_same_image_config_which_runs_and_turns_healthy() {
    let env = TestEnv::get();
    let docker_host = env.docker_host.clone();
    let dir = env.scratch_dir("oci-dockerfile");
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let port = free_port();
    let release = service_release_for_dockerfile(port);
    let dist = dir.join("dist");
    let built = build(
        &release,
        host_inputs(&release, "http-service", &dir.join("fake")),
        &dist,
    );
    assert_eq!(built.images.len(), 2, "amd64 and arm64: one stage each");
    let app = &release.apps[0];
    let written = castoff_oci::write_dockerfiles(
        app,
        app.oci.as_ref().unwrap(),
        &built,
        &dist,
        &castoff_oci::DockerfileOptions {
            workspace_root: &release.workspace_root,
            dist_in_workspace: Some(Path::new("dist")),
        },
    )
    .unwrap();
    let deploy = dist.join("deploy").join("pinger");
    assert_eq!(
        written,
        [
            deploy.join("Dockerfile"),
            deploy.join("Dockerfile.dockerignore"),
            deploy.join("Dockerfile.source"),
            deploy.join("Dockerfile.source.dockerignore"),
        ]
    );

    // hadolint: nothing to say about either, not even at the "style" level.
    for file in ["Dockerfile", "Dockerfile.source"] {
        let linted = output(
            Command::new(env.tool("hadolint"))
                .args(["--no-color", "--failure-threshold", "style"])
                .arg(deploy.join(file)),
        );
        assert!(
            linted.status.success() && linted.stdout.is_empty(),
            "hadolint on {file}:\n{}{}",
            String::from_utf8_lossy(&linted.stdout),
            String::from_utf8_lossy(&linted.stderr)
        );
    }

    // castoff's own image, loaded, against the Dockerfile's, built by the engine's classic
    // builder (Debian's Docker 20.10 CLI has no BuildKit without buildx), which sets no
    // TARGETARCH: the build names the stage.
    let amd64 = &built.images[0];
    assert_eq!(amd64.target.triple, HOST_TRIPLE);
    run(docker(&env, &docker_host, &config)
        .arg("load")
        .arg("-i")
        .arg(&amd64.archive));
    let castoff_image = format!("{}:{}", built.repository, built.tag);
    let docker_image = format!("castoff-dockerfile-test:{}", std::process::id());
    let build_output = run(docker(&env, &docker_host, &config)
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--network",
            "none",
            "--build-arg",
            "TARGETARCH=amd64",
        ])
        .args(["--tag", &docker_image, "--file"])
        .arg(deploy.join("Dockerfile"))
        .arg(&dist));
    struct Image<'a>(&'a TestEnv, &'a str, &'a Path, String);
    impl Drop for Image<'_> {
        fn drop(&mut self) {
            let _ = docker(self.0, self.1, self.2)
                .args(["rmi", "--force", &self.3])
                .output();
        }
    }
    let _cleanup = Image(&env, &docker_host, &config, docker_image.clone());
    assert!(
        build_output.contains("Successfully tagged"),
        "{build_output}"
    );

    let castoff_fields = image_fields(&env, &docker_host, &config, &castoff_image);
    let docker_fields = image_fields(&env, &docker_host, &config, &docker_image);
    let mut differences = Vec::new();
    for (section, castoff_value) in castoff_fields.as_object().unwrap() {
        let docker_value = &docker_fields[section];
        match (castoff_value.as_object(), docker_value.as_object()) {
            (Some(ours), Some(theirs)) => {
                let keys: std::collections::BTreeSet<&String> =
                    ours.keys().chain(theirs.keys()).collect();
                for key in keys {
                    // The classic builder records the image it built on (the last
                    // intermediate one) in `Config.Image`: its bookkeeping, no field of an OCI
                    // config; `docker load` of castoff's image leaves it empty.
                    if section == "Config" && key == "Image" {
                        assert_eq!(ours.get(key), Some(&serde_json::json!("")));
                        continue;
                    }
                    if ours.get(key) != theirs.get(key) {
                        differences.push(format!(
                            "{section}.{key}: castoff {:?}, Dockerfile {:?}",
                            ours.get(key),
                            theirs.get(key)
                        ));
                    }
                }
            }
            _ if castoff_value != docker_value => differences.push(format!(
                "{section}: castoff {castoff_value}, Dockerfile {docker_value}"
            )),
            _ => {}
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Fields the fixture sets, so the comparison covered them.
    let fields = &castoff_fields["Config"];
    for field in [
        "Env",
        "Labels",
        "User",
        "WorkingDir",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
        "Healthcheck",
        "Entrypoint",
        "Cmd",
    ] {
        assert!(!fields[field].is_null(), "castoff's config has no {field}");
    }

    // The built image runs: the version, then the service until Docker's health check (the
    // probe from castoff's layer, through the Dockerfile's ADD) says healthy.
    let said = run(docker(&env, &docker_host, &config).args([
        "run",
        "--rm",
        "--network",
        "none",
        &docker_image,
        "--version",
    ]));
    assert_eq!(said, "pinger 1.4.0\n");
    let container = Container::start(
        &env,
        &docker_host,
        &config,
        "castoff-dockerfile-pinger",
        &[],
        &docker_image,
    );
    let (healthy, statuses) =
        wait_for_health(&env, &docker_host, &config, &container.name, "healthy");
    assert!(healthy, "never healthy: {statuses:?}");
    let response = http_get(port, "/healthz");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
