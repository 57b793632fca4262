//! The `docker load` archives in a real Docker engine: load each host-platform archive, run
//! the HTTP service fixture with `--network host`, watch Docker's health check (from the image
//! config) report `healthy`, and ask `/healthz` ourselves.
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

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = docker(self.env, self.docker_host, self.config)
            .args(["rm", "--force", &self.name])
            .output();
    }
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
    let release = fixture_release("http-service");
    let service_inputs = inputs(&release, AppId(0), |target, bin| {
        if target.triple == HOST_TRIPLE {
            fixture_binary("http-service", bin, Linking::Static)
        } else {
            fake_static_elf(
                &dir.join("fake").join(target.triple),
                bin,
                EM_AARCH64,
                "fake\n",
            )
        }
    });
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
    let container = Container {
        name: format!("castoff-oci-pinger-{}", std::process::id()),
        env: &env,
        docker_host: &docker_host,
        config: &config,
    };
    run(docker(&env, &docker_host, &config)
        .args([
            "run",
            "--detach",
            "--name",
            &container.name,
            "--network",
            "host",
        ])
        .args(["--env", &format!("PINGER_PORT={port}")])
        .arg(&pinger_name));
    let mut statuses = Vec::new();
    let healthy = (0..HEALTH_POLLS).any(|_| {
        std::thread::sleep(HEALTH_POLL_INTERVAL);
        let status = run(docker(&env, &docker_host, &config).args([
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &container.name,
        ]));
        statuses.push(status.trim().to_owned());
        status.trim() == "healthy"
    });
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
    drop(container);
}
