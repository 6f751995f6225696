//! The `ringlet` binary: parse the command line, set up logging, run the broker.

use std::process::ExitCode;

use clap::Parser;
use ringlet::cli::{Cli, Command};
use ringlet::config::broker::{BrokerConfig, FileConfig};
use ringlet::error::BrokerError;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // First: a panic anywhere, from here on, ends the process with its backtrace logged.
    ringlet::panic_policy::install();
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Command::Start(args) => start(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: &ringlet::cli::StartArgs) -> Result<(), BrokerError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let config = BrokerConfig::resolve(args, &file)?;
    ringlet::server::run::run(config)
}
