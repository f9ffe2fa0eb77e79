//! Connections: the accept loop, and what keeps slow or greedy clients from holding the
//! server. A client gets [`ConnectionLimits::header_timeout`] to send a request's
//! headers (from the connection's start, or from the first byte of a later request),
//! [`ConnectionLimits::body_timeout`] from its headers to the end of its body, and
//! [`ConnectionLimits::idle_timeout`] between requests on a kept-alive connection and to
//! take an answer it has stopped reading. Each client address (an IPv6 client's /64)
//! holds at most [`ConnectionLimits::per_address`] connections at once; one more is
//! answered 503 and closed. Connections from a trusted proxy are not counted: a load
//! balancer carries many clients on its connections, and it is where per-client
//! connection limits belong; the timeouts hold for it all the same.
//!
//! This replaces `axum::serve`, which has no timeouts and no limits; it serves HTTP/1.1
//! with hyper, as `axum::serve` does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

use crate::proxies::TrustedProxies;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a client may take, and how many connections it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's start, or from the first byte of a later request on it, until
    /// the request's headers are in.
    pub header_timeout: Duration,
    /// From a request's headers until its whole body is in. A body that is late fails
    /// the request (400), and the connection is closed.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request, and how long a
    /// client may leave an answer unread before the connection is closed.
    pub idle_timeout: Duration,
    /// Connections open at once from one client address (for IPv6, one /64); 0 for no
    /// limit. Trusted proxies are not counted.
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            per_address: 64,
        }
    }
}

/// Accepts and serves connections until `shutdown`; then stops accepting, lets every
/// connection finish the request it is on, and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    trusted: Arc<TrustedProxies>,
    shutdown: impl Future<Output = ()>,
) {
    let counts = Arc::new(Counts::default());
    let (stop, stopping) = watch::channel(false);
    let (open, all_closed) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = if limits.per_address == 0 || trusted.trusts(peer.ip()) {
            None
        } else if let Some(slot) = counts.take(address_key(peer.ip()), limits.per_address) {
            Some(slot)
        } else {
            tracing::debug!(%peer, "refused a connection: too many from this address");
            refuse(&stream);
            continue;
        };
        let connection = serve_connection(stream, peer, app.clone(), limits, stopping.clone());
        let still_open = all_closed.clone();
        tokio::spawn(async move {
            connection.await;
            drop((slot, still_open));
        });
    }
    drop(listener);
    stop.send_replace(true);
    drop(all_closed);
    open.closed().await;
}

