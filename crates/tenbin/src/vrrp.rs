//! `tenbin vrrp -c FILE`: runs the `[vrrp]` section's virtual routers on their own, until
//! SIGINT/SIGTERM (a graceful stop: masters send priority 0). The node runtime will run the
//! same driver beside the other tiers; this subcommand is the standalone form.
//!
//! It first starts its VIP guard, itself with `--guard`, tied to it by a pipe: when this
//! process dies, even by SIGKILL, the guard removes the VIPs.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use tenbin_config::vrrp::{Checksum, VrrpInstance, VrrpSection};
use tenbin_ha::vrrp::driver::track::Track;
use tenbin_ha::vrrp::driver::{guard_until_eof, Driver, Event, Input, InstanceConfig};
use tenbin_ha::vrrp::ChecksumMode;

pub fn run(path: &Path, guard: bool) -> anyhow::Result<()> {
    let config = crate::check::load(path)?;
    let section = config
        .vrrp
        .with_context(|| format!("{}: no [vrrp] section", path.display()))?;
    if guard {
        return Ok(guard_until_eof(std::io::stdin(), &instances(&section))?);
    }
    // Held until this process ends; the guard's stdin then reaches end of file.
    let _guard = Command::new(std::env::current_exe()?)
        .arg("vrrp")
        .arg("--guard")
        .arg("-c")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .context("vrrp: cannot start the VIP guard")?;
    let (driver, handle) = Driver::new(instances(&section)).context("vrrp: cannot start")?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                if let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                }
            });
        }
        handle.send(Input::Shutdown);
    });
    let counters = driver.run(
        |Event::State {
             instance,
             vrid,
             from,
             to,
             reason,
         }| {
            println!(
                "{instance} vrid {vrid}: {} -> {} ({reason})",
                from.name(),
                to.name()
            );
        },
    )?;
    for (name, c) in counters {
        tracing::info!(instance = %name, ?c, "vrrp counters at exit");
    }
    Ok(())
}

fn instances(section: &VrrpSection) -> Vec<InstanceConfig> {
    section
        .instance
        .iter()
        .map(|i| instance(i, section))
        .collect()
}

fn instance(i: &VrrpInstance, section: &VrrpSection) -> InstanceConfig {
    InstanceConfig {
        name: i.name.get_ref().clone(),
        interface: i.interface.get_ref().clone(),
        vrid: *i.vrid.get_ref(),
        priority: *i.priority.get_ref(),
        interval: i.interval_centis(),
        preempt: i.preempt,
        preempt_delay: i.preempt_delay,
        vips: i.vips.get_ref().iter().map(|v| v.0).collect(),
        checksum: match i.checksum {
            Checksum::Keepalived => ChecksumMode::PseudoHeader,
            Checksum::Rfc5798 => ChecksumMode::VrrpOnly,
            Checksum::KeepalivedOldUnicast => ChecksumMode::PseudoHeaderGroup,
        },
        unicast_peers: i.unicast_peers.get_ref().clone(),
        source: i.source,
        probe_targets: i.probe_v4(),
        probe_vips: i.probe_vips,
        track_interfaces: i.track_interfaces.clone(),
        track: i
            .track
            .iter()
            .map(|t| Track {
                name: t.name.clone(),
                weight: t.weight,
            })
            .collect(),
        notify: i.notify.clone().or_else(|| section.notify.clone()),
        vip_lifetime: i.vip_lifetime_secs(),
        garp_repeat: i.garp_repeat,
    }
}
