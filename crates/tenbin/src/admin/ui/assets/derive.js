// One frame of numbers per refresh, derived from the node's state and two scrapes of
// /metrics (now and about RATE_WINDOW ago): rates per second, latency quantiles, answer
// shares. Missing metrics give `null`, which the page shows as "–".

import { quantile, rate } from "./prom.js";

/** The metric names of the seam with the metrics exporter (one place to rename). */
export const M = {
  feConnTotal: "tenbin_frontend_connections_total",
  feConn: "tenbin_frontend_connections",
  feReq: "tenbin_frontend_requests_total",
  srvReq: "tenbin_server_requests_total",
  srvErr: "tenbin_server_errors_total",
  latency: "tenbin_request_duration_seconds",
  dnsQueries: "tenbin_dns_queries_total",
  dnsAnswers: "tenbin_dns_answers_total",
  muxVipPackets: "tenbin_mux_vip_packets_total",
  muxVipBytes: "tenbin_mux_vip_bytes_total",
  muxVipFlows: "tenbin_mux_vip_new_flows_total",
  muxBackendPackets: "tenbin_mux_backend_packets_total",
  muxBackendFlows: "tenbin_mux_backend_new_flows_total",
};

/** Rates compare with the scrape at least this long ago (smoother than one interval). */
export const RATE_WINDOW = 5000;

export const serverKey = (pool, server) => `${pool}\u0000${server}`;

/** `state` is the node's state now, `before` one from about RATE_WINDOW ago ({t, state}),
 * for the counters the state itself carries (the Mux's). */
export function frame(state, prev, cur, t, before = null) {
  const f = { t, frontends: new Map(), servers: new Map(), dcs: new Map(), mux: null, totals: {} };
  const r = (name, match) => rate(prev, cur, name, match);
  const q = (p, match) => quantile(p, prev, cur, M.latency, match);
  const gauge = (name, match) => (cur && cur.has(name) ? cur.sum(name, match) : null);
  for (const fe of state.frontends || []) {
    const m = { frontend: fe.name };
    f.frontends.set(fe.name, {
      conns: gauge(M.feConn, m),
      cps: r(M.feConnTotal, m),
      rps: r(M.feReq, m),
      e4: r(M.feReq, { ...m, class: "4xx" }),
      e5: r(M.feReq, { ...m, class: "5xx" }),
      p50: q(0.5, m),
      p90: q(0.9, m),
      p99: q(0.99, m),
    });
  }
  for (const pool of state.pools || []) {
    for (const sv of pool.servers || []) {
      const m = { pool: pool.name, server: sv.name };
      f.servers.set(serverKey(pool.name, sv.name), {
        rps: r(M.srvReq, m),
        total: gauge(M.srvReq, m),
        eps: r(M.srvErr, m),
        active: sv.active,
      });
    }
  }
  f.totals = {
    rps: r(M.feReq),
    cps: r(M.feConnTotal),
    conns: gauge(M.feConn),
    requests: gauge(M.feReq),
    e5: r(M.feReq, { class: "5xx" }),
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    dns: r(M.dnsQueries),
    active: (state.pools || []).reduce((a, p) => a + p.servers.reduce((b, sv) => b + sv.active, 0), 0),
  };
  const answers = r(M.dnsAnswers);
  for (const dc of state.dns?.datacenters || []) {
    const aps = r(M.dnsAnswers, { dc: dc.name });
    f.dcs.set(dc.name, { aps, share: aps !== null && answers > 0 ? aps / answers : null });
  }
  f.mux = muxFrame(state, before, t, prev, cur, r);
  return f;
}

/** The Mux's VIPs from its state (with rates from the earlier state) or, for a node that
 * exports only metrics, from /metrics; its backends from /metrics. */
function muxFrame(state, before, t, prev, cur, r) {
  const fromMetrics = cur && cur.has(M.muxVipPackets);
  if (!state.mux && !fromMetrics) return null;
  const backends = fromMetrics ? muxBackends(cur, r) : [];
  if (state.mux) {
    const dt = before ? (t - before.t) / 1000 : 0;
    const old = new Map((before?.state.mux?.vips || []).map((v) => [vipName(v), v]));
    const per = (v, k) => {
      const o = old.get(vipName(v));
      return o && dt > 0 && v[k] >= o[k] ? (v[k] - o[k]) / dt : null;
    };
    const vips = state.mux.vips.map((v) => ({
      vip: vipName(v),
      healthy: v.healthy,
      pps: per(v, "packets"),
      bps: per(v, "bytes"),
      fps: per(v, "new_flows"),
      flows: v.new_flows,
    }));
    return { vips, backends };
  }
  const vips = cur.values(M.muxVipPackets, "vip").map((vip) => ({
    vip,
    pps: r(M.muxVipPackets, { vip }),
    bps: r(M.muxVipBytes, { vip }),
    fps: r(M.muxVipFlows, { vip }),
    flows: cur.sum(M.muxVipFlows, { vip }),
  }));
  return { vips, backends };
}

/** `addr:port/proto`, as the Mux's metrics label a VIP. */
function vipName(v) {
  const addr = v.address.includes(":") ? `[${v.address}]` : v.address;
  return `${addr}:${v.port}/${v.protocol}`;
}

function muxBackends(cur, r) {
  return cur.values(M.muxBackendPackets, "backend").map((backend) => ({
    backend,
    pps: r(M.muxBackendPackets, { backend }),
    fps: r(M.muxBackendFlows, { backend }),
    flows: cur.sum(M.muxBackendFlows, { backend }),
  }));
}
