//! What pull accounting costs, isolated from everything else a manifest GET does.
//!
//! `cargo bench -p berth --bench pull_accounting` (scripts/bench runs it and keeps the table in
//! docs/benchmarks.md). Two parts, on a real server on SQLite:
//! - the request path: `Pulls::record`, which is all a GET does for accounting, called from as
//!   many threads as there are cores at once (the worst case for its lock), in ns per pull;
//! - the writer: `pulls::flush`, the once-a-second transaction, for batches of 1,000 and
//!   10,000 pulls of one artifact (one hot image) and of 1,000 artifacts, in process CPU
//!   microseconds (user + system, nothing else running) and wall time per pull.
//!
//! The numbers are to be read beside a manifest GET's whole server CPU cost (berth-bench
//! `manifest-get-64`, CPU s per 1k requests).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::meta::{Audit, ManifestRow};
use common::{Db, TestApp};
use std::sync::Arc;
use std::time::Instant;

/// Process CPU seconds so far: the sum of every thread's time on a CPU, in nanoseconds, from
/// /proc/self/task/*/schedstat (finer than the clock ticks of /proc/self/stat).
fn cpu_s() -> f64 {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

fn audit() -> Audit {
    Audit {
        operator: "robot$ci+puller".into(),
        client_ip: "10.1.2.3".into(),
        user_agent: "docker/27.3.1 go/go1.22.7 git-commit/41ca978 kernel/6.1.0 os/linux arch/amd64".into(),
        ..Audit::default()
    }
}

/// One pull, as the GET handler records it (the resource string and audit are built per request).
fn record(app: &berth::app::App, m: &ManifestRow) {
    let resource = format!("library/app:{}", m.tag_id.unwrap_or_default());
    app.pulls.record(m, m.project_id, resource, audit());
}

async fn request_path(app: &Arc<berth::app::App>, m: &ManifestRow) -> (usize, f64) {
    const PER_THREAD: usize = 200_000;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..PER_THREAD {
                    record(app, m);
                }
            });
        }
    });
    let per_pull_ns = started.elapsed().as_secs_f64() * 1e9 / PER_THREAD as f64;
    // Written here so the next part starts with nothing waiting.
    berth::domain::pulls::flush(app).await.expect("flush");
    (threads, per_pull_ns)
}

/// CPU and wall microseconds per pull for writing a batch of `n` pulls spread over `rows`.
async fn writer(app: &Arc<berth::app::App>, rows: &[ManifestRow], n: usize) -> (f64, f64) {
    const ROUNDS: usize = 5;
    let (mut cpu, mut wall) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        for i in 0..n {
            record(app, &rows[i % rows.len()]);
        }
        let (c0, w0) = (cpu_s(), Instant::now());
        berth::domain::pulls::flush(app).await.expect("flush");
        cpu += cpu_s() - c0;
        wall += w0.elapsed().as_secs_f64();
    }
    let per = (ROUNDS * n) as f64 / 1e6;
    (cpu / per, wall / per)
}

#[tokio::main]
async fn main() {
    // cargo bench passes --bench; nothing else is accepted.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        eprintln!("usage: cargo bench -p berth --bench pull_accounting");
        std::process::exit(2);
    }
    const ARTIFACTS: usize = 1000;
    let mut t = TestApp::start(Db::Sqlite).await;
    let tok = t.admin_token("library/app").await;
    eprintln!("pull_accounting: pushing {ARTIFACTS} artifacts");
    let mut rows = Vec::with_capacity(ARTIFACTS);
    for i in 0..ARTIFACTS {
        let tag = format!("v{i}");
        t.push_image(&tok, "library/app", &tag, &[format!("layer {i}").as_bytes()]).await;
        rows.push(t.app.meta.manifest_by_tag("library/app", &tag).await.expect("read").expect("pushed"));
    }

    println!("| part | batch | artifacts | CPU µs per pull | wall µs per pull |");
    println!("|---|--:|--:|--:|--:|");
    let (threads, ns) = request_path(&t.app, &rows[0]).await;
    println!("| request path: `Pulls::record` from {threads} threads at once | | 1 | {:.3} | {:.3} |", ns / 1e3, ns / 1e3);
    for (n, spread) in [(1_000, 1), (10_000, 1), (1_000, ARTIFACTS), (10_000, ARTIFACTS)] {
        let (cpu_us, wall_us) = writer(&t.app, &rows[..spread], n).await;
        println!("| writer: one transaction per batch | {n} | {spread} | {cpu_us:.2} | {wall_us:.2} |");
    }
    t.stop().await;
}
