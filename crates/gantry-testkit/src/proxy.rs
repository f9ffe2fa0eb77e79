//! A fault-injecting HTTP/1.1 reverse proxy.

use std::error::Error;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;

use crate::server::{bind_loopback, spawn_http1};

type BoxError = Box<dyn Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// What a [`Fault`] does to a request it applies to.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Waits this long, then forwards.
    Delay(Duration),
    /// Answers this status without forwarding, with `Retry-After: SECONDS` when `Some`.
    Status {
        /// The HTTP status code, e.g. 503 or 429.
        code: u16,
        /// The `Retry-After` header's seconds.
        retry_after: Option<u64>,
    },
    /// Forwards, then sends the response headers and only the first N body bytes, then closes
    /// the connection abruptly.
    CutResponseAfter(usize),
    /// Forwards, but flips one byte in the middle of the response body (the length is kept).
    /// The only action that buffers a whole body.
    CorruptResponse,
    /// Closes the client connection without any response.
    DropConnection,
}

/// A fault for the next `times` requests whose method is `method` (any if `None`) and whose
/// path and query contain `path_contains`. Once applied `times` times, it is used up.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The method to match (case-insensitive), or `None` for any.
    pub method: Option<String>,
    /// A substring of the path and query to match (empty matches all).
    pub path_contains: String,
    /// How many matching requests it applies to.
    pub times: usize,
    /// What it does.
    pub action: FaultAction,
}

/// An HTTP/1.1 reverse proxy on `127.0.0.1:0` in front of an upstream, injecting [`Fault`]s.
///
/// Bodies stream through in both directions and connections are kept alive. The `Host` header
/// is forwarded unchanged, so a registry behind it builds upload URLs that point back at the
/// proxy. Dropping it stops the proxy and closes its connections.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct ProxyState {
    upstream: SocketAddr,
    client: Client<HttpConnector, Incoming>,
    faults: Mutex<Vec<Fault>>,
    /// (arrival, method, path and query) of every request.
    requests: Mutex<Vec<(Instant, String, String)>>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (plain HTTP).
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let state = Arc::new(ProxyState {
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let (listener, addr) = bind_loopback("fault proxy").await;
        let handler_state = Arc::clone(&state);
        let task = spawn_http1(listener, move |request| {
            let state = Arc::clone(&handler_state);
            async move { state.handle(request).await }
        });
        FaultProxy { addr, state, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a fault; faults are tried in the order added, and one request gets at most one.
    pub fn add_fault(&self, fault: Fault) {
        self.state.faults.lock().expect("faults lock").push(fault);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.state.faults.lock().expect("faults lock").clear();
    }

    /// Every request seen, in order of arrival: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.timed_requests()
            .into_iter()
            .map(|(_, method, path)| (method, path))
            .collect()
    }

    /// Every request seen, in order of arrival, with the instant it arrived: for tests of
    /// how long a client waited between two tries.
    pub fn timed_requests(&self) -> Vec<(Instant, String, String)> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.state.requests.lock().expect("requests lock").clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProxyState {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
        let method = request.method().as_str().to_owned();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        self.requests.lock().expect("requests lock").push((
            Instant::now(),
            method.clone(),
            path.clone(),
        ));
        let action = self.take_fault(&method, &path);

        match &action {
            Some(FaultAction::Status { code, retry_after }) => {
                // Read the request's body first, as a registry does before it answers:
                // an answer sent while the client still writes reaches it, depending on
                // timing, as a broken connection instead of this status.
                let _ = request.into_body().collect().await;
                return Ok(status_response(*code, *retry_after));
            }
            // Returning an error makes hyper close the connection without writing a response.
            Some(FaultAction::DropConnection) => {
                return Err("injected fault: drop connection".into());
            }
            Some(FaultAction::Delay(delay)) => tokio::time::sleep(*delay).await,
            Some(FaultAction::CutResponseAfter(_) | FaultAction::CorruptResponse) | None => {}
        }

        let response = match self.forward(request, &path).await {
            Ok(response) => response,
            Err(error) => {
                return Ok(text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("fault proxy: upstream {}: {error}", self.upstream),
                ));
            }
        };
        let (parts, body) = response.into_parts();
        let body = match action {
            Some(FaultAction::CutResponseAfter(limit)) => Truncated {
                inner: body,
                remaining: limit,
                grace: None,
            }
            .boxed(),
            Some(FaultAction::CorruptResponse) => {
                let mut data = body.collect().await?.to_bytes().to_vec();
                if !data.is_empty() {
                    let middle = data.len() / 2;
                    data[middle] ^= 0xFF;
                }
                Full::new(Bytes::from(data))
                    .map_err(|never| match never {})
                    .boxed()
            }
            _ => body.map_err(BoxError::from).boxed(),
        };
        Ok(Response::from_parts(parts, body))
    }

    /// Takes one use of the first fault matching the request.
    fn take_fault(&self, method: &str, path: &str) -> Option<FaultAction> {
        let mut faults = self.faults.lock().expect("faults lock");
        let position = faults.iter().position(|fault| {
            fault.times > 0
                && fault
                    .method
                    .as_deref()
                    .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method))
                && path.contains(&fault.path_contains)
        })?;
        let fault = &mut faults[position];
        fault.times -= 1;
        let action = fault.action.clone();
        if fault.times == 0 {
            faults.remove(position);
        }
        Some(action)
    }

    async fn forward(
        &self,
        request: Request<Incoming>,
        path: &str,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let (mut parts, body) = request.into_parts();
        parts.uri = format!("http://{}{path}", self.upstream)
            .parse::<Uri>()
            .expect("an upstream URI");
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        // The client keeps an existing Host header, so the upstream sees the proxy's address.
        self.client.request(Request::from_parts(parts, body)).await
    }
}

fn status_response(code: u16, retry_after: Option<u64>) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(code).unwrap_or_else(|_| panic!("bad status code {code}"));
    let mut response = text_response(
        status,
        format!(
            r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault: status {code}"}}]}}"#
        ),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

fn text_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

/// A body that passes through `remaining` bytes, then fails, which makes hyper abort the
/// connection mid-body.
///
/// Hyper drops whatever it has not yet written when a body fails, so the failure waits a
/// short grace period during which the body is pending and hyper flushes the allowed bytes.
struct Truncated {
    inner: Incoming,
    remaining: usize,
    grace: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a cut response waits for the allowed bytes to be flushed before failing.
const CUT_GRACE: Duration = Duration::from_millis(50);

impl Body for Truncated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            let grace = this
                .grace
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_GRACE)));
            ready!(grace.as_mut().poll(context));
            return Poll::Ready(Some(Err("injected fault: response cut".into())));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(context)) {
            None => return Poll::Ready(None),
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            Some(Ok(frame)) => frame,
        };
        let frame = match frame.into_data() {
            Ok(mut data) => {
                data.truncate(this.remaining);
                this.remaining -= data.len();
                Frame::data(data)
            }
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }
}
