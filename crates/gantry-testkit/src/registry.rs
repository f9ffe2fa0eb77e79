//! A Distribution (`docker-registry`) process on loopback, over plain HTTP or HTTPS.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::skopeo::find_program;
use crate::token::TokenIssuer;

/// The user name accepted by Basic and Token registries.
const USERNAME: &str = "gantry";
/// The password accepted by Basic and Token registries.
const PASSWORD: &str = "s3cret-pw";
/// The `service` (JWT audience) of Token registries.
const TOKEN_SERVICE: &str = "gantry-test-registry";
/// The JWT issuer of Token registries.
const TOKEN_ISSUER: &str = "gantry-test-issuer";
/// How long to wait for the registry to report its port, and for access-log barriers.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The path prefix of the requests that synchronize with the access log; they are not counted.
const BARRIER_PATH: &str = "/v2/_gantry_testkit_barrier/";
/// How many lines of the registry's stderr to keep for error messages.
const STDERR_TAIL_LINES: usize = 200;

/// How a [`Registry`] authenticates clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// Anonymous access, read and write.
    #[default]
    None,
    /// HTTP Basic auth against an htpasswd file (bcrypt).
    Basic,
    /// Bearer tokens from an in-process token issuer, obtained with Basic credentials.
    /// Anonymous token requests get a token that grants nothing.
    Token,
}

/// Requests a registry served, by method, from its access log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `GET` requests.
    pub get: u64,
    /// `HEAD` requests.
    pub head: u64,
    /// `PUT` requests.
    pub put: u64,
    /// `POST` requests.
    pub post: u64,
    /// `PATCH` requests.
    pub patch: u64,
    /// `DELETE` requests.
    pub delete: u64,
}

impl RequestCounts {
    /// All requests of the six methods.
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.post + self.patch + self.delete
    }

    fn count(&mut self, method: &str) {
        match method {
            "GET" => self.get += 1,
            "HEAD" => self.head += 1,
            "PUT" => self.put += 1,
            "POST" => self.post += 1,
            "PATCH" => self.patch += 1,
            "DELETE" => self.delete += 1,
            _ => {}
        }
    }
}

/// A running `docker-registry` (Distribution 2.8) listening on `127.0.0.1` on a free port,
/// storing into a temporary directory.
///
/// Dropping it kills the process, waits for it, and deletes its directory.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    auth: RegistryAuth,
    storage_dir: PathBuf,
    access_log: Arc<AccessLog>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    next_barrier: AtomicU64,
    token_issuer: Option<TokenIssuer>,
    /// The PEM file of the CA that signed the serving certificate, for HTTPS registries.
    ca_cert_path: Option<PathBuf>,
    // Declared last so that it is deleted after the process is gone.
    dir: TempDir,
}

/// What the stdout reader learned from the access log.
#[derive(Debug, Default)]
struct AccessLog {
    state: Mutex<AccessLogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct AccessLogState {
    counts: RequestCounts,
    /// The highest barrier number seen in the log.
    barrier_seen: u64,
}

impl Registry {
    /// Starts an anonymous registry.
    pub async fn start() -> Registry {
        Registry::start_with(RegistryAuth::None).await
    }

    /// Starts a registry with the given authentication. Panics, saying how to install it, if
    /// `docker-registry` is missing, and with its stderr if it does not start within 10 s.
    pub async fn start_with(auth: RegistryAuth) -> Registry {
        Registry::launch(auth, false).await
    }

    /// A plain (anonymous) registry serving HTTPS with a certificate for `127.0.0.1` and
    /// `localhost`, signed by a CA generated for this registry (see
    /// [`ca_cert_path`](Self::ca_cert_path)). [`host`](Self::host) is still `127.0.0.1:PORT`.
    pub async fn start_tls() -> Registry {
        Registry::launch(RegistryAuth::None, true).await
    }

    /// An anonymous registry that sends Distribution notifications (push and pull
    /// events) to `url`, with `Authorization: Bearer <token>`.
    pub async fn start_notifying(url: &str, token: &str) -> Registry {
        Registry::launch_with(RegistryAuth::None, false, Some((url, token))).await
    }

