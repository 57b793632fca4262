//! The real servers the suite runs against (recipe: shared/reference/real-servers-for-tests.md):
//! four docker-registry configs plus a token server, pypiserver, devpi-server, Verdaccio and
//! kellnr.
//! Writes their configs, certificates and password files into the state directory, starts them
//! on free loopback ports, creates user `ci` where the server keeps users, and returns the
//! environment variables that tell the tests where everything is.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use castoff_test_support::vars;
use serde_json::json;

use super::Paths;
use super::install::Installed;
use super::process::{self, Server, http_probe, probe_client, run_logged};

const USER: &str = "ci";
const TOKEN_SERVICE: &str = "test-registry";
const TOKEN_ISSUER: &str = "test-token-issuer";

/// Every running server plus what the tests need to reach them. Dropping it stops the servers.
pub(crate) struct Started {
    /// Kept only so that dropping `Started` stops them, in reverse start order.
    servers: Vec<Server>,
    pub(crate) env: Vec<(&'static str, String)>,
    /// dockerd's socket and exec root: its network namespace mount must go after it stops.
    docker_exec_root: Option<PathBuf>,
}

impl Started {
    pub(crate) fn stop(&mut self) {
        for server in self.servers.iter_mut().rev() {
            server.stop();
        }
        if let Some(exec_root) = self.docker_exec_root.take() {
            remove_docker_exec_root(&exec_root);
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.servers.len()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts every server from a clean state directory.
pub(crate) fn start(paths: &Paths, installed: &Installed) -> Result<Started> {
    let clock = Instant::now();
    let state = &paths.state;
    process::kill_leftovers(state)?;
    if state.exists() {
        fs::remove_dir_all(state).with_context(|| format!("removing {}", state.display()))?;
    }
    fs::create_dir_all(state.join("tls"))
        .with_context(|| format!("creating {}", state.display()))?;
    // Password files, keys and env.sh live here: owner only.
    fs::set_permissions(state, fs::Permissions::from_mode(0o700))?;

    let password = random_password()?;
    let venv_bin = paths.tools.join("venv").join("bin");
    let setup_log = state.join("setup.log");

    let [
        open,
        basic,
        tls,
        token,
        token_server,
        pypi,
        devpi,
        npm,
        kellnr,
    ] = <[u16; 9]>::try_from(process::free_ports(9)?).map_err(|_| anyhow!("port count"))?;
    let plain = probe_client(None)?;

    // devpi-init takes over a second (mostly Python imports) and devpi-server another one:
    // a thread initialises and starts devpi while the certificates are made and the others
    // start.
    let devpi_dir = state.join("devpi");
    let devpi_root_password = random_password()?;
    let devpi_thread = {
        let mut init = Command::new(venv_bin.join("devpi-init"));
        // The password goes through the environment (devpi reads `DEVPISERVER_<OPTION>`),
        // not the command line, which any user can read in `ps`.
        init.arg("--serverdir")
            .arg(&devpi_dir)
            .arg("--no-root-pypi")
            .env("DEVPISERVER_ROOT_PASSWD", &devpi_root_password);
        let secret_file = state.join("devpi.secret");
        let mut server = Command::new(venv_bin.join("devpi-server"));
        server
            .arg("--serverdir")
            .arg(&devpi_dir)
            .arg("--secretfile")
            .arg(&secret_file)
            // The defaults (512 MiB, time cost 16) make startup and every login take seconds.
            .args(["--argon2-time-cost", "1", "--argon2-memory-cost", "8"])
            .args(["--argon2-parallelism", "1", "--host", "127.0.0.1"])
            .args(["--port", &devpi.to_string(), "--offline-mode"]);
        let probe = http_probe(plain.clone(), format!("http://127.0.0.1:{devpi}/+api"));
        let log = state.join("devpi-init.log");
        let state = state.clone();
        thread::spawn(move || -> Result<Server> {
            run_logged(init, &log)?;
            // What devpi-gen-secret writes (random bytes, mode 0600), without its second of
            // Python start-up.
            write_private(&secret_file, random_password()? + &random_password()?)?;
            Server::spawn(&state, "devpi", devpi, server, probe)
        })
    };

    make_certificates(&state.join("tls"), &setup_log)?;
    write_password_files(paths, &password, &setup_log)?;
    println!(
        "    certificates and password files made ({:.1} s)",
        clock.elapsed().as_secs_f64()
    );

    let ca_pem = fs::read(state.join("tls/ca.crt"))?;
    let with_ca = probe_client(Some(&ca_pem))?;
    let mut servers = Vec::new();

    for (name, port, extra) in [
        ("registry-open", open, String::new()),
        ("registry-basic", basic, htpasswd_auth(state)),
        ("registry-tls", tls, htpasswd_auth(state)),
        ("registry-token", token, token_auth(state, token_server)),
    ] {
        let tls_section = if name == "registry-tls" {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                state.join("tls/server.crt").display(),
                state.join("tls/server.key").display()
            )
        } else {
            String::new()
        };
        let config = state.join(format!("{name}.yml"));
        fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n{tls_section}{extra}",
                data = state.join(format!("{name}-data")).display(),
            ),
        )?;
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config);
        let (scheme, client) = if name == "registry-tls" {
            ("https", &with_ca)
        } else {
            ("http", &plain)
        };
        let probe = http_probe(client.clone(), format!("{scheme}://127.0.0.1:{port}/v2/"));
        servers.push(Server::spawn(state, name, port, command, probe)?);
    }

