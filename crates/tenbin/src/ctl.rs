//! `tenbin ctl`: operate a running node through its admin API.
//!
//! Every subcommand is one request: `status` reads `GET /state`, the others send a
//! `tenbin_config::api::Command` to `POST /commands` (the node's one apply path). Output is a
//! human table or line by default and the API's JSON with `--json`.
//!
//! Exit codes scripts can trust: 0 applied (or read), 1 the node refused the change (bad
//! value, a file that does not validate, a listener it could not bind), 3 no such pool,
//! server or datacenter, 4 the admin API could not be reached or answered nonsense; clap's
//! 2 for usage errors.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tenbin_config::api::{Applied, ApplyError, Command, DcAdminState, NewServer, NodeState};
use tenbin_config::pool::AdminState;

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The node's admin API (`[admin].listen`).
    #[arg(long, env = "TENBIN_ADMIN", default_value = "127.0.0.1:9900")]
    admin: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "TENBIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the bearer token (first line).
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
    /// Frontends, pools and servers (state, weights, sessions), DNS datacenters.
    Status,
    /// No new sessions to SERVER; sessions persisted to it still go there.
    Drain { pool: String, server: String },
    /// SERVER takes new sessions again (health permitting).
    Enable { pool: String, server: String },
    /// Take SERVER out for maintenance: no traffic at all, health ignored.
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
        server: String,
        address: SocketAddr,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[arg(long, default_value_t = 0)]
        group: u8,
        #[arg(long)]
        maxconn: Option<u32>,
    },
    /// Remove a server from POOL (its sessions finish).
    RemoveServer { pool: String, server: String },
    /// Push DATACENTER's current load to the DNS tier.
    DnsLoad { datacenter: String, load: f64 },
    /// Override DATACENTER's health: force-up, force-down, drain, or clear.
    DnsAdmin { datacenter: String, state: String },
    /// Read the config file again and apply what changed.
    Reload,
}

/// Runs one ctl command; the exit code follows the module docs.
pub fn run(args: CtlArgs) -> ExitCode {
    match execute(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
}

fn unreachable(message: String) -> Failure {
    Failure { code: 4, message }
}

fn execute(args: &CtlArgs) -> Result<String, Failure> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("{}: {e}", f.display()),
                })?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let api = Api {
        addr: args.admin.clone(),
        token,
    };
    let cmd = match &args.what {
        CtlCommand::Status => {
            let (status, body) = api.request("GET", "/state", "")?;
            if status != 200 {
                return Err(unreachable(format!("GET /state answered {status}: {body}")));
            }
            if args.json {
                return Ok(body);
            }
            let state: NodeState = serde_json::from_str(&body)
                .map_err(|e| unreachable(format!("GET /state: not a node state: {e}")))?;
            return Ok(table(&state));
        }
        CtlCommand::Drain { pool, server } => state(pool, server, AdminState::Draining),
        CtlCommand::Enable { pool, server } => state(pool, server, AdminState::Active),
        CtlCommand::Maint { pool, server } => state(pool, server, AdminState::Maintenance),
        CtlCommand::Weight {
            pool,
            server,
            weight,
        } => Command::SetWeight {
            pool: pool.clone(),
            server: server.clone(),
            weight: *weight,
        },
        CtlCommand::AddServer {
            pool,
            server,
            address,
            weight,
            group,
            maxconn,
        } => Command::AddServer {
            pool: pool.clone(),
            server: NewServer {
                name: server.clone(),
                address: *address,
                weight: *weight,
                group: *group,
                maxconn: *maxconn,
            },
        },
        CtlCommand::RemoveServer { pool, server } => Command::RemoveServer {
            pool: pool.clone(),
            server: server.clone(),
        },
        CtlCommand::DnsLoad { datacenter, load } => Command::SetDatacenterLoad {
            datacenter: datacenter.clone(),
            load: *load,
        },
        CtlCommand::DnsAdmin { datacenter, state } => Command::SetDatacenterAdmin {
            datacenter: datacenter.clone(),
            state: match state.as_str() {
                "force-up" => Some(DcAdminState::ForceUp),
                "force-down" => Some(DcAdminState::ForceDown),
                "drain" => Some(DcAdminState::Drain),
                "clear" | "none" => None,
                other => {
                    return Err(Failure {
                        code: 2,
                        message: format!(
                            "unknown datacenter state `{other}`; one of force-up, force-down, drain, clear"
                        ),
                    })
                }
            },
        },
        CtlCommand::Reload => Command::Reload,
    };
    let body = serde_json::to_string(&cmd).map_err(|e| unreachable(e.to_string()))?;
    let (status, answer) = api.request("POST", "/commands", &body)?;
    if status == 200 {
        if args.json {
            return Ok(answer);
        }
        let applied: Applied = serde_json::from_str(&answer)
            .map_err(|e| unreachable(format!("not an answer to a command: {e}")))?;
        let mut out = String::new();
        if applied.changes.is_empty() {
            let _ = writeln!(out, "no change (generation {})", applied.generation);
        }
        for c in &applied.changes {
            let _ = writeln!(out, "{c}");
        }
        return Ok(out);
    }
    let message = serde_json::from_str::<ApplyError>(&answer)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| format!("admin API answered {status}: {}", answer.trim()));
    let code = match status {
        404 => 3,
        400 | 409 => 1,
        _ => 4,
    };
    Err(Failure { code, message })
}