    async fn launch(auth: RegistryAuth, tls: bool) -> Registry {
        Registry::launch_with(auth, tls, None).await
    }

    async fn launch_with(auth: RegistryAuth, tls: bool, notify: Option<(&str, &str)>) -> Registry {
        let program = find_program("docker-registry").unwrap_or_else(|| {
            panic!(
                "docker-registry (the Distribution registry) is not installed: \
                 run `apt-get install docker-registry`"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()
            .expect("creating the registry's temporary directory");
        let storage_dir = dir.path().join("storage");
        std::fs::create_dir(&storage_dir).expect("creating the registry's storage directory");

        let token_issuer = match auth {
            RegistryAuth::Token => {
                Some(TokenIssuer::start(TOKEN_SERVICE, TOKEN_ISSUER, USERNAME, PASSWORD).await)
            }
            RegistryAuth::None | RegistryAuth::Basic => None,
        };
        let auth_section = match (auth, &token_issuer) {
            (RegistryAuth::None, _) => String::new(),
            (RegistryAuth::Basic, _) => {
                let htpasswd = dir.path().join("htpasswd");
                write_htpasswd(&htpasswd);
                format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: '{}'\n",
                    htpasswd.display()
                )
            }
            (RegistryAuth::Token, Some(issuer)) => {
                let bundle = dir.path().join("token-roots.pem");
                std::fs::write(&bundle, issuer.certificate_pem())
                    .expect("writing the token root certificate");
                format!(
                    "auth:\n  token:\n    realm: '{}'\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: '{}'\n",
                    issuer.realm(),
                    bundle.display()
                )
            }
            (RegistryAuth::Token, None) => unreachable!("a token registry has an issuer"),
        };
        let (tls_section, ca_cert_path) = if tls {
            let files = write_tls_files(dir.path());
            let section = format!(
                "  tls:\n    certificate: '{}'\n    key: '{}'\n",
                files.certificate.display(),
                files.key.display()
            );
            (section, Some(files.ca_certificate))
        } else {
            (String::new(), None)
        };
        let config_path = dir.path().join("config.yml");
        let mut text = config(&storage_dir, &tls_section, &auth_section);
        if let Some((url, token)) = notify {
            let _ = write!(
                text,
                "notifications:\n  endpoints:\n    - name: gantry\n      url: '{url}'\n      \
                 headers:\n        Authorization: ['Bearer {token}']\n      timeout: 2s\n      \
                 threshold: 3\n      backoff: 200ms\n"
            );
        }
        std::fs::write(&config_path, text).expect("writing the registry config");

        let mut child = Command::new(&program)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));

        let access_log = Arc::new(AccessLog::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let reader_log = Arc::clone(&access_log);
        std::thread::spawn(move || read_access_log(stdout, &reader_log));

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (port_sender, port_receiver) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let reader_tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || read_stderr(stderr, &reader_tail, port_sender));

        let addr = match tokio::time::timeout(STARTUP_TIMEOUT, port_receiver).await {
            Ok(Ok(addr)) => addr,
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                let why = if outcome.is_err() {
                    "did not report its port within 10 s"
                } else {
                    "exited"
                };
                panic!(
                    "docker-registry {why} ({status:?}); its stderr:\n{}",
                    tail_text(&stderr_tail)
                );
            }
        };
        Registry {
            child,
            addr,
            auth,
            storage_dir,
            access_log,
            stderr_tail,
            next_barrier: AtomicU64::new(0),
            token_issuer,
            ca_cert_path,
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `https` for [`start_tls`](Self::start_tls) registries, `http` for the others.
    pub fn scheme(&self) -> &'static str {
        if self.ca_cert_path.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// PEM file of the CA that signed this registry's certificate (`None` for non-TLS
    /// registries).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert_path.as_deref()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its authentication.
    pub fn auth(&self) -> RegistryAuth {
        self.auth
    }

    /// The user name that Basic and Token registries accept (anonymous ones ignore it).
    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The password that Basic and Token registries accept (anonymous ones ignore it).
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The filesystem storage root (`storage.filesystem.rootdirectory`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }

    /// The directory holding the config, credentials and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How many tokens its issuer has handed out (0 unless [`RegistryAuth::Token`]).
    pub fn tokens_issued(&self) -> u64 {
        self.token_issuer
            .as_ref()
            .map_or(0, TokenIssuer::tokens_issued)
    }

    /// The requests served since start or the last [`reset_request_counts`](Self::reset_request_counts).
    ///
    /// Exact for every request whose response the caller has received: the call first sends a
    /// marker request (not counted) and waits until the access log shows it. It blocks the
    /// calling thread for that round trip, about a millisecond.
    pub fn request_counts(&self) -> RequestCounts {
        self.access_log_barrier();
        self.access_log
            .state
            .lock()
            .expect("access log lock")
            .counts
    }

    /// Sets the request counts to zero, after every request already answered is counted.
    pub fn reset_request_counts(&self) {
        self.access_log_barrier();
        self.access_log
            .state
            .lock()
            .expect("access log lock")
            .counts = RequestCounts::default();
    }

    /// The last lines the registry wrote to stderr (its application log), for diagnostics.
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }

