//! The tenbin binary: CLI (with `ctl` for running nodes), the node runtime, admin API. No
//! algorithms.
#![forbid(unsafe_code)]

mod admin;
mod agent;
mod check;
mod ctl;
mod demo;
mod logging;
mod mux;
mod node;
mod role;
mod run;
mod vrrp;
mod wiring;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc's per-thread heaps suit the thread-per-core proxy workers better than glibc's
/// arenas (malloc and free were about 8% of a worker's time under keep-alive load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Run(run::RunArgs),
    /// Run the embedded demo: backends, a proxy in front, traffic, a failure.
    Demo(demo::DemoArgs),
    /// The XDP VIP Mux.
    Mux(mux::MuxArgs),
    /// The host agent on a backend: decapsulation, VIPs on lo, local health reports.
    Agent(agent::AgentArgs),
    /// Run the config's `[vrrp]` virtual routers on their own.
    Vrrp {
        #[arg(short, long)]
        config: PathBuf,
        /// Internal: be the VIP guard of a `tenbin vrrp` (stdin is its pipe).
        #[arg(long, hide = true)]
        guard: bool,
    },
    /// Operate a running node through its admin API (status, drain, weight, reload...).
    Ctl(ctl::CtlArgs),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_json);
    // ctl has its own exit codes (see `ctl`).
    let command = match cli.command {
        Command::Ctl(args) => return ctl::run(args),
        other => other,
    };
    match dispatch(command) {
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
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Mux(args) => mux::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Vrrp { config, guard } => vrrp::run(&config, guard),
        // main runs ctl itself, for its exit codes.
        Command::Ctl(_) => Ok(()),
        Command::Version => {
            println!("tenbin {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
