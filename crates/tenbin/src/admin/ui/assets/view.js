// DOM helpers: elements built from data (names are text nodes, never parsed as HTML), rows
// kept by key so an input the operator is typing in survives the next refresh, and number
// formats.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element: `h("td", {class: "num"}, "12")`. */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Sets an element's text only when it changed (no layout work for a still number). */
export function text(el, value) {
  const t = String(value);
  if (el.textContent !== t) el.textContent = t;
}

/** Makes `parent`'s children one per item, in order, reusing the element made earlier for
 * the same key: `create(item)` makes one, `update(el, item)` refreshes it. */
export function keyed(parent, items, keyOf, create, update) {
  const old = new Map();
  for (const el of [...parent.children]) if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
  let at = 0;
  for (const item of items) {
    const k = keyOf(item);
    let el = old.get(k);
    if (el) old.delete(k);
    else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (parent.children[at] !== el) parent.insertBefore(el, parent.children[at] || null);
    at += 1;
  }
  for (const el of old.values()) el.remove();
}

/** 1234 → "1.23k"; `null` → "–" (not known yet, or the node does not export it). */
export function num(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(digits)}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toPrecision(digits).replace(/\.?0+$/, "");
}

/** Seconds → "850µs", "12.3ms", "1.20s". */
export function secs(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  if (v < 1e-3) return `${Math.round(v * 1e6)}µs`;
  if (v < 1) return `${(v * 1e3).toPrecision(3)}ms`;
  return `${v.toPrecision(3)}s`;
}

/** Bytes per second → "1.2 MB/s". */
export function bytes(v) {
  if (v === null || v === undefined) return "–";
  for (const [unit, div] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) {
    if (Math.abs(v) >= div) return `${(v / div).toPrecision(3)} ${unit}/s`;
  }
  return `${Math.round(v)} B/s`;
}

/** A duration in seconds → "4s", "3m12s", "2h05m". */
export function ago(sec) {
  if (sec === null || sec === undefined) return "–";
  const t = Math.max(0, Math.floor(sec));
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
}
