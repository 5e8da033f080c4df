//! `tenbin ctl`: operate a running node through its admin API (`crate::admin`).
//!
//! - `client`: one HTTP/1.1 request per command over a plain hyper handshake.
//! - `show`: the human tables; `--json` prints the API's JSON instead.
//!
//! Exit codes scripts can trust:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done (read, or applied; a no-op is done too) |
//! | 1 | the node refused (bad value, unknown name, wrong token, a file that does not validate); its message is on stderr |
//! | 2 | usage: bad arguments, or no admin address to talk to |
//! | 3 | the node cannot be reached, or did not answer like a tenbin admin API |

mod client;
mod show;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use client::{Failure, Request};

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The node's admin API address (default: `[admin].listen` of `-c FILE`).
    #[arg(long, env = "TENBIN_ADMIN")]
    admin: Option<String>,
    /// The node's config file, for its admin address and token.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The bearer token (or env TENBIN_TOKEN, or --token-file, or the config's).
    #[arg(long, env = "TENBIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file whose first line is the bearer token.
    #[arg(long, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    what: CtlCommand,
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Frontends, pools and servers (state, weights, sessions), DNS datacenters, VRRP, BGP
    /// neighbours and prefixes.
    Status,
    /// No new sessions to SERVER; sessions persisted to it still go there.
    Drain { pool: String, server: String },
    /// SERVER takes new sessions again (health permitting).
    Enable { pool: String, server: String },
    /// Maintenance: no traffic at all to SERVER.
    Maint { pool: String, server: String },
    /// Set SERVER's weight (0: no new sessions).
    Weight {
        pool: String,
        server: String,
        weight: u32,
    },
    /// Add a server to POOL.
    AddServer {
        pool: String,
        name: String,
        address: SocketAddr,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Priority group (0 first; higher groups are backups).
        #[arg(long, default_value_t = 0)]
        group: u8,
        #[arg(long)]
        maxconn: Option<u32>,
    },
    /// Remove SERVER from POOL.
    RemoveServer { pool: String, server: String },
    /// Push a datacenter's current load (in its GSLB pools' `capacity` unit).
    DnsLoad { datacenter: String, load: f64 },
    /// Read the node's config file again and apply what changed.
    Reload,
    /// Withdraw every Mux VIP over BGP (sessions stay up, the Mux keeps forwarding what
    /// still arrives), e.g. before maintenance.
    DrainMux,
    /// Announce the Mux's servable VIPs again.
    UndrainMux,
}

/// Runs one ctl command; the exit code is the module docs' table.
pub fn run(args: CtlArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

fn run_inner(args: CtlArgs) -> Result<(), Failure> {
    let (addr, token) = target(&args)?;
    let request = request(&args.what);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Unreachable(format!("cannot start the runtime: {e}")))?;
    let reply = runtime.block_on(client::send(&addr, token.as_deref(), &request))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else if matches!(args.what, CtlCommand::Status) {
        print!("{}", show::status(&reply)?);
    } else {
        print!("{}", show::applied(&reply));
    }
    Ok(())
}

/// `[admin]` of the node's file, read on its own so that `ctl -c FILE reload` still reaches
/// the node (which reports the error) when another part of the file is broken.
#[derive(serde::Deserialize)]
struct FileAdmin {
    admin: Option<AdminPart>,
}

#[derive(serde::Deserialize)]
struct AdminPart {
    listen: SocketAddr,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

/// The admin address and token: flags and env first, then the config file's `[admin]`.
fn target(args: &CtlArgs) -> Result<(String, Option<String>), Failure> {
    let section = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
            let file: FileAdmin = toml::from_str(&text).map_err(|e| {
                Failure::Usage(format!("{}: [admin]: {}", path.display(), e.message()))
            })?;
            file.admin
        }
        None => None,
    };
    let addr = match (&args.admin, &section) {
        (Some(a), _) => a.clone(),
        (None, Some(s)) => {
            // A node bound to every address is reached on loopback.
            let mut a = s.listen;
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a.to_string()
        }
        (None, None) => {
            let why = if args.config.is_some() {
                "the config file has no [admin] section"
            } else {
                "no admin address"
            };
            return Err(Failure::Usage(format!(
                "{why}: pass --admin ADDR (or env TENBIN_ADMIN) or -c FILE"
            )));
        }
    };
    let file_token = section.and_then(|s| match (s.token, s.token_file) {
        (Some(t), _) => Some(TokenSource::Inline(t)),
        (None, Some(f)) => Some(TokenSource::File(f)),
        (None, None) => None,
    });
    let source = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(TokenSource::Inline(t.clone())),
        (None, Some(f)) => Some(TokenSource::File(f.clone())),
        (None, None) => file_token,
    };
    let token = match source {
        None => None,
        Some(TokenSource::Inline(t)) => Some(t.trim().to_string()),
        Some(TokenSource::File(f)) => {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", f.display())))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
    };
    Ok((addr, token))
}

enum TokenSource {
    Inline(String),
    File(PathBuf),
}

fn request(what: &CtlCommand) -> Request {
    let server_path = |pool: &str, server: &str, what: &str| {
        format!(
            "/api/v1/pools/{}/servers/{}/{what}",
            client::segment(pool),
            client::segment(server)
        )
    };
    let state = |pool: &str, server: &str, state: &str| {
        Request::put(
            server_path(pool, server, "state"),
            json!({ "state": state }),
        )
    };
    match what {
        CtlCommand::Status => Request::get("/api/v1/state"),
        CtlCommand::Drain { pool, server } => state(pool, server, "draining"),
        CtlCommand::Enable { pool, server } => state(pool, server, "active"),
        CtlCommand::Maint { pool, server } => state(pool, server, "maintenance"),
        CtlCommand::Weight {
            pool,
            server,
            weight,
        } => Request::put(
            server_path(pool, server, "weight"),
            json!({ "weight": weight }),
        ),
        CtlCommand::AddServer {
            pool,
            name,
            address,
            weight,
            group,
            maxconn,
        } => Request::post(
            format!("/api/v1/pools/{}/servers", client::segment(pool)),
            json!({ "name": name, "address": address, "weight": weight,
                    "group": group, "maxconn": maxconn }),
        ),
        CtlCommand::RemoveServer { pool, server } => Request::delete(format!(
            "/api/v1/pools/{}/servers/{}",
            client::segment(pool),
            client::segment(server)
        )),
        CtlCommand::DnsLoad { datacenter, load } => Request::put(
            format!(
                "/api/v1/dns/datacenters/{}/load",
                client::segment(datacenter)
            ),
            json!({ "load": load }),
        ),
        CtlCommand::Reload => Request::post("/api/v1/reload", Value::Null),
        CtlCommand::DrainMux => Request::post("/api/v1/mux/drain", Value::Null),
        CtlCommand::UndrainMux => Request::post("/api/v1/mux/undrain", Value::Null),
    }
}
