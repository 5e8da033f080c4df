//! The DNS tier's families: queries by transport and path, query types, response codes,
//! policy outcomes, ECS, truncation, and per datacenter answers, load and VIP health.

use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, gauge, label, Labels};
use crate::node::NodeStats;

pub(super) fn encode(
    s: &NodeStats,
    enc: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let Some(d) = &s.dns else { return Ok(()) };
    counter(
        enc,
        "tenbin_dns_queries",
        "Queries answered, by transport and path (fast: precompiled answers; full: the parser).",
        d.paths.iter().map(|(t, p, n)| {
            (
                vec![("transport", t.to_string()), ("path", p.to_string())],
                *n,
            )
        }),
    )?;
    counter(
        enc,
        "tenbin_dns_query_types",
        "Queries by question type (other: any type not listed).",
        d.qtype.iter().map(|(t, n)| (label("qtype", t.clone()), *n)),
    )?;
    counter(
        enc,
        "tenbin_dns_responses",
        "Responses by response code (other: any code not listed).",
        d.rcode.iter().map(|(r, n)| (label("rcode", rcode(*r)), *n)),
    )?;
    counter(
        enc,
        "tenbin_dns_policy_outcomes",
        "GSLB answers by how the policy chose (healthy, draining only, fail open, ...).",
        d.outcome
            .iter()
            .map(|(o, n)| (label("outcome", o.to_string()), *n)),
    )?;
    counter(
        enc,
        "tenbin_dns_ecs_queries",
        "Queries with and without an EDNS Client Subnet option.",
        [
            (label("ecs", "present"), d.ecs_present),
            (label("ecs", "absent"), d.ecs_absent),
        ],
    )?;
    counter(
        enc,
        "tenbin_dns_truncated",
        "UDP answers sent truncated (TC set) because they did not fit.",
        [(Labels::new(), d.truncated)],
    )?;
    counter(
        enc,
        "tenbin_dns_dropped",
        "Datagrams dropped without an answer (too short, or responses).",
        [(Labels::new(), d.dropped)],
    )?;
    counter(
        enc,
        "tenbin_dns_answers",
        "GSLB answers per datacenter they sent clients to.",
        d.answers_per_dc
            .iter()
            .map(|(dc, n)| (label("dc", dc.clone()), *n)),
    )?;
    let dcs = s.state.dns.iter().flat_map(|d| d.datacenters.iter());
    gauge(
        enc,
        "tenbin_dns_datacenter_load",
        "The load last pushed for the datacenter (0 to 1).",
        dcs.clone()
            .map(|dc| (label("dc", dc.name.clone()), dc.load)),
    )?;
    gauge(
        enc,
        "tenbin_dns_datacenter_up",
        "1 while at least one of the datacenter's VIPs is up.",
        dcs.clone().map(|dc| {
            let up = dc.vips.iter().any(|v| v.state == "up");
            (label("dc", dc.name.clone()), u64::from(u8::from(up)))
        }),
    )?;
    gauge(
        enc,
        "tenbin_dns_vip_up",
        "1 while the VIP is up, 0 while draining or down.",
        dcs.flat_map(|dc| {
            dc.vips.iter().map(|v| {
                let l = vec![("dc", dc.name.clone()), ("vip", v.address.to_string())];
                (l, u64::from(u8::from(v.state == "up")))
            })
        }),
    )
}

fn rcode(code: u16) -> String {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "other",
    }
    .to_string()
}