    /// Sends a marker request and waits until the access log has caught up with it.
    fn access_log_barrier(&self) {
        let number = self.next_barrier.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.ca_cert_path {
            None => self.send_plain_marker(number),
            Some(ca_cert_path) => self.send_tls_marker(number, ca_cert_path),
        }

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut state = self.access_log.state.lock().expect("access log lock");
        while state.barrier_seen < number {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the registry's access log did not show marker request {number} within 10 s"
            );
            state = self
                .access_log
                .changed
                .wait_timeout(state, left)
                .expect("access log lock")
                .0;
        }
    }

    /// Sends marker request `number` over plain HTTP/1.1 on a blocking socket.
    fn send_plain_marker(&self, number: u64) {
        let mut stream = TcpStream::connect_timeout(&self.addr, STARTUP_TIMEOUT)
            .unwrap_or_else(|error| panic!("connecting to the registry at {}: {error}", self.addr));
        stream
            .set_read_timeout(Some(STARTUP_TIMEOUT))
            .expect("setting a read timeout");
        write!(
            stream,
            "GET {BARRIER_PATH}{number} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("sending the access-log marker request");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .expect("reading the marker response");
    }

    /// Sends marker request `number` over HTTPS, trusting the registry's CA.
    ///
    /// The caller may be on a runtime thread, where blocking on another runtime panics, so the
    /// request runs on a fresh thread with its own single-threaded runtime and client.
    fn send_tls_marker(&self, number: u64, ca_cert_path: &Path) {
        let url = format!("https://{}{BARRIER_PATH}{number}", self.addr);
        let client = tls_client(ca_cert_path);
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("building a runtime for the marker request")
                        .block_on(async {
                            let response = client.get(&url).timeout(STARTUP_TIMEOUT).send().await?;
                            response.bytes().await.map(drop)
                        })
                })
                .join()
                .expect("the marker request thread panicked")
        });
        outcome.unwrap_or_else(|error| panic!("sending the access-log marker {url}: {error}"));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that trusts the CA in `ca_cert_path` besides the native roots.
pub(crate) fn tls_client(ca_cert_path: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_cert_path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", ca_cert_path.display()));
    let certificate = reqwest::Certificate::from_pem(&pem)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", ca_cert_path.display()));
    reqwest::Client::builder()
        .add_root_certificate(certificate)
        .build()
        .expect("building a TLS client")
}

/// The PEM files written by [`write_tls_files`].
struct TlsFiles {
    certificate: PathBuf,
    key: PathBuf,
    ca_certificate: PathBuf,
}