/// An accept error: a connection reset before it was accepted is nobody's concern;
/// anything else (out of file descriptors) is logged, and accepting waits a second.
async fn accept_failed(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept connections; trying again in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The answer to a connection over the limit, written if the socket takes it at once
/// (it never waits for the client), then the connection is closed.
fn refuse(stream: &TcpStream) {
    const BODY: &str = "{\"code\":\"too_many_connections\",\"message\":\"too many connections from this address; close some and try again\"}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// The address a connection counts against: the peer's, with IPv4-mapped IPv6 as IPv4,
/// and IPv6 by its /64 (one client's usual allocation).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Open connections by address.
#[derive(Debug, Default)]
struct Counts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`Counts`], given back when dropped.
struct Slot {
    counts: Arc<Counts>,
    key: IpAddr,
}

impl Counts {
    fn take(self: &Arc<Self>, key: IpAddr, limit: usize) -> Option<Slot> {
        let mut counts = self.0.lock().expect("lock");
        let count = counts.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: Arc::clone(self),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().expect("lock");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Serves one connection until it ends, a timeout closes it, or the server stops (then
/// gracefully: the request in flight is answered).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let app = TowerToHyperService::new(app);
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |request: hyper::Request<Incoming>| {
            activity.request_started();
            let mut request = request.map(|body| {
                axum::body::Body::new(TimedBody {
                    inner: body,
                    limit: limits.body_timeout,
                    deadline: Instant::now() + limits.body_timeout,
                    sleep: None,
                })
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            let answered = hyper::service::Service::call(&app, request);
            let activity = Arc::clone(&activity);
            async move {
                let response = answered.await?;
                Ok::<_, Infallible>(response.map(|body| AnswerBody {
                    inner: body,
                    activity,
                }))
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    let mut connection = pin!(connection);
    let mut graceful = false;
    loop {
        let deadline = activity.deadline();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if activity.deadline().is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closed a connection: the client was too slow");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            _ = stopping.wait_for(|stop| *stop), if !graceful => {
                graceful = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What one connection is doing, for its deadline.
struct Activity {
    limits: ConnectionLimits,
    state: Mutex<State>,
    /// Woken when the deadline may have come nearer.
    changed: Notify,
}

struct State {
    /// Requests whose headers are in, and answers fully written (or dropped): more
    /// started than answered means a request is being handled, and only its body's
    /// timeout applies.
    started: u64,
    answered: u64,
    /// Since when the connection waits for a request: its start, or the last answer.
    waiting_since: Instant,
    /// When the first byte of the next request arrived.
    first_byte: Option<Instant>,
    /// Since when writing to the client has made no progress.
    write_stalled_since: Option<Instant>,
}

impl Activity {
    fn new(limits: ConnectionLimits) -> Activity {
        Activity {
            limits,
            state: Mutex::new(State {
                started: 0,
                answered: 0,
                waiting_since: Instant::now(),
                first_byte: None,
                write_stalled_since: None,
            }),
            changed: Notify::new(),
        }
    }

    /// When the connection is closed unless something happens first.
    fn deadline(&self) -> Option<Instant> {
        let state = self.state.lock().expect("lock");
        let reading = if state.started > state.answered {
            None
        } else if let Some(first) = state.first_byte {
            Some(first + self.limits.header_timeout)
        } else if state.answered == 0 {
            Some(state.waiting_since + self.limits.header_timeout)
        } else {
            Some(state.waiting_since + self.limits.idle_timeout)
        };
        let writing = state
            .write_stalled_since
            .map(|since| since + self.limits.idle_timeout);
        match (reading, writing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn bytes_read(&self) {
        let mut state = self.state.lock().expect("lock");
        if state.started == state.answered && state.first_byte.is_none() {
            state.first_byte = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn write_progress(&self, progressed: bool) {
        let mut state = self.state.lock().expect("lock");
        match (progressed, state.write_stalled_since) {
            (true, Some(_)) => state.write_stalled_since = None,
            (false, None) => {
                state.write_stalled_since = Some(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
            _ => {}
        }
    }

    fn request_started(&self) {
        let mut state = self.state.lock().expect("lock");
        state.started += 1;
        state.first_byte = None;
    }

    fn answer_finished(&self) {
        let mut state = self.state.lock().expect("lock");
        state.answered += 1;
        state.waiting_since = Instant::now();
        state.first_byte = None;
        drop(state);
        self.changed.notify_one();
    }
}

/// The socket, telling its connection's [`Activity`] when bytes arrive and when writes
/// stall.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, bytes);
        self.activity.write_progress(result.is_ready());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, buffers);
        self.activity.write_progress(result.is_ready());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that fails once it is late.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Instant,
    /// Made the first time the body is waited for.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
struct BodyTimeout(Duration);

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(self.limit).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body; when hyper is done with it (written, or the connection gone), the
/// connection waits for the next request.
struct AnswerBody {
    inner: axum::body::Body,
    activity: Arc<Activity>,
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        self.activity.answer_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_by_client() {
        let key = |text: &str| address_key(text.parse().unwrap()).to_string();
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn slots_are_limited_and_given_back() {
        let counts = Arc::new(Counts::default());
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let b: IpAddr = "198.51.100.8".parse().unwrap();
        let first = counts.take(a, 2).unwrap();
        let _second = counts.take(a, 2).unwrap();
        assert!(counts.take(a, 2).is_none(), "a third is refused");
        assert!(counts.take(b, 2).is_some(), "another address has its own");
        drop(first);
        assert!(
            counts.take(a, 2).is_some(),
            "a closed connection frees its place"
        );
    }
}
