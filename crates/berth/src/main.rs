//! The `berth` command line.

use berth::config::{Cli, Command};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
