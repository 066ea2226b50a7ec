//! The accept loop: HTTP/1.1 connections over `zerocopy::Conn`, with the limits that keep
//! slow or idle clients from holding the server's descriptors.
//!
//! - At most `max_connections` open connections, and `max_connections_per_ip` from one
//!   address; a connection beyond either cap is answered `503` and closed at once.
//! - A request's header must arrive within `header_timeout` of connecting, or of its first
//!   byte on a kept-alive connection; a connection with no request in progress is closed after
//!   `idle_timeout` without one. (hyper's own header timer also runs between requests, so it
//!   is off, and `Activity` tells the watchdog of each connection what its state is.)
//! - A request body that yields nothing for `body_timeout` fails (`Stalling`), and so does a
//!   write the client reads nothing of for as long (`zerocopy::Conn`): the connection closes.
//! - `X-Forwarded-*` headers are removed from requests whose peer is not a trusted proxy, so
//!   nothing behind the edge can be misled by them.
//! - On shutdown the listener closes, each connection finishes its request in flight and
//!   closes, and `serve` returns once every connection has.

use crate::config::{Cidr, Connections};
use crate::http::zerocopy::{Conn, Peer};
use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

/// Headers a client could use to pose as a proxy: honoured from trusted proxies only.
const FORWARDED: [&str; 4] = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded"];

/// Serves `router` on `listener` until `stop` resolves, then drains every connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Connections,
    trusted: Vec<Cidr>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Slots { max: effective_max(limits.max_connections), per_ip: limits.max_connections_per_ip, ..Default::default() });
    let trusted: Arc<[Cidr]> = trusted.into();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (closed_tx, closed_rx) = watch::channel(());
    let mut stop = pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused) => continue,
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to be closed.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many open connections");
            // Written directly: a new stream's readiness is not known to the runtime yet.
            if let Ok(mut s) = stream.into_std() {
                let _ =
                    std::io::Write::write(&mut s, b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
            }
            continue;
        };
        let is_trusted = trusted.iter().any(|c| c.contains(peer.ip()));
        let conn = Connection { router: router.clone(), limits: limits.clone(), peer, trusted: is_trusted };
        tokio::spawn(conn.run(stream, slot, stop_rx.clone(), closed_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// The connection cap in force: the setting, bounded by the descriptor limit less room for
/// the database, blob files and the listener.
fn effective_max(configured: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match limit {
        Some(n) => configured.min((n as usize).saturating_sub(128).max(1)),
        None => configured,
    }
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Slots {
    max: usize,
    per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Slots {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("connection slots");
        let (total, by_ip) = &mut *open;
        let mine = by_ip.entry(ip).or_insert(0);
        if *total >= self.max || *mine >= self.per_ip {
            if *mine == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Slot { slots: self.clone(), ip })
    }
}

/// One open connection's place; given back when the connection closes.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("connection slots");
        let (total, by_ip) = &mut *open;
        *total -= 1;
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// What a connection is doing, as its watchdog needs to know: requests in progress, when
/// the header being read began, when it last went idle. Times are milliseconds since accept.
pub struct Activity {
    start: Instant,
    requests: AtomicUsize,
    /// 1 + when the first byte of the next header arrived; 0 while none has.
    header_from: AtomicU64,
    idle_from: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        // A new connection owes its first header from the start.
        Activity {
            start: Instant::now(),
            requests: AtomicUsize::new(0),
            header_from: AtomicU64::new(1),
            idle_from: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Bytes arrived: with no request in progress, they begin the next header.
    pub fn read(&self) {
        if self.requests.load(Relaxed) == 0 && self.header_from.load(Relaxed) == 0 {
            self.header_from.store(self.now() + 1, Relaxed);
            self.changed.notify_one();
        }
    }

    /// Bytes left: the end of a response still going out keeps an idle connection open.
    pub fn wrote(&self) {
        if self.requests.load(Relaxed) == 0 {
            self.idle_from.store(self.now(), Relaxed);
        }
    }

    fn request(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Relaxed);
        self.header_from.store(0, Relaxed);
        Busy(self.clone())
    }

    /// When the connection is to be closed if nothing changes; None while a request is in progress.
    fn deadline(&self, limits: &Connections) -> Option<Instant> {
        if self.requests.load(Relaxed) > 0 {
            return None;
        }
        let ms = |v: u64| self.start + Duration::from_millis(v);
        match self.header_from.load(Relaxed) {
            0 => Some(ms(self.idle_from.load(Relaxed)) + limits.idle_timeout),
            from => Some(ms(from - 1) + limits.header_timeout),
        }
    }
}

/// A request in progress, from its header until its response body is dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_from.store(a.now(), Relaxed);
        a.requests.fetch_sub(1, Relaxed);
        a.changed.notify_one();
    }
}

struct Connection {
    router: Router,
    limits: Connections,
    peer: SocketAddr,
    trusted: bool,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, _slot: Slot, mut stop: watch::Receiver<bool>, _closed: watch::Receiver<()>) {
        let activity = Arc::new(Activity::new());
        let io = hyper_util::rt::TokioIo::new(Conn::new(stream, activity.clone(), self.limits.body_timeout));
        let limits = self.limits.clone();
        let service = {
            let activity = activity.clone();
            hyper::service::service_fn(move |req| self.call(req, activity.request()))
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.header_read_timeout(None);
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut stopping = false;
        loop {
            let deadline = activity.deadline(&limits);
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = expired => {
                    if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                        // Dropping the connection closes its socket.
                        break;
                    }
                }
                _ = activity.changed.notified() => {}
                _ = stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }

    fn call(
        &self,
        mut req: hyper::Request<Incoming>,
        busy: Busy,
    ) -> impl Future<Output = Result<hyper::Response<Tracked>, Infallible>> + use<> {
        req.extensions_mut().insert(ConnectInfo(Peer(self.peer)));
        if !self.trusted {
            for name in FORWARDED {
                req.headers_mut().remove(name);
            }
        }
        let timeout = self.limits.body_timeout;
        let req = req.map(|b| axum::body::Body::new(Stalling { inner: b, timeout, waiting_since: None, timer: None }));
        let router = self.router.clone();
        async move {
            let Ok(resp) = tower::ServiceExt::oneshot(router, req).await;
            Ok(resp.map(|body| Tracked { body, _busy: busy }))
        }
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The error of a request body that sent nothing for the body timeout.
#[derive(Debug)]
pub struct BodyStalled;

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body sent nothing for the body timeout")
    }
}

impl std::error::Error for BodyStalled {}

/// A request body that fails when it yields nothing for `timeout` while it is read.
struct Stalling {
    inner: Incoming,
    timeout: Duration,
    waiting_since: Option<Instant>,
    /// Armed once per wait, re-armed only when it fires before the wait is over.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Body for Stalling {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.waiting_since = None;
                Poll::Ready(r.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = *this.waiting_since.get_or_insert_with(Instant::now) + this.timeout;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                loop {
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if deadline <= Instant::now() {
                        return Poll::Ready(Some(Err(Box::new(BodyStalled))));
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
