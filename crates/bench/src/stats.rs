//! The bounded request loop (fixed concurrency, stops at a count or a time
//! limit, whichever comes first) and latency percentiles.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one successful operation did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Work {
    /// HTTP requests it made.
    pub requests: u64,
    /// Payload bytes moved (blob scenarios).
    pub bytes: u64,
}

impl Work {
    pub fn requests(requests: u64) -> Self {
        Work { requests, bytes: 0 }
    }
}

/// Outcome of a loop.
#[derive(Debug, Default)]
pub struct LoopOut {
    /// Latency of each successful operation.
    pub latencies: Vec<Duration>,
    pub ok: u64,
    pub errors: u64,
    pub requests: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles.
pub fn percentiles(lat: &mut [Duration]) -> Percentiles {
    if lat.is_empty() {
        return Percentiles::default();
    }
    lat.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        lat[rank - 1].as_secs_f64() * 1000.0
    };
    Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: at(1.0) }
}

/// Run `op(i)` for i in 0..count on `conc` workers until the count is done
/// or `limit` has passed (operations in flight then are allowed to finish).
pub async fn run_loop<F, Fut>(conc: usize, count: u64, limit: Duration, op: F) -> LoopOut
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Work, String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let printed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(conc);
    for _ in 0..conc.max(1) {
        let (op, next, printed) = (op.clone(), next.clone(), printed.clone());
        workers.push(tokio::spawn(async move {
            let mut out = LoopOut::default();
            loop {
                if start.elapsed() >= limit {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(w) => {
                        out.latencies.push(t.elapsed());
                        out.ok += 1;
                        out.requests += w.requests;
                        out.bytes += w.bytes;
                    }
                    Err(e) => {
                        out.errors += 1;
                        if printed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("  error: {e}");
                        }
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        }));
    }
    let mut total = LoopOut::default();
    for w in workers {
        match w.await {
            Ok(mut o) => {
                total.latencies.append(&mut o.latencies);
                total.ok += o.ok;
                total.errors += o.errors;
                total.requests += o.requests;
                total.bytes += o.bytes;
                if total.first_error.is_none() {
                    total.first_error = o.first_error;
                }
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("worker panicked: {e}"));
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = percentiles(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
    }

    #[tokio::test]
    async fn stops_at_count() {
        let out = run_loop(4, 10, Duration::from_secs(5), |_| async { Ok(Work::requests(1)) }).await;
        assert_eq!((out.ok, out.requests, out.errors), (10, 10, 0));
    }
}
