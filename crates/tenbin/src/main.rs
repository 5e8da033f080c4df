//! The tenbin binary: CLI, daemon wiring, admin API, metrics and dashboard. No algorithms.
#![forbid(unsafe_code)]

mod admin;
mod agent;
mod check;
mod demo;
mod logging;
mod mux;
mod role;
mod run;
mod wiring;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tenbin",
    about = "Layered load balancer: GSLB DNS, XDP Mux, L4/L7 proxy"
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config file and print a summary of what it describes.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run every tier the config file describes until interrupted.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Runtime worker threads (default: env TENBIN_THREADS, else one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run the embedded demo: backends, a proxy in front, traffic, a failure.
    Demo(demo::DemoArgs),
    /// The XDP VIP Mux.
    Mux(mux::MuxArgs),
    /// The host agent on a backend: decapsulation, VIPs on lo, local health reports.
    Agent(agent::AgentArgs),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_json);
    match dispatch(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line a cause, no backtrace: the config errors already say where and why.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => check::run(&config),
        Command::Run { config, threads } => run::run(&config, threads),
        Command::Demo(args) => demo::run(args),
        Command::Mux(args) => mux::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Version => {
            println!("tenbin {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
