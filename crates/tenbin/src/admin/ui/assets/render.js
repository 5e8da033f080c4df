// The page's sections, each refreshed in place from the latest state, the history of frames
// and each server's health segments. Rows are kept by key (see view.keyed), so the weight an
// operator is typing stays put while the numbers around it move.

import { lineChart, sparkline, timeline } from "./charts.js";
import { serverKey } from "./derive.js";
import { ago, bytes, h, keyed, num, secs, text } from "./view.js";

const $ = (id) => document.getElementById(id);
const COLOURS = 6;

/** The cards at the top: the node in six numbers. */
export function overview(state, f) {
  const t = f.totals;
  text($("card-rps"), num(t.rps));
  text($("card-requests"), num(t.requests));
  text($("card-cps"), num(t.cps));
  text($("card-conns"), num(t.conns ?? t.active));
  text($("card-e5"), num(t.e5));
  text($("card-p99"), secs(t.p99));
  text($("card-dns"), state.dns ? num(t.dns) : "off");
  text($("node"), `${state.config} · generation ${state.generation} · ${state.tiers.join(", ")}`);
}

export function charts(state, frames) {
  if (frames.length === 0) return;
  const win = span(frames);
  const fes = (state.frontends || []).map((fe) => fe.name);
  lineChart(
    $("chart-rps"),
    fes.map((name, i) => ({
      label: name,
      cls: `c${i % COLOURS}`,
      points: frames.map((f) => [f.t, f.frontends.get(name)?.rps ?? null]),
    })),
    { ...win, fmt: num },
  );
  const lat = [
    ["p50", "c0"],
    ["p90", "c2"],
    ["p99", "c3"],
  ];
  lineChart(
    $("chart-latency"),
    lat.map(([p, cls]) => ({ label: p, cls, points: frames.map((f) => [f.t, f.totals[p]]) })),
    { ...win, fmt: secs },
  );
  lineChart(
    $("chart-conns"),
    [
      { label: "client", cls: "c0", points: frames.map((f) => [f.t, f.totals.conns]) },
      { label: "to servers", cls: "c1", points: frames.map((f) => [f.t, f.totals.active]) },
    ],
    { ...win, fmt: num },
  );
}

/** How far back the charts and timelines reach (ms). */
export const WINDOW = 5 * 60 * 1000;
/** A page opened a moment ago draws its first minute across the whole width, not in a
 * sliver at the right of five empty minutes; the span grows to WINDOW as it stays open. */
const MIN_SPAN = 60 * 1000;

function span(frames) {
  const t1 = frames.length ? frames[frames.length - 1].t : Date.now();
  const first = frames.length ? frames[0].t : t1;
  return { t0: Math.max(t1 - WINDOW, Math.min(first, t1 - MIN_SPAN)), t1 };
}

export function frontends(state, f) {
  keyed(
    $("fe-rows"),
    state.frontends || [],
    (fe) => fe.name,
    (fe) => h("tr", { "data-frontend": fe.name }, ...cells(["name", "mode", "listen", "pools", "conns", "cps", "rps", "e4", "e5", "p50", "p99"])),
    (tr, fe) => {
      const m = f.frontends.get(fe.name) || {};
      const c = cellMap(tr);
      text(c.name, fe.name);
      text(c.mode, fe.mode);
      text(c.listen, fe.listen.join(" "));
      text(c.pools, fe.pools.join(", "));
      text(c.conns, num(m.conns));
      text(c.cps, num(m.cps));
      text(c.rps, num(m.rps));
      text(c.e4, num(m.e4));
      text(c.e5, num(m.e5));
      c.e5.classList.toggle("bad", m.e5 > 0);
      text(c.p50, secs(m.p50));
      text(c.p99, secs(m.p99));
    },
  );
}

