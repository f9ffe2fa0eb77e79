//! A real Prometheus (Debian's `prometheus`) on loopback with throwaway storage,
//! scraping an in-process [`Exporter`] every second: what metric gates are tested
//! against.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use tokio::task::JoinHandle;

use crate::server::{bind_loopback, spawn_http1};
use crate::skopeo::find_program;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const STDERR_TAIL_LINES: usize = 100;

/// An HTTP server with `/metrics` in the Prometheus text format: gauges whose values
/// tests set.
#[derive(Debug)]
pub struct Exporter {
    addr: SocketAddr,
    gauges: Arc<Mutex<BTreeMap<String, f64>>>,
    task: JoinHandle<()>,
}

impl Exporter {
    pub async fn start() -> Exporter {
        let gauges: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let (listener, addr) = bind_loopback("metrics exporter").await;
        let served = Arc::clone(&gauges);
        let task = spawn_http1(listener, move |_request| {
            let gauges = Arc::clone(&served);
            async move {
                let mut text = String::new();
                for (name, value) in gauges.lock().expect("gauges lock").iter() {
                    let _ = writeln!(text, "# TYPE {name} gauge\n{name} {value}");
                }
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(text)))
                        .expect("a response"),
                )
            }
        });
        Exporter { addr, gauges, task }
    }

    /// Sets gauge `name` (a metric name) to `value`.
    pub fn set(&self, name: &str, value: f64) {
        self.gauges
            .lock()
            .expect("gauges lock")
            .insert(name.to_owned(), value);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Prometheus process; dropping it stops it and removes its storage.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `127.0.0.1:0`, scraping `targets` every second.
    pub async fn start(targets: &[SocketAddr]) -> Prometheus {
        let program = find_program("prometheus").unwrap_or_else(|| {
            panic!("prometheus is not installed: run `apt-get install prometheus`")
        });
        let dir = tempfile::Builder::new()
            .prefix("gantry-prometheus-")
            .tempdir()
            .expect("creating Prometheus' temporary directory");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: gantry-test\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing the Prometheus config");
        let mut child = Command::new(&program)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = sender.as_ref().and_then(|_| listening_addr(&line)) {
                    let _ = sender.take().expect("checked").send(addr);
                }
                let mut tail = tail.lock().expect("stderr tail lock");
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let Ok(Ok(addr)) = tokio::time::timeout(STARTUP_TIMEOUT, receiver).await else {
            let _ = child.kill();
            let status = child.wait();
            let tail: Vec<String> = stderr_tail
                .lock()
                .expect("stderr tail lock")
                .iter()
                .cloned()
                .collect();
            panic!(
                "prometheus did not start ({status:?}); its stderr:\n{}",
                tail.join("\n")
            );
        };
        Prometheus {
            child,
            addr,
            stderr_tail,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the instant query `query` answers one sample whose value `accept`s,
    /// for at most `within`; panics with the last answer otherwise.
    pub async fn wait_for(&self, query: &str, within: Duration, accept: impl Fn(f64) -> bool) {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            let answer = client
                .post(format!("{}/api/v1/query", self.url()))
                .form(&[("query", query)])
                .send()
                .await;
            if let Ok(response) = answer {
                let body = response.text().await.unwrap_or_default();
                let value = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        v["data"]["result"][0]["value"][1]
                            .as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                    });
                if value.is_some_and(&accept) {
                    return;
                }
                last = body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .expect("stderr tail lock")
            .iter()
            .cloned()
            .collect();
        panic!(
            "Prometheus never answered {query} as wanted; last answer: {last}\nits stderr:\n{}",
            tail.join("\n")
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in Prometheus' `msg="Listening on" address=127.0.0.1:PORT` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("msg=\"Listening on\"") {
        return None;
    }
    let rest = &line[line.find("address=")? + "address=".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn reads_the_listening_line() {
        let line = "ts=2026-11-22T01:45:33.006Z caller=tls_config.go:232 level=info component=web msg=\"Listening on\" address=127.0.0.1:42689";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:42689".parse().unwrap())
        );
        let before = "ts=2026 caller=web.go:503 level=info component=web msg=\"Start listening for connections\" address=127.0.0.1:0";
        assert_eq!(listening_addr(before), None);
    }
}
