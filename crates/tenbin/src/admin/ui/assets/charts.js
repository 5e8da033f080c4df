// Small inline SVG charts, redrawn from the page's history on every refresh: a line chart
// over the window with a y scale and legend, a sparkline for a table cell, and a health
// timeline whose coloured segments are the states a server went through.

import { h, s } from "./view.js";

/** `series`: [{label, cls, points: [[t, v|null]]}], drawn over [t0, t1] (ms). */
export function lineChart(box, series, { t0, t1, fmt, height = 110 }) {
  const width = Math.max(200, box.clientWidth || 360);
  const pad = { l: 46, r: 6, t: 6, b: 16 };
  const max = niceMax(Math.max(0, ...series.flatMap((x) => x.points.map((p) => p[1] ?? 0))));
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - (v / max) * (height - pad.t - pad.b);
  const grid = [0, max / 2, max].map((v) =>
    s(
      "g",
      { class: "grid" },
      s("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }),
      s("text", { x: pad.l - 4, y: y(v) + 3, "text-anchor": "end" }, fmt(v)),
    ),
  );
  const span = Math.round((t1 - t0) / 1000);
  const axis = [
    s("text", { class: "axis", x: pad.l, y: height - 3 }, `-${span >= 120 ? `${Math.round(span / 60)}m` : `${span}s`}`),
    s("text", { class: "axis", x: width - pad.r, y: height - 3, "text-anchor": "end" }, "now"),
  ];
  const lines = series.map((sr) => s("path", { class: `line ${sr.cls}`, d: path(sr.points, x, y) }));
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" }, grid, axis, lines);
  const legend = h(
    "div",
    { class: "legend" },
    series.map((sr) => {
      const last = [...sr.points].reverse().find((p) => p[1] !== null);
      return h("span", {}, h("i", { class: `sw ${sr.cls}` }), `${sr.label} `, h("b", {}, last ? fmt(last[1]) : "–"));
    }),
  );
  box.replaceChildren(svg, legend);
}

/** A small line of `values` (nulls leave gaps), scaled to its own maximum. */
export function sparkline(values, { width = 96, height = 22, cls = "c0" } = {}) {
  const max = niceMax(Math.max(0, ...values.map((v) => v ?? 0)));
  const n = Math.max(1, values.length - 1);
  const pts = values.map((v, i) => [i, v]);
  const x = (i) => 1 + (i / n) * (width - 2);
  const y = (v) => height - 2 - (v / max) * (height - 4);
  return s(
    "svg",
    { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" },
    s("path", { class: `line ${cls}`, d: path(pts, x, y) }),
  );
}

/** `segments`: [{state, from, to}] (ms); each becomes a coloured bar, each change a tick. */
export function timeline(segments, { t0, t1, width = 220, height = 16 }) {
  const x = (t) => ((Math.min(Math.max(t, t0), t1) - t0) / Math.max(1, t1 - t0)) * width;
  // The track: before the first known state (the page opened later) stays this colour.
  const parts = [s("rect", { class: "track", x: 0, y: 2, width, height: height - 4 })];
  for (const seg of segments) {
    if (seg.to < t0 || seg.from > t1) continue;
    const x0 = x(seg.from);
    const w = Math.max(1, x(seg.to) - x0);
    const since = new Date(seg.from).toLocaleTimeString();
    parts.push(
      s("rect", { class: `st-${seg.state}`, x: x0, y: 2, width: w, height: height - 4 }, s("title", {}, `${seg.state} since ${since}`)),
    );
    if (seg.from > t0) parts.push(s("line", { class: "tick", x1: x0, x2: x0, y1: 0, y2: height }));
  }
  return s("svg", { class: "timeline", width, height, viewBox: `0 0 ${width} ${height}` }, parts);
}

function path(points, x, y) {
  let d = "";
  let pen = false;
  for (const [t, v] of points) {
    if (v === null || v === undefined || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d || "M0,0";
}

/** The smallest 1/2/5 x 10^n at or above `v` (so the scale reads in round numbers). */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
