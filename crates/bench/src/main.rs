//! berth-bench: command line and top-level flow. Drives any registry that
//! speaks the OCI Distribution / Docker Registry V2 API through the selected
//! scenarios, prints a markdown table (optionally writes JSON), and exits
//! non-zero if any scenario failed. `compare` renders two JSON results side
//! by side.

mod auditlog;
mod auth;
mod client;
mod data;
mod image;
mod report;
mod scenarios;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};

use report::Report;
use scenarios::Ctx;
use server::Server;

#[derive(Parser)]
#[command(
    name = "berth-bench",
    version,
    about = "Benchmark any OCI Distribution (Docker Registry V2) registry",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Registry base URL, e.g. http://127.0.0.1:5000
    #[arg(long)]
    url: Option<String>,
    /// User for Basic auth and the token flow
    #[arg(long, env = "BERTH_BENCH_USER")]
    user: Option<String>,
    /// Password for --user
    #[arg(long, env = "BERTH_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Pid of the registry process, for CPU and RSS columns
    #[arg(long)]
    server_pid: Option<u32>,
    /// Comma-separated scenarios (default: all):
    /// blob-push, blob-pull, image-push-16, image-push-64, manifest-get-64,
    /// manifest-get-256, tag-list, catalog, mix-128; and only when named, for
    /// Berth or Harbor: api-artifacts, api-repositories
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Smaller sizes and counts (no 1 GiB blobs)
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Berth only: fill a SQLite database with audit records, start Berth on it and time
    /// filtered audit-log page queries (p50/p99), checking every X-Total-Count
    Auditlog {
        /// The berth binary
        #[arg(long)]
        berth: PathBuf,
        /// An empty directory for Berth's data (kept afterwards)
        #[arg(long)]
        dir: PathBuf,
        /// Reuse the database a previous run left in --dir (and its admin password) instead
        /// of filling a fresh one; Berth applies any newer migrations when it starts on it
        #[arg(long)]
        reuse: bool,
        /// How many audit records to write
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// Requests per query
        #[arg(long, default_value_t = 200)]
        requests: u64,
        /// Also write the results as JSON to this file
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Print a markdown table comparing two --json result files (ratios A/B)
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value = "A")]
        a_name: String,
        #[arg(long, default_value = "B")]
        b_name: String,
    },
}

fn load(p: &PathBuf) -> Result<Report, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

async fn run(args: RunArgs) -> Result<bool, String> {
    let url = args.url.ok_or("--url is required")?;
    let url = url.trim_end_matches('/').to_string();
    let creds = match (args.user, args.password) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err("--user and --password go together".into()),
    };
    let names: Vec<String> = if args.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    if let Some(bad) = names.iter().find(|n| !scenarios::known(n)) {
        return Err(format!("unknown scenario {bad}; known: {}", scenarios::all_names()));
    }
    let server = Server::new(args.server_pid)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ctx = Ctx {
        url: url.clone(),
        creds,
        server,
        quick: args.quick,
        nonce: data::seed(&[now.as_nanos() as u64, u64::from(std::process::id())]),
    };
    // Fail early if the registry is unreachable or rejects the credentials.
    ctx.client(1).await?;
    let mut report = Report { url, quick: args.quick, idle_rss_kb: ctx.server.rss_kb(), rows: Vec::new() };
    for name in &names {
        eprintln!("== {name}");
        report.rows.extend(scenarios::run(name, &ctx).await);
    }
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(!report.any_failed())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Compare { a, b, a_name, b_name }) => {
            load(&a).and_then(|ra| load(&b).map(|rb| println!("{}", report::compare(&ra, &rb, &a_name, &b_name)))).map(|_| true)
        }
        Some(Cmd::Auditlog { berth, dir, reuse, rows, requests, json }) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(auditlog::run(auditlog::Args { berth, dir, reuse, rows, requests, json }))),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(run(cli.run))),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("berth-bench: some scenarios FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("berth-bench: {e}");
            ExitCode::from(2)
        }
    }
}
