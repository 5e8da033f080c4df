//! The tenbin binary: CLI, daemon wiring, admin API, metrics and dashboard. No algorithms.
#![forbid(unsafe_code)]

mod agent;
mod demo;
mod mux;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "tenbin", about = "Layered load balancer: GSLB DNS, XDP Mux, L4/L7 proxy")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the embedded demo: backends, a proxy in front, traffic, a failure.
    Demo(demo::DemoArgs),
    /// The XDP VIP Mux.
    Mux(mux::MuxArgs),
    /// The host agent on a backend: decapsulation, VIPs on lo, local health reports.
    Agent(agent::AgentArgs),
    /// Print the version.
    Version,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Mux(args) => mux::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Version => {
            println!("tenbin {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
