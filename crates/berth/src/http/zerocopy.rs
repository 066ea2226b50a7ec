//! The server's connections: TCP streams that send mapped blob bytes
//! (`blob::mapped`) from their file with `sendfile`, so a blob pulled from a local
//! store reaches the socket without being copied through Berth's memory. Every
//! other byte is written as usual.
//!
//! hyper hands a response body's buffers to the connection as they are (vectored
//! writes; a body with a length is not reframed), so a mapped window arrives here
//! at its own address, or at an address inside it after a partial write.

use crate::blob::mapped;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections that send mapped blob bytes with `sendfile`.
pub struct Zerocopy(pub TcpListener);

/// The address of the peer of a connection (the `ConnectInfo` of every request).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, Zerocopy>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Zerocopy>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Listener for Zerocopy {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (Conn(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// One accepted connection.
pub struct Conn(TcpStream);

impl Conn {
    /// Sends `buf`, which shows `file` from `at`, with `sendfile`: what the kernel took.
    fn poll_sendfile(&self, cx: &mut Context<'_>, file: &std::fs::File, at: u64, len: usize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            let mut off = at;
            match self.0.try_io(Interest::WRITABLE, || Ok(rustix::fs::sendfile(&self.0, file, Some(&mut off), len)?)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(n) => {
                    crate::metrics::sendfile(n as u64);
                    return Poll::Ready(Ok(n));
                }
                r => return Poll::Ready(r),
            }
        }
    }

    /// Writes `buf`: from its file when it is mapped blob bytes (`source` is where they come
    /// from), else as usual.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        source: Option<(std::sync::Arc<std::fs::File>, u64)>,
    ) -> Poll<io::Result<usize>> {
        if let Some((file, at)) = source {
            match ready!(self.poll_sendfile(cx, &file, at, buf.len())) {
                // Nothing taken from the file (it ended early): the mapped bytes are sent instead.
                Ok(0) => {}
                r => return Poll::Ready(r),
            }
        }
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, buf, mapped::source(buf))
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // Ordinary buffers up to the first mapped one go in one vectored write; a mapped
        // buffer at the front goes alone, from its file. A partial write is fine either way.
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else { return Poll::Ready(Ok(0)) };
        if let Some(source) = mapped::source(&bufs[first]) {
            return self.poll_send(cx, &bufs[first], Some(source));
        }
        let plain = bufs[first..].iter().position(|b| mapped::source(b).is_some()).map_or(bufs.len(), |k| first + k);
        Pin::new(&mut self.0).poll_write_vectored(cx, &bufs[first..plain])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