/// Generates a CA and a serving certificate for `127.0.0.1` and `localhost` signed by it, and
/// writes the serving certificate, its key and the CA certificate into `dir`.
fn write_tls_files(dir: &Path) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };

    let ca_key = KeyPair::generate().expect("generating the CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gantry-testkit registry CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params
        .self_signed(&ca_key)
        .expect("self-signing the CA certificate");

    let leaf_key = KeyPair::generate().expect("generating the registry's key");
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate params");
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("signing the registry's certificate");

    let files = TlsFiles {
        certificate: dir.join("tls-cert.pem"),
        key: dir.join("tls-key.pem"),
        ca_certificate: dir.join("tls-ca.pem"),
    };
    std::fs::write(&files.certificate, leaf.pem()).expect("writing the registry's certificate");
    std::fs::write(&files.key, leaf_key.serialize_pem()).expect("writing the registry's key");
    std::fs::write(&files.ca_certificate, ca.pem()).expect("writing the CA certificate");
    files
}

/// The config file; `tls_section` goes under `http:`, `auth_section` at the top level.
fn config(storage_dir: &Path, tls_section: &str, auth_section: &str) -> String {
    let mut config = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: '{}'
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: gantry-testkit-7f3a9c2e51d84b60a1e9
{}validation:
  disabled: false
  manifests:
    urls:
      allow:
        - '^https://example\\.invalid/'
",
        storage_dir.display(),
        tls_section
    );
    // No `storage.cache` section: no blob descriptor cache, no redis.
    let _ = write!(config, "{auth_section}");
    config
}

/// Writes an htpasswd file with a bcrypt hash of the fixed credentials.
fn write_htpasswd(path: &Path) {
    let program = find_program("htpasswd").unwrap_or_else(|| {
        panic!("htpasswd is not installed: run `apt-get install apache2-utils`")
    });
    let output = Command::new(program)
        .args(["-Bbn", USERNAME, PASSWORD])
        .output()
        .unwrap_or_else(|error| panic!("running htpasswd: {error}"));
    assert!(
        output.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(path, output.stdout).expect("writing the htpasswd file");
}

/// Counts access-log lines (Apache combined format) by method, forever.
fn read_access_log(stdout: impl std::io::Read, log: &AccessLog) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        // `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"`
        let Some(request_line) = line.split('"').nth(1) else {
            continue;
        };
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            continue;
        };
        let mut state = log.state.lock().expect("access log lock");
        if let Some(number) = path.strip_prefix(BARRIER_PATH) {
            if let Ok(number) = number.parse::<u64>() {
                state.barrier_seen = state.barrier_seen.max(number);
                log.changed.notify_all();
            }
        } else {
            state.counts.count(method);
        }
    }
}

/// Keeps the tail of stderr and reports the port from the `listening on` line.
fn read_stderr(
    stderr: impl std::io::Read,
    tail: &Mutex<VecDeque<String>>,
    port_sender: tokio::sync::oneshot::Sender<SocketAddr>,
) {
    let mut port_sender = Some(port_sender);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let addr = port_sender.as_ref().and_then(|_| listening_addr(&line));
        {
            let mut tail = tail.lock().expect("stderr tail lock");
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        // Reported after the line is in the tail, so that the tail shows it once started.
        if let Some(addr) = addr {
            let _ = port_sender.take().expect("checked above").send(addr);
        }
    }
}

/// The address in `msg="listening on 127.0.0.1:35963"` or, for TLS,
/// `msg="listening on 127.0.0.1:35963, tls"`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let end = rest
        .find(|c: char| c == '"' || c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().expect("stderr tail lock");
    let mut text = String::new();
    for line in tail.iter() {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn parses_the_listening_line() {
        let line = r#"time="2026-11-21T22:00:02.5706Z" level=info msg="listening on 127.0.0.1:45525" go.version=go1.19.8"#;
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:45525".parse().unwrap())
        );
        let line = r#"time="2026-11-21T22:00:02.5706Z" level=info msg="listening on 127.0.0.1:45525, tls" go.version=go1.19.8"#;
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:45525".parse().unwrap())
        );
        assert_eq!(
            listening_addr("level=info msg=\"redis not configured\""),
            None
        );
    }
}
