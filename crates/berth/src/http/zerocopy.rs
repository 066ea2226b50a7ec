//! The server's connections: TCP streams that send mapped blob bytes
//! (`blob::mapped`) from their file with `sendfile`, so a blob pulled from a local
//! store reaches the socket without being copied through Berth's memory. Every
//! other byte is written as usual.
//!
//! hyper hands a response body's buffers to the connection as they are (vectored
//! writes; a body with a length is not reframed), so a mapped window arrives here
//! at its own address, or at an address inside it after a partial write.

use crate::blob::mapped;
use crate::http::server::Activity;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The address of the peer of a connection (the `ConnectInfo` of every request).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// One accepted connection. It tells its `Activity` what it reads and writes, and fails a
/// write the client has taken nothing of for the stall timeout (a client that stops reading
/// a response does not hold its connection for ever).
pub struct Conn {
    stream: TcpStream,
    activity: Arc<Activity>,
    stall: Duration,
    /// When the write in progress started to wait for the client.
    blocked_since: Option<Instant>,
    /// Armed at most once per stall period (re-armed when it fires early).
    timer: Pin<Box<Sleep>>,
}

impl Conn {
    pub fn new(stream: TcpStream, activity: Arc<Activity>, stall: Duration) -> Conn {
        Conn { stream, activity, stall, blocked_since: None, timer: Box::pin(tokio::time::sleep(stall)) }
    }

    /// `r`, a write's result, with the stall rule applied: progress clears the wait, and a
    /// wait longer than the stall timeout becomes an error that closes the connection.
    fn stalled(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(r) => {
                self.blocked_since = None;
                if matches!(r, Ok(n) if n > 0) {
                    self.activity.wrote();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let since = *self.blocked_since.get_or_insert_with(Instant::now);
                loop {
                    if self.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let deadline = since + self.stall;
                    if deadline <= Instant::now() {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client read nothing for the body timeout")));
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Sends `buf`, which shows `file` from `at`, with `sendfile`: what the kernel took.
    fn poll_sendfile(&self, cx: &mut Context<'_>, file: &std::fs::File, at: u64, len: usize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let mut off = at;
            match self.stream.try_io(Interest::WRITABLE, || Ok(rustix::fs::sendfile(&self.stream, file, Some(&mut off), len)?)) {
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
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = self.poll_send(cx, buf, mapped::source(buf));
        self.stalled(cx, r)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // Ordinary buffers up to the first mapped one go in one vectored write; a mapped
        // buffer at the front goes alone, from its file. A partial write is fine either way.
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else { return Poll::Ready(Ok(0)) };
        let r = if let Some(source) = mapped::source(&bufs[first]) {
            self.poll_send(cx, &bufs[first], Some(source))
        } else {
            let plain = bufs[first..].iter().position(|b| mapped::source(b).is_some()).map_or(bufs.len(), |k| first + k);
            Pin::new(&mut self.stream).poll_write_vectored(cx, &bufs[first..plain])
        };
        self.stalled(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