    let mut command = Command::new(venv_bin.join("python"));
    command
        .arg(paths.workspace.join("xtask/tools/token_server.py"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &token_server.to_string(),
            "--issuer",
            TOKEN_ISSUER,
        ])
        .arg("--key")
        .arg(state.join("tls/signer.key"))
        .arg("--cert")
        .arg(state.join("tls/signer.crt"))
        .arg("--htpasswd")
        .arg(state.join("registry.htpasswd"));
    let probe = http_probe(
        plain.clone(),
        format!("http://127.0.0.1:{token_server}/token?service={TOKEN_SERVICE}"),
    );
    servers.push(Server::spawn(
        state,
        "token-server",
        token_server,
        command,
        probe,
    )?);

    fs::create_dir_all(state.join("pypi-packages"))?;
    let command = pypiserver_command(
        &venv_bin,
        pypi,
        Some(&state.join("pypi.htpasswd")),
        &state.join("pypi-packages"),
    );
    let probe = http_probe(plain.clone(), format!("http://127.0.0.1:{pypi}/health"));
    servers.push(Server::spawn(state, "pypiserver", pypi, command, probe)?);

    let verdaccio_config = write_verdaccio_config(state, npm)?;
    let mut command = Command::new(paths.tools.join("node/node_modules/.bin/verdaccio"));
    command.arg("--config").arg(&verdaccio_config);
    let probe = http_probe(plain.clone(), format!("http://127.0.0.1:{npm}/-/ping"));
    servers.push(Server::spawn(state, "verdaccio", npm, command, probe)?);

    // kellnr: a Cargo registry, SQLite in the state directory, configured by its KELLNR_*
    // variables; the admin token is set at first start (the tests publish and yank with it).
    let kellnr_token = random_password()?;
    let kellnr_data = state.join("kellnr-data");
    fs::create_dir_all(&kellnr_data)?;
    let mut command = Command::new(&installed.kellnr);
    command
        .arg("start")
        .env("KELLNR_REGISTRY__DATA_DIR", &kellnr_data)
        .env("KELLNR_LOCAL__IP", "127.0.0.1")
        .env("KELLNR_LOCAL__PORT", kellnr.to_string())
        .env("KELLNR_ORIGIN__HOSTNAME", "127.0.0.1")
        .env("KELLNR_ORIGIN__PORT", kellnr.to_string())
        .env("KELLNR_ORIGIN__PROTOCOL", "http")
        .env("KELLNR_PROXY__ENABLED", "false")
        .env("KELLNR_DOCS__ENABLED", "false")
        .env("KELLNR_SETUP__ADMIN_PWD", &password)
        .env("KELLNR_SETUP__ADMIN_TOKEN", &kellnr_token);
    let probe = http_probe(
        plain.clone(),
        format!("http://127.0.0.1:{kellnr}/api/v1/health"),
    );
    servers.push(Server::spawn(state, "kellnr", kellnr, command, probe)?);