/** One card per pool; `act(pool, server, what, value)` runs an operator action. */
export function pools(state, frames, health, act) {
  const win = span(frames);
  keyed(
    $("pool-list"),
    state.pools || [],
    (p) => p.name,
    (p) => poolCard(p.name),
    (card, p) => {
      text(card.querySelector(".pool-name"), p.name);
      text(card.querySelector(".pool-meta"), `${p.algorithm} · ${p.servers.length} servers · queued ${p.queued}`);
      card.querySelector(".panic").hidden = !p.panic;
      keyed(
        card.querySelector("tbody"),
        p.servers,
        (sv) => sv.name,
        (sv) => serverRow(p.name, sv.name, act),
        (tr, sv) => updateServer(tr, sv, frames, health.get(serverKey(p.name, sv.name)) || [], win),
      );
    },
  );
}

function poolCard(name) {
  const head = ["server", "state", "admin", "weight", "active", "req/s", "", "requests", "errors/s", "health", "since", "actions"];
  return h(
    "div",
    { class: "pool", "data-pool": name },
    h("h3", {}, h("span", { class: "pool-name" }), h("span", { class: "pool-meta" }), h("span", { class: "panic badge st-down", hidden: true }, "panic mode")),
    h(
      "div",
      { class: "scroll" },
      h("table", {}, h("thead", {}, h("tr", {}, head.map((x) => h("th", { class: HEAD_NUMERIC.has(x) ? "num" : null }, x)))), h("tbody")),
    ),
  );
}

const HEAD_NUMERIC = new Set(["weight", "active", "req/s", "requests", "errors/s", "since"]);

function serverRow(pool, server, act) {
  const weight = h("input", { type: "number", min: 0, max: 256, class: "weight", "aria-label": `weight of ${server}` });
  const button = (label, what, value) =>
    h("button", { type: "button", "data-action": value, onclick: () => act(pool, server, what, value) }, label);
  const actions = h(
    "td",
    { class: "actions", "data-cell": "actions" },
    button("Enable", "state", "active"),
    button("Drain", "state", "draining"),
    button("Maint", "state", "maintenance"),
    weight,
    h("button", { type: "button", "data-action": "weight", onclick: () => act(pool, server, "weight", Number(weight.value)) }, "Set"),
  );
  const names = ["server", "state", "admin", "weight", "active", "rps", "spark", "total", "eps", "health", "since"];
  return h("tr", { "data-pool": pool, "data-server": server }, ...cells(names), actions);
}

function updateServer(tr, sv, frames, segments, win) {
  const key = serverKey(tr.dataset.pool, sv.name);
  const m = frames.length ? frames[frames.length - 1].servers.get(key) || {} : {};
  const c = cellMap(tr);
  if (!c.server.firstChild) c.server.append(h("b"), h("small"));
  text(c.server.firstChild, sv.name);
  text(c.server.lastChild, ` ${sv.address}`);
  badge(c.state, sv.state);
  text(c.admin, sv.admin);
  text(c.weight, sv.effective_weight === sv.weight ? `${sv.weight}` : `${sv.weight} → ${sv.effective_weight}`);
  c.weight.title = `configured ${sv.weight}, effective ${sv.effective_weight}`;
  text(c.active, num(sv.active));
  text(c.rps, num(m.rps));
  text(c.total, num(m.total));
  text(c.eps, num(m.eps));
  c.eps.classList.toggle("bad", m.eps > 0);
  const rps = frames.slice(-90).map((f) => f.servers.get(key)?.rps ?? null);
  c.spark.replaceChildren(sparkline(rps));
  c.health.replaceChildren(timeline(segments, { ...win }));
  text(c.since, sv.since_change_secs === null ? "–" : ago(sv.since_change_secs));
  c.since.title = sv.check || "";
  const input = tr.querySelector("input.weight");
  if (document.activeElement !== input && input.dataset.shown !== String(sv.weight)) {
    input.value = sv.weight;
    input.dataset.shown = String(sv.weight);
  }
  for (const b of tr.querySelectorAll("button[data-action]")) {
    b.classList.toggle("on", b.dataset.action === sv.admin);
  }
}

