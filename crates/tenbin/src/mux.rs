//! `tenbin mux`: the XDP VIP Mux. `run` attaches the program to `[mux].interface`, programs
//! it from the config, applies edits of the file hot (whole-ring swaps), logs counters and
//! detaches on exit; with `[bgp]` it also announces its healthy VIPs ([`crate::bgp`]);
//! `explain` shows where a 5-tuple goes and why.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use clap::Subcommand;
use tenbin_config::mux::{parse_mac, BackendState, Forward, MuxSection};
use tenbin_core::flow::FlowKey;
use tenbin_core::ServerState;
use tenbin_xdp::abi::{Mode, STAT_NAMES};
use tenbin_xdp::control::{ApplyReport, BackendSpec, Controller, MaglevRings, MuxSpec, VipSpec};
use tenbin_xdp::loader::{is_root, Attached, Program};
use tenbin_xdp::report::{HealthBook, Report, ReportKey};
use tenbin_xdp::writer::MemWriter;

/// Arguments of `tenbin mux`.
#[derive(clap::Args, Debug)]
pub struct MuxArgs {
    #[command(subcommand)]
    command: MuxCommand,
}

#[derive(Subcommand, Debug)]
enum MuxCommand {
    /// Attach the Mux and serve the config's VIPs until interrupted.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Stop after this many seconds instead of waiting for Ctrl-C / SIGTERM.
        #[arg(long)]
        seconds: Option<u64>,
        /// Serve the counters as Prometheus text on http://ADDR/metrics.
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
    /// Run a flow's first packet through the real program (BPF_PROG_TEST_RUN) and say which
    /// backend it chose and why. Example: `explain -c tenbin.toml tcp 198.51.100.7:40000 10.0.0.1:80`
    Explain {
        #[arg(short, long)]
        config: PathBuf,
        /// tcp or udp
        protocol: String,
        /// client address:port
        source: SocketAddr,
        /// VIP address:port
        destination: SocketAddr,
    },
}

pub fn run(args: MuxArgs) -> anyhow::Result<()> {
    match args.command {
        MuxCommand::Run {
            config,
            seconds,
            metrics,
        } => serve(&config, seconds.map(Duration::from_secs), metrics),
        MuxCommand::Explain {
            config,
            protocol,
            source,
            destination,
        } => explain(&config, &protocol, source, destination),
    }
}

/// Reads `[mux]` from the config file and validates it.
fn section(path: &Path) -> anyhow::Result<MuxSection> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = tenbin_config::Config::parse(&text, &path.display().to_string())?;
    let mux = config.mux.context("the config has no [mux] section")?;
    mux.validate()?;
    Ok(mux)
}