    // dockerd on a private unix socket: no bridge and no iptables (nothing on the host's
    // network changes); containers run with `--network host` or `--network none`. Its exec
    // root holds unix sockets whose paths must stay under 108 bytes, so it lives in /tmp.
    let docker_exec_root = docker_exec_root();
    let _ = fs::remove_dir_all(&docker_exec_root);
    fs::create_dir_all(&docker_exec_root)?;
    let docker_host = format!("unix://{}/docker.sock", docker_exec_root.display());
    let mut command = Command::new("dockerd");
    command
        .arg("--data-root")
        .arg(state.join("dockerd-data"))
        .arg("--exec-root")
        .arg(docker_exec_root.join("exec"))
        .arg("--pidfile")
        .arg(docker_exec_root.join("docker.pid"))
        .args(["-H", &docker_host])
        .args(["--iptables=false", "--ip6tables=false", "--bridge=none"]);
    let probe_host = docker_host.clone();
    let probe: process::Probe = Box::new(move || {
        Command::new("docker")
            .env("DOCKER_HOST", &probe_host)
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    servers.push(Server::spawn(state, "dockerd", 0, command, probe)?);

    let mut started = Started {
        servers,
        env: Vec::new(),
        docker_exec_root: Some(docker_exec_root),
    };
    process::wait_ready(&mut started.servers.iter_mut().collect::<Vec<_>>())?;
    let waited = Instant::now();
    let devpi_server = devpi_thread
        .join()
        .map_err(|_| anyhow!("devpi start-up thread panicked"))??;
    started.servers.push(devpi_server);
    process::wait_ready(&mut started.servers.last_mut().into_iter().collect::<Vec<_>>())?;
    println!(
        "    devpi ready after {:.1} s of waiting for it",
        waited.elapsed().as_secs_f64()
    );

    let users = Instant::now();
    let npm_token = verdaccio_add_user(&plain, npm, &password)?;
    devpi_add_user_and_index(&plain, devpi, &devpi_root_password, &password)?;
    println!(
        "    user {USER} created on Verdaccio and devpi ({:.1} s)",
        users.elapsed().as_secs_f64()
    );

    started.env = vec![
        (vars::REGISTRY_OPEN, format!("http://127.0.0.1:{open}")),
        (vars::REGISTRY_BASIC, format!("http://127.0.0.1:{basic}")),
        (vars::REGISTRY_TLS, format!("https://127.0.0.1:{tls}")),
        (
            vars::CA_CERT,
            state.join("tls/ca.crt").display().to_string(),
        ),
        (vars::REGISTRY_TOKEN, format!("http://127.0.0.1:{token}")),
        (
            vars::TOKEN_SERVER,
            format!("http://127.0.0.1:{token_server}/token"),
        ),
        (vars::TOKEN_SERVICE, TOKEN_SERVICE.to_owned()),
        (vars::PYPISERVER, format!("http://127.0.0.1:{pypi}/")),
        (vars::DEVPI, format!("http://127.0.0.1:{devpi}/{USER}/dev/")),
        (vars::VERDACCIO, format!("http://127.0.0.1:{npm}/")),
        (vars::NPM_TOKEN, npm_token),
        (
            vars::KELLNR_INDEX,
            format!("sparse+http://127.0.0.1:{kellnr}/api/v1/crates/"),
        ),
        (vars::KELLNR_TOKEN, kellnr_token),
        (vars::USER, USER.to_owned()),
        (vars::PASSWORD, password),
        (vars::TOOLS, paths.tools.display().to_string()),
        (vars::STATE, state.display().to_string()),
        (vars::DOCKER_HOST, docker_host),
        (
            vars::SELF_DIST,
            paths.test_dir.join("self-dist").display().to_string(),
        ),
    ];
    started.env.extend(installed.env());
    debug_assert!(
        vars::ALL
            .iter()
            .all(|name| started.env.iter().any(|(set, _)| set == name))
    );
    println!(
        "    {} servers ready and users created in {:.1} s",
        started.count(),
        clock.elapsed().as_secs_f64()
    );
    Ok(started)
}

/// dockerd's socket and exec root for this harness process (short: unix socket paths must
/// stay under 108 bytes).
pub(crate) fn docker_exec_root() -> PathBuf {
    std::env::temp_dir().join(format!("castoff-dockerd-{}", std::process::id()))
}

/// After dockerd stopped: unmounts the network namespace it bind-mounts and leaves mounted,
/// then removes the directory. Also called from the Ctrl-C / SIGTERM handler.
pub(crate) fn remove_docker_exec_root(exec_root: &Path) {
    let netns = exec_root.join("exec/netns/default");
    if netns.exists() {
        let _ = Command::new("umount").arg(&netns).status();
    }
    let _ = fs::remove_dir_all(exec_root);
}

/// Writes a file only its owner can read (created with mode 0600, never world-readable).
fn write_private(path: &Path, contents: String) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// 32 hex characters from /dev/urandom: safe in URLs, YAML and shell quoting.
fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A CA plus a leaf for the TLS registry (rustls rejects a self-signed CA:TRUE certificate as
/// an end entity: `CaUsedAsEndEntity`), and the token server's self-signed signing key.
fn make_certificates(dir: &Path, log: &Path) -> Result<()> {
    let openssl = |args: &[&str]| {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(dir);
        run_logged(command, log).context("generating the test certificates with openssl")
    };
    const EC: [&str; 5] = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &EC,
            &["-days", "3650", "-subj", "/CN=castoff-test-ca"],
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"][..],
            &EC,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    )?;
    fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "leaf.ext",
        "-out",
        "server.crt",
    ])?;
    // The token server's signing key; the registry trusts its self-signed certificate.
    openssl(
        &[
            &["req", "-x509"][..],
            &EC,
            &[
                "-days",
                "3650",
                "-subj",
                "/CN=castoff-test-token-signer",
                "-keyout",
                "signer.key",
                "-out",
                "signer.crt",
            ],
        ]
        .concat(),
    )
}