export function dns(state, frames, f) {
  $("dns").hidden = !state.dns;
  if (!state.dns) return;
  text($("dns-listen"), state.dns.listen.join(" "));
  keyed(
    $("dc-rows"),
    state.dns.datacenters,
    (dc) => dc.name,
    (dc) => h("tr", { "data-dc": dc.name }, ...cells(["name", "health", "admin", "load", "vips", "aps", "share"])),
    (tr, dc) => {
      const m = f.dcs.get(dc.name) || {};
      const c = cellMap(tr);
      text(c.name, dc.name);
      badge(c.health, dcHealth(dc));
      text(c.admin, dc.admin || "–");
      text(c.load, num(dc.load));
      c.vips.replaceChildren(...dc.vips.map((v) => h("span", { class: `badge st-${v.state}`, title: v.state }, v.address)));
      text(c.aps, num(m.aps));
      const pct = m.share === null || m.share === undefined ? null : Math.round(m.share * 100);
      // The width is set through the CSSOM: the CSP refuses inline style attributes.
      const fill = h("i");
      fill.style.width = `${pct ?? 0}%`;
      c.share.replaceChildren(h("span", { class: "bar" }, fill), pct === null ? "–" : `${pct}%`);
    },
  );
  lineChart(
    $("chart-dns"),
    state.dns.datacenters.map((dc, i) => ({
      label: dc.name,
      cls: `c${i % COLOURS}`,
      points: frames.map((fr) => [fr.t, fr.dcs.get(dc.name)?.aps ?? null]),
    })),
    { ...span(frames), fmt: num, height: 90 },
  );
}

function dcHealth(dc) {
  if (dc.admin === "force-down") return "down";
  if (dc.admin === "force-up") return "up";
  if (dc.admin === "drain") return "draining";
  const up = dc.vips.filter((v) => v.state === "up").length;
  if (dc.vips.length === 0 || up === dc.vips.length) return "up";
  return up === 0 ? "down" : "partial";
}

/** The Mux: where it runs, its VIPs (health, packet and flow rates), its backends. */
export function mux(state, f) {
  const m = f.mux;
  $("mux").hidden = !m;
  if (!m) return;
  const ms = state.mux;
  text(
    $("mux-info"),
    ms
      ? `${ms.interface} · ${ms.attached ? "attached" : "not attached"} · ${ms.updates} updates, ${ms.apply_errors} failed · agent reports ${ms.reports_accepted} accepted, ${ms.reports_ignored} ignored, ${ms.reports_refused} refused`
      : "",
  );
  const rows = (id, items, keyOf, names, fill) =>
    keyed($(id), items, keyOf, () => h("tr", {}, ...cells(names)), (tr, x) => fill(cellMap(tr), x));
  rows("mux-vips", m.vips, (v) => v.vip, ["vip", "health", "pps", "bps", "fps", "flows"], (c, v) => {
    text(c.vip, v.vip);
    if (v.healthy === undefined) text(c.health, "–");
    else badge(c.health, v.healthy ? "up" : "down");
    text(c.pps, num(v.pps));
    text(c.bps, bytes(v.bps));
    text(c.fps, num(v.fps));
    text(c.flows, num(v.flows));
  });
  $("mux-backends-box").hidden = m.backends.length === 0;
  rows("mux-backends", m.backends, (b) => b.backend, ["backend", "pps", "fps", "flows"], (c, b) => {
    text(c.backend, b.backend);
    text(c.pps, num(b.pps));
    text(c.fps, num(b.fps));
    text(c.flows, num(b.flows));
  });
}

function cells(names) {
  return names.map((n) => h("td", { "data-cell": n, class: NUMERIC.has(n) ? "num" : null }));
}

const NUMERIC = new Set(["conns", "cps", "rps", "e4", "e5", "p50", "p99", "weight", "active", "total", "eps", "load", "aps", "pps", "bps", "fps", "flows", "since"]);

function cellMap(tr) {
  const out = {};
  for (const td of tr.children) if (td.dataset.cell) out[td.dataset.cell] = td;
  return out;
}

function badge(td, state) {
  if (!td.firstChild) td.append(h("span", { class: "badge" }));
  const b = td.firstChild;
  text(b, state);
  b.className = `badge st-${state}`;
}
