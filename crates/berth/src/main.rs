//! The `berth` command line.

use berth::config::{Cli, Command};
use clap::Parser;

/// glibc gives every thread that allocates its own arena (up to eight per core), and
/// freed memory stays in the arena that served it: with request buffers allocated on
/// the blocking pool and freed on the runtime's workers, resident memory creeps up
/// with load. Two arenas keep it bounded (the peak under 128 concurrent clients drops
/// from about 80 to 40 MiB). The setting is read at process start, so the process
/// restarts itself once with it, in place (same pid), unless the caller chose a value.
fn bound_malloc_arenas() {
    if cfg!(all(target_os = "linux", target_env = "gnu")) && std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("MALLOC_ARENA_MAX", "2").exec();
            eprintln!("berth: could not restart with bounded malloc arenas ({err}); continuing");
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        bound_malloc_arenas();
    }
    match cli.command {
        Command::Serve(args) => {
            let config = match berth::config::Config::load(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("berth: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            berth::telemetry::init(&config.log);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(64).build().expect("tokio runtime");
            match rt.block_on(berth::serve(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("berth stopped: {e:#}");
                    eprintln!("berth: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
