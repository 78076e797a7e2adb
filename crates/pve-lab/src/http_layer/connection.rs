//! Serving accepted connections: the accept loop, one hyper connection per socket, and the
//! stream that can end in a TCP reset.
//!
//! Why separate: [`super::server`] is about starting a lab and the handle tests hold;
//! this is the socket-level machinery under it. Each request runs in its own task (a
//! panicking handler becomes a 500, not a silent drop), shutdown lets open connections
//! finish for at most 5 s, and a connection whose handler returns `ResetConnection`
//! (the `reset` and `lost` faults, a request body that broke off) is closed with
//! `SO_LINGER 0`, so the kernel sends an RST, what a crashed proxy looks like to a
//! client.
//!
//! Place in the direction: under `server`, above `router`. It hands each request to
//! [`super::router::handle`]; the state and `ResetConnection` come from the leaf
//! [`super::shared`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::router;
use super::shared::Shared;

/// Accepts connections until shutdown, then waits (at most 5 s) for open ones to finish.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let reset = Arc::new(AtomicBool::new(false));
            let io = ResettableStream {
                inner: stream,
                reset: Arc::clone(&reset),
            };
            match acceptor {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(io));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(tls, shared, reset, shutdown).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(io, shared, reset, shutdown).await,
            }
        });
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn serve_connection<Io>(
    io: Io,
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let reset = Arc::clone(&reset);
        async move {
            // Each request is its own tokio task so that a bug that panics in a handler
            // becomes a 500 naming the lab (as PVE answers 500 when a handler dies), not a
            // connection dropped without a word.
            let handled = tokio::spawn(async move { router::handle(&shared, request).await }).await;
            let outcome = handled.unwrap_or_else(|error| {
                tracing::error!(%error, "request handler died");
                Ok(crate::wire::error(&crate::api::ApiError::new(
                    500,
                    "internal error: the lab panicked handling this request (a lab bug)",
                )))
            });
            if outcome.is_err() {
                reset.store(true, Ordering::SeqCst);
            }
            outcome
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A TCP stream that, when its connection was reset by a fault, closes with
/// `SO_LINGER 0` so the peer gets an RST instead of an orderly FIN.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, buffer)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.reset.load(Ordering::SeqCst) {
            // No FIN for a reset connection: the drop sends the RST.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
