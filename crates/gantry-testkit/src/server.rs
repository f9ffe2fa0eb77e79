//! The accept loop shared by the in-process HTTP/1.1 servers (token issuer, fault proxy).

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;

use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

type BoxError = Box<dyn Error + Send + Sync>;

/// Binds `127.0.0.1:0`, panicking with the cause if that fails.
pub(crate) async fn bind_loopback(what: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|error| panic!("binding the {what} to 127.0.0.1:0: {error}"));
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    (listener, addr)
}

/// Serves HTTP/1.1 with keep-alive on `listener`, calling `handler` for every request.
///
/// Aborting the returned task stops the server: the connections live in a `JoinSet` owned by
/// the task, so they are aborted with it.
pub(crate) fn spawn_http1<H, F, B, E>(listener: TcpListener, handler: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let handler = handler.clone();
                    connections.spawn(async move {
                        // A connection error (a client hanging up, an injected fault) ends only
                        // that connection.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service_fn(handler))
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}