fn htpasswd_auth(state: &Path) -> String {
    format!(
        "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
        state.join("registry.htpasswd").display()
    )
}

fn token_auth(state: &Path, token_port: u16) -> String {
    format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: {TOKEN_SERVICE}\n    \
         issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
        state.join("tls/signer.crt").display()
    )
}

/// `registry.htpasswd`: bcrypt cost 4 (distribution verifies bcrypt on every request; passlib's
/// default cost 12 costs ~300 ms each). `pypi.htpasswd`: apr1 via passlib, which pypiserver
/// reads. The password reaches Python through the environment, never the command line.
fn write_password_files(paths: &Paths, password: &str, log: &Path) -> Result<()> {
    const SCRIPT: &str = r#"
import os, sys, bcrypt
from passlib.apache import HtpasswdFile
user, password, state = sys.argv[1], os.environ["CASTOFF_HTPASSWD_PASSWORD"], sys.argv[2]
hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4, prefix=b"2b")).decode()
with open(os.path.join(state, "registry.htpasswd"), "w") as f:
    f.write(f"{user}:{hashed}\n")
h = HtpasswdFile(os.path.join(state, "pypi.htpasswd"), new=True)
h.set_password(user, password)
h.save()
"#;
    let mut command = Command::new(paths.tools.join("venv/bin/python"));
    command
        .arg("-c")
        .arg(SCRIPT)
        .arg(USER)
        .arg(&paths.state)
        .env("CASTOFF_HTPASSWD_PASSWORD", password);
    run_logged(command, log).context("writing the htpasswd files")
}

fn write_verdaccio_config(state: &Path, port: u16) -> Result<std::path::PathBuf> {
    let storage = state.join("verdaccio-storage");
    let plugins = state.join("verdaccio-plugins");
    // The plugins directory must exist, else Verdaccio logs an ENOENT warning per plugin.
    fs::create_dir_all(&storage)?;
    fs::create_dir_all(&plugins)?;
    let config = state.join("verdaccio.yaml");
    fs::write(
        &config,
        format!(
            "storage: {storage}\n\
             plugins: {plugins}\n\
             web:\n  enable: false\n\
             auth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 1000\n    algorithm: bcrypt\n    rounds: 4\n\
             # Nothing is fetched from outside.\n\
             uplinks: {{}}\n\
             packages:\n\
             \x20 '@*/*':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\n\
             \x20 '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\n\
             # The audit middleware would proxy `npm audit` to the public registry.\n\
             middlewares:\n  audit:\n    enabled: false\n\
             # The default 10mb rejects an 8 MB tarball with 413.\n\
             max_body_size: 200mb\n\
             listen: 127.0.0.1:{port}\n\
             log:\n  type: stdout\n  format: pretty\n  level: warn\n",
            storage = storage.display(),
            plugins = plugins.display(),
            htpasswd = state.join("verdaccio.htpasswd").display(),
        ),
    )?;
    Ok(config)
}

/// Creates user `ci` through the npm login API and returns its token.
fn verdaccio_add_user(
    client: &reqwest::blocking::Client,
    port: u16,
    password: &str,
) -> Result<String> {
    let url = format!("http://127.0.0.1:{port}/-/user/org.couchdb.user:{USER}");
    let body = json!({"_id": format!("org.couchdb.user:{USER}"), "name": USER, "password": password,
                      "type": "user", "roles": []});
    let response = client
        .put(&url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .with_context(|| format!("PUT {url}"))?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    if status.as_u16() != 201 {
        bail!(
            "Verdaccio: creating user {USER} failed: PUT {url} -> {status}: {}",
            redact(&text, password)
        );
    }
    let reply: serde_json::Value =
        serde_json::from_str(&text).context("Verdaccio's /-/user reply")?;
    reply["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Verdaccio: PUT {url} -> {status} without a token"))
}