/// The data plane's desired state from the config section.
pub fn spec(m: &MuxSection) -> anyhow::Result<MuxSpec> {
    let vips = m
        .vip
        .iter()
        .map(|v| {
            let backends = v
                .backend
                .iter()
                .map(|b| {
                    Ok(BackendSpec {
                        addr: b.address,
                        mac: parse_mac(&b.mac).with_context(|| format!("bad MAC {}", b.mac))?,
                        weight: b.weight,
                        state: match b.state {
                            BackendState::Active => ServerState::Active,
                            BackendState::Draining => ServerState::Draining,
                            BackendState::Down => ServerState::Down,
                            BackendState::Maintenance => ServerState::Maintenance,
                        },
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(VipSpec {
                addr: v.address,
                port: v.port,
                proto: v.protocol.number(),
                mode: match v.forward {
                    Forward::Ipip => Mode::Ipip,
                    Forward::Gre => Mode::Gre,
                    Forward::Dsr => Mode::Dsr,
                },
                backends,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(MuxSpec {
        seed: m.seed,
        mtu: m.mtu,
        udp_idle: m.udp_idle,
        flow_cap: m.flow_cap,
        src4: (m.source_v4.addr(), m.source_v4.prefix_len()),
        src6: (m.source_v6.addr(), m.source_v6.prefix_len()),
        egress: match &m.egress_interface {
            Some(name) => Some(interface(name)?),
            None => None,
        },
        vips,
    })
}

/// Index and MAC address of a local interface, from sysfs.
fn interface(name: &str) -> anyhow::Result<(u32, [u8; 6])> {
    let read = |what: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{what}"))
            .with_context(|| format!("interface {name}: no {what}"))
    };
    let index = read("ifindex")?.trim().parse().context("ifindex")?;
    let mac = parse_mac(read("address")?.trim()).context("MAC address")?;
    Ok((index, mac))
}

/// What a failed program load says besides the kernel's error: where the objects came from and
/// what the kernel side needs, since the build itself never needs more than cargo.
pub fn load_failed(what: &str) -> String {
    format!(
        "loading {what} (BPF objects {}; the kernel must allow BPF programs, maps and XDP: \
         CONFIG_BPF_SYSCALL, CAP_BPF and CAP_NET_ADMIN, enough locked memory)",
        tenbin_xdp::loader::OBJECTS_FROM
    )
}

fn serve(path: &Path, limit: Option<Duration>, metrics: Option<SocketAddr>) -> anyhow::Result<()> {
    let m = section(path)?;
    anyhow::ensure!(
        is_root(),
        "`tenbin mux run` needs root (BPF and XDP attach)"
    );
    let mut program = Program::mux(m.flow_table).with_context(|| load_failed("the Mux program"))?;
    let wanted = match m.attach {
        tenbin_config::mux::AttachMode::Driver => Attached::Driver,
        tenbin_config::mux::AttachMode::Generic => Attached::Generic,
    };
    let how = program
        .attach_as(&m.interface, wanted)
        .with_context(|| format!("attaching to {}", m.interface))?;
    if how == Attached::Generic {
        tracing::warn!(interface = %m.interface, "XDP runs in generic (skb) mode: much slower than driver mode");
    }
    let mut mux = Controller::new(program, MaglevRings);
    let mut base = spec(&m)?;
    let report = mux.apply(&base)?;
    tracing::info!(interface = %m.interface, vips = m.vip.len(), ?report, "mux attached");
    let mut bgp = crate::bgp::start(path)?;
    let mut reports = Reports::new(&m)?;
    let exported = match metrics {
        Some(addr) => Some(metrics_endpoint(addr)?),
        None => None,
    };

    let stop = stop_flag()?;
    let started = Instant::now();
    let mut seen = modified(path);
    let mut last_log = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed)
        && limit.is_none_or(|l| started.elapsed() < l)
    {
        std::thread::sleep(Duration::from_millis(200));
        let now = modified(path);
        if now != seen {
            seen = now;
            match section(path).and_then(|m| spec(&m)) {
                Ok(s) => base = s,
                Err(e) => tracing::error!("config change refused, keeping the running one: {e:#}"),
            }
        }
        // Agent reports overlay the configured states: failing or silent backends go down.
        let mut desired = base.clone();
        if let Some(r) = &mut reports {
            r.drain(started.elapsed());
            r.book.overlay(&mut desired, started.elapsed());
        }
        let applied = mux.apply(&desired);
        if let Some(b) = &mut bgp {
            b.follow(&desired, applied.is_ok());
        }
        match applied {
            Ok(r) if r != ApplyReport::default() => {
                tracing::info!(report = ?r, "data plane updated")
            }
            Ok(_) => {}
            Err(e) => tracing::error!("applying: {e}"),
        }
        if let Some(text) = &exported {
            match tenbin_xdp::metrics::collect(&mux) {
                Ok(mut t) => {
                    if let Some(b) = &bgp {
                        b.metrics(&mut t);
                    }
                    *text.lock().unwrap_or_else(|e| e.into_inner()) = t
                }
                Err(e) => tracing::warn!("collecting metrics: {e}"),
            }
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            log_counters(mux.writer());
        }
    }
    log_counters(mux.writer());
    if let Some(b) = bgp {
        b.stop();
    }
    tracing::info!("detaching");
    Ok(())
}

type Snapshot = std::sync::Arc<std::sync::Mutex<String>>;

/// A minimal HTTP endpoint answering every request with the latest counters snapshot.
fn metrics_endpoint(addr: SocketAddr) -> anyhow::Result<Snapshot> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let text: Snapshot = Default::default();
    let shared = text.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let body = shared.lock().map(|t| t.clone()).unwrap_or_default();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    tracing::info!(%addr, "serving counters at /metrics");
    Ok(text)
}

/// The agents' report inbox and what it has learned.
struct Reports {
    socket: std::net::UdpSocket,
    key: ReportKey,
    book: HealthBook,
}

impl Reports {
    fn new(m: &MuxSection) -> anyhow::Result<Option<Reports>> {
        let Some(listen) = m.report_listen else {
            return Ok(None);
        };
        let secret = m.report_key.as_deref().unwrap_or_default();
        let key = tenbin_xdp::report::key(secret.as_bytes()).context("report_key too short")?;
        let socket =
            std::net::UdpSocket::bind(listen).with_context(|| format!("binding {listen}"))?;
        socket.set_nonblocking(true)?;
        tracing::info!(%listen, "listening for agent reports");
        Ok(Some(Reports {
            socket,
            key,
            book: HealthBook::new(m.report_timeout),
        }))
    }

    /// Takes every datagram waiting (bounded per call); bad ones are logged and dropped.
    fn drain(&mut self, now: Duration) {
        let mut buf = [0u8; 2048];
        for _ in 0..1024 {
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                return;
            };
            match Report::decode(&buf[..n], &self.key) {
                Ok(r) => {
                    if !self.book.on_report(&r, now) {
                        tracing::debug!(%from, "stale or replayed report ignored");
                    }
                }
                Err(e) => tracing::warn!(%from, "agent report refused: {e}"),
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn log_counters(p: &Program) {
    match p.stats() {
        Ok(s) => {
            let nonzero: Vec<String> = STAT_NAMES
                .iter()
                .zip(&s)
                .filter(|(_, v)| **v > 0)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            tracing::info!(counters = %nonzero.join(" "), "mux counters");
        }
        Err(e) => tracing::warn!("reading counters: {e}"),
    }
}

/// Set by Ctrl-C or SIGTERM.
fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    });
    Ok(flag)
}

fn explain(path: &Path, protocol: &str, src: SocketAddr, dst: SocketAddr) -> anyhow::Result<()> {
    let m = section(path)?;
    let proto = match protocol {
        "tcp" => 6,
        "udp" => 17,
        other => anyhow::bail!("protocol must be tcp or udp, not {other}"),
    };
    let key = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => FlowKey::v4(s, src.port(), d, dst.port(), proto),
        (IpAddr::V6(s), IpAddr::V6(d)) => FlowKey::v6(s, src.port(), d, dst.port(), proto),
        _ => anyhow::bail!("source and destination must be of the same address family"),
    };
    let spec = spec(&m)?;
    let mut model = Controller::new(MemWriter::new(), MaglevRings);
    model.apply(&spec)?;
    let program = if is_root() {
        // A private copy of the program, never attached: explaining does not touch a live Mux.
        let program = Program::mux(1024).with_context(|| load_failed("the Mux program"))?;
        let mut c = Controller::new(program, MaglevRings);
        c.apply(&spec)?;
        Some(c)
    } else {
        None
    };
    let e =
        tenbin_xdp::explain::explain(model.writer(), program.as_ref().map(|c| c.writer()), &key)?;
    print!("{e}");
    anyhow::ensure!(
        e.agrees() != Some(false),
        "the program and the model disagree"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_section_becomes_a_spec() {
        let c = tenbin_config::Config::parse(
            r#"
[mux]
interface = "eth0"
seed = 9
source_v6 = "fd00::1:0/112"
[[mux.vip]]
address = "10.0.0.1"
protocol = "udp"
forward = "dsr"
[[mux.vip.backend]]
address = "10.1.0.1"
mac = "02:be:00:00:00:01"
state = "draining"
"#,
            "test.toml",
        )
        .unwrap();
        let s = spec(&c.mux.unwrap()).unwrap();
        assert_eq!(
            (s.seed, s.src6.1, s.vips[0].port, s.vips[0].proto),
            (9, 112, 0, 17)
        );
        assert_eq!(s.vips[0].mode, Mode::Dsr);
        assert_eq!(s.vips[0].backends[0].state, ServerState::Draining);
        assert_eq!(s.vips[0].backends[0].mac, [2, 0xbe, 0, 0, 0, 1]);
    }
}