fn state(pool: &str, server: &str, state: AdminState) -> Command {
    Command::SetServerState {
        pool: pool.to_string(),
        server: server.to_string(),
        state,
    }
}

/// The admin API over plain HTTP/1.1, one connection per request.
struct Api {
    addr: String,
    token: Option<String>,
}

impl Api {
    fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), Failure> {
        let addr = self
            .addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| unreachable(format!("`{}` is not an address", self.addr)))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| unreachable(format!("cannot reach the admin API at {addr}: {e}")))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let auth = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{auth}\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .map_err(|e| unreachable(format!("admin API: {e}")))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| unreachable(format!("admin API: {e}")))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| unreachable("admin API: no HTTP answer".into()))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| unreachable(format!("admin API: bad status line {head:?}")))?;
        Ok((status, body.to_string()))
    }
}

/// The human view of a node's state.
fn table(s: &NodeState) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} (generation {}), tiers: {}",
        s.config,
        s.generation,
        s.tiers.join(", ")
    );
    for f in &s.frontends {
        let listen: Vec<String> = f.listen.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "frontend {:<16} {:<5} {} -> {}",
            f.name,
            f.mode,
            listen.join(","),
            f.pools.join(",")
        );
    }
    for p in &s.pools {
        let _ = writeln!(
            out,
            "\npool {} ({}, {} queued{})",
            p.name,
            p.algorithm,
            p.queued,
            if p.panic { ", PANIC" } else { "" }
        );
        let _ = writeln!(
            out,
            "  {:<16} {:<22} {:<12} {:<12} {:>6} {:>9} {:>6}  check",
            "server", "address", "state", "admin", "weight", "effective", "active"
        );
        for v in &p.servers {
            let admin = match v.admin {
                AdminState::Active => "active",
                AdminState::Draining => "draining",
                AdminState::Maintenance => "maintenance",
            };
            let _ = writeln!(
                out,
                "  {:<16} {:<22} {:<12} {:<12} {:>6} {:>9} {:>6}  {}",
                v.name,
                v.address,
                v.state,
                admin,
                v.weight,
                v.effective_weight,
                v.active,
                v.check.as_deref().unwrap_or("-")
            );
        }
    }
    if let Some(dns) = &s.dns {
        let listen: Vec<String> = dns.listen.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "\ndns on {}", listen.join(","));
        for dc in &dns.datacenters {
            let vips: Vec<String> = dc
                .vips
                .iter()
                .map(|v| format!("{} {}", v.address, v.state))
                .collect();
            let admin = match dc.admin {
                Some(DcAdminState::ForceUp) => "force-up",
                Some(DcAdminState::ForceDown) => "force-down",
                Some(DcAdminState::Drain) => "drain",
                None => "-",
            };
            let _ = writeln!(
                out,
                "  datacenter {:<12} admin {:<10} load {:<8} {}",
                dc.name,
                admin,
                dc.load,
                vips.join(", ")
            );
        }
    }
    out
}
