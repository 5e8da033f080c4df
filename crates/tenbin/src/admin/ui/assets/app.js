// The dashboard's loop: every second it reads /api/v1/state and /metrics (in parallel, the
// next poll only after both answered), derives a frame, keeps five minutes of frames and
// each server's health segments, and redraws. The token form and the server actions live
// here too.

import * as api from "./api.js";
import { frame, RATE_WINDOW, serverKey } from "./derive.js";
import { parse } from "./prom.js";
import * as render from "./render.js";

const POLL_MS = 1000;
/** A tab in the background polls less: the node need not serialise its state every second
 * for a page nobody looks at. */
const HIDDEN_POLL_MS = 10000;
const $ = (id) => document.getElementById(id);

const frames = [];
const scrapes = [];
/** Recent states ({t, state}), for the counters the state carries. */
const states = [];
/** serverKey → [{state, from, to}], oldest first. */
const health = new Map();
let metricsMissing = false;
let last = null;
let timer = null;
let polling = false;

async function poll() {
  clearTimeout(timer);
  polling = true;
  try {
    const [state, text] = await Promise.all([api.state(), api.metrics()]);
    const t = Date.now();
    metricsMissing = text === null;
    if (text !== null) {
      scrapes.push(parse(text, t));
      while (scrapes.length > 2 && scrapes[1].t <= t - RATE_WINDOW) scrapes.shift();
    }
    const cur = scrapes[scrapes.length - 1] || null;
    const prev = scrapes.length > 1 ? scrapes[0] : null;
    states.push({ t, state });
    while (states.length > 2 && states[1].t <= t - RATE_WINDOW) states.shift();
    const f = frame(state, prev, cur, t, states.length > 1 ? states[0] : null);
    frames.push(f);
    while (frames.length && frames[0].t < t - render.WINDOW) frames.shift();
    track(state, t);
    last = state;
    draw();
    status("ok", metricsMissing ? "live · this node serves no /metrics" : "live");
  } catch (e) {
    if (e.status === 401) {
      status("auth", $("token").value || api.token() ? "wrong token" : "token needed");
      $("token-form").classList.add("ask");
    } else status("down", e.message);
  } finally {
    polling = false;
    timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }
}

function draw() {
  if (!last || frames.length === 0) return;
  const f = frames[frames.length - 1];
  render.overview(last, f);
  render.charts(last, frames);
  render.frontends(last, f);
  render.pools(last, frames, health, act);
  render.dns(last, frames, f);
  render.mux(last, f);
}

/** Extends each server's current segment, or starts a new one when its state changed; a
 * server seen for the first time starts when its state did (`since_change_secs`). */
function track(state, t) {
  const seen = new Set();
  for (const pool of state.pools || []) {
    for (const sv of pool.servers) {
      const key = serverKey(pool.name, sv.name);
      seen.add(key);
      let segs = health.get(key);
      if (!segs) {
        const from = sv.since_change_secs === null ? t : t - sv.since_change_secs * 1000;
        health.set(key, (segs = [{ state: sv.state, from, to: t }]));
      }
      const cur = segs[segs.length - 1];
      if (cur.state === sv.state) cur.to = t;
      else segs.push({ state: sv.state, from: t, to: t });
      while (segs.length > 1 && segs[1].to < t - render.WINDOW) segs.shift();
    }
  }
  for (const key of health.keys()) if (!seen.has(key)) health.delete(key);
}

/** A server action from a row's buttons; the answer (or the refusal) shows as a toast. */
async function act(pool, server, what, value) {
  try {
    const applied =
      what === "weight" ? await api.setWeight(pool, server, value) : await api.setState(pool, server, value);
    const changes = applied.changes.length ? applied.changes.join("; ") : "nothing to change";
    toast(`${pool}/${server}: ${changes}`, "ok");
    if (!polling) poll();
  } catch (e) {
    toast(e.message, "bad");
  }
}

let toastTimer = null;
function toast(message, kind) {
  const el = $("toast");
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = ""), 6000);
}

function status(kind, message) {
  const el = $("status");
  el.className = `status ${kind}`;
  el.textContent = message;
  if (kind === "ok") $("token-form").classList.remove("ask");
}

function setup() {
  $("token").value = api.token();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    api.setToken($("token").value.trim());
    status("auth", "checking token…");
    if (!polling) poll();
  });
  $("token-forget").addEventListener("click", () => {
    api.setToken("");
    $("token").value = "";
  });
  // The charts take their width from the page: redraw when it changes.
  window.addEventListener("resize", draw);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !polling) poll();
  });
  // A bug in the page shows where the operator looks, not only in the console.
  window.addEventListener("error", (e) => status("down", `page error: ${e.message}`));
  window.addEventListener("unhandledrejection", (e) => status("down", `page error: ${e.reason}`));
  poll();
}

setup();
