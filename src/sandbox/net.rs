//! Listeners and connections whose transport the sandbox can cut: a connection is killed (reset without a response)
//! when its handler asks for it, when its listener's gate closes (service taken down) or at shutdown.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Closed when the listener's service goes down, or at sandbox shutdown.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub closed: AtomicBool,
}

/// A TCP listener whose connections carry a kill switch.
pub(crate) struct SbListener {
    pub inner: TcpListener,
    pub gate: Arc<Gate>,
    pub global: Arc<Gate>,
}

/// A TCP connection that fails at transport level once killed.
pub(crate) struct SbStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
    gate: Arc<Gate>,
    global: Arc<Gate>,
}

impl SbStream {
    fn dead(&self) -> bool {
        self.kill.load(Ordering::Relaxed)
            || self.gate.closed.load(Ordering::Relaxed)
            || self.global.closed.load(Ordering::Relaxed)
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "sandbox: connection cut")
}

impl AsyncRead for SbStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SbStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener for SbListener {
    type Io = SbStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SbStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return (
                        SbStream {
                            inner: s,
                            kill: Arc::new(AtomicBool::new(false)),
                            gate: self.gate.clone(),
                            global: self.global.clone(),
                        },
                        a,
                    );
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Per-connection information handed to handlers: the peer and the connection's kill switch.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    pub addr: SocketAddr,
    pub kill: Arc<AtomicBool>,
}

impl ConnInfo {
    /// Cuts the connection: the response being produced is never written.
    pub(crate) fn cut(&self) {
        self.kill.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, SbListener>> for ConnInfo {
    fn connect_info(s: IncomingStream<'_, SbListener>) -> Self {
        ConnInfo {
            addr: *s.remote_addr(),
            kill: s.io().kill.clone(),
        }
    }
}