/// devpi's JSON API: log in as root, create user `ci` and its index `ci/dev` (no bases, so
/// nothing is proxied; `volatile: false` makes uploads immutable like PyPI).
fn devpi_add_user_and_index(
    client: &reqwest::blocking::Client,
    port: u16,
    root_password: &str,
    password: &str,
) -> Result<()> {
    let base = format!("http://127.0.0.1:{port}");
    let secrets = [root_password, password];
    let call = |method: reqwest::Method,
                path: &str,
                body: serde_json::Value,
                auth: Option<&str>|
     -> Result<serde_json::Value> {
        let url = format!("{base}{path}");
        let mut request = client
            .request(method.clone(), &url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string());
        if let Some(auth) = auth {
            request = request.header("X-Devpi-Auth", auth);
        }
        let response = request
            .send()
            .with_context(|| format!("devpi: {method} {url}"))?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if !status.is_success() {
            let mut text = text;
            for secret in secrets {
                text = redact(&text, secret);
            }
            bail!("devpi: {method} {url} -> {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    let login = call(
        reqwest::Method::POST,
        "/+login",
        json!({"user": "root", "password": root_password}),
        None,
    )?;
    let token = login["result"]["password"]
        .as_str()
        .ok_or_else(|| anyhow!("devpi: /+login answered without a session token"))?;
    let root_auth = base64(format!("root:{token}").as_bytes());
    call(
        reqwest::Method::PUT,
        &format!("/{USER}"),
        json!({"password": password, "email": "ci@example.invalid"}),
        Some(&root_auth),
    )?;
    call(
        reqwest::Method::PUT,
        &format!("/{USER}/dev"),
        json!({"type": "stage", "bases": [], "volatile": false}),
        Some(&root_auth),
    )?;
    Ok(())
}

fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "<redacted>")
    }
}

/// Standard base64 with padding (devpi's `X-Devpi-Auth`); small enough to not need a crate.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// pypiserver on 127.0.0.1:`port` serving `packages`: with `htpasswd`, uploads need its
/// users' passwords (`-a update`: reads do not); without, nothing needs any.
/// `--disable-fallback`: unknown projects must 404, not redirect to the public PyPI.
fn pypiserver_command(
    venv_bin: &Path,
    port: u16,
    htpasswd: Option<&Path>,
    packages: &Path,
) -> Command {
    let mut command = Command::new(venv_bin.join("pypi-server"));
    command.args(["run", "-i", "127.0.0.1", "-p", &port.to_string()]);
    match htpasswd {
        Some(htpasswd) => command.arg("-P").arg(htpasswd).args(["-a", "update"]),
        None => command.args(["-P", ".", "-a", "."]),
    };
    command
        .args(["--disable-fallback", "--hash-algo", "sha256"])
        .args(["--health-endpoint", "/health"])
        .arg(packages);
    command
}

/// A pypiserver of its own on a free loopback port, serving the empty directory
/// `dir/packages` with no authentication (log and PID file under `dir`); stopped when dropped.
/// For `bench --scale`: the harness's shared pypiserver re-reads a directory that holds every
/// earlier upload on each request, so its answers slow down as runs accumulate.
pub(crate) struct ScratchPypi {
    _server: Server,
    pub(crate) url: String,
}

impl ScratchPypi {
    /// `tools`: the harness's tool directory (`target/castoff-tools`), whose venv has
    /// pypiserver.
    pub(crate) fn start(tools: &Path, dir: &Path) -> Result<ScratchPypi> {
        let packages = dir.join("packages");
        fs::create_dir_all(&packages)?;
        let port = process::free_ports(1)?[0];
        let command = pypiserver_command(&tools.join("venv/bin"), port, None, &packages);
        let probe = http_probe(
            probe_client(None)?,
            format!("http://127.0.0.1:{port}/health"),
        );
        let mut server = Server::spawn(dir, "pypiserver", port, command, probe)?;
        process::wait_ready_quietly(&mut [&mut server])?;
        Ok(ScratchPypi {
            _server: server,
            url: format!("http://127.0.0.1:{port}/"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
