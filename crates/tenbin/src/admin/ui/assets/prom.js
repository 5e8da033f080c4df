// The Prometheus text exposition format (and OpenMetrics text, its superset here) read into
// samples, and what the dashboard derives from two scrapes: counter rates and histogram
// quantiles, computed the way PromQL's rate() and histogram_quantile() do.

/** One scrape: every sample, grouped by metric name, taken at `t` (ms). */
export class Scrape {
  constructor(t, samples) {
    this.t = t;
    this.byName = new Map();
    for (const s of samples) {
      let list = this.byName.get(s.name);
      if (!list) this.byName.set(s.name, (list = []));
      list.push(s);
    }
  }

  /** The samples of `name` whose labels include every pair of `match`. */
  select(name, match = {}) {
    const list = this.byName.get(name) || [];
    return list.filter((s) => matches(s.labels, match));
  }

  has(name) {
    return this.byName.has(name);
  }

  sum(name, match = {}) {
    return this.select(name, match).reduce((a, s) => a + s.value, 0);
  }

  /** The distinct values of label `label` on `name`. */
  values(name, label) {
    const out = new Set();
    for (const s of this.select(name)) if (label in s.labels) out.add(s.labels[label]);
    return [...out];
  }
}

function matches(labels, match) {
  for (const k in match) if (labels[k] !== match[k]) return false;
  return true;
}

/** Parses exposition text; lines it cannot read are counted in `bad`, not thrown. */
export function parse(text, t = Date.now()) {
  const samples = [];
  let bad = 0;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const s = parseSample(line);
    if (s) samples.push(s);
    else bad += 1;
  }
  const scrape = new Scrape(t, samples);
  scrape.bad = bad;
  return scrape;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseSample(line) {
  const m = NAME.exec(line);
  if (!m) return null;
  const name = m[0];
  let i = name.length;
  const labels = {};
  if (line[i] === "{") {
    i += 1;
    for (;;) {
      while (line[i] === " ") i += 1;
      if (line[i] === "}") break;
      const k = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!k) return null;
      i += k[0].length;
      if (line[i] !== "=" || line[i + 1] !== '"') return null;
      i += 2;
      let v = "";
      for (;;) {
        const c = line[i];
        if (c === undefined) return null;
        i += 1;
        if (c === '"') break;
        if (c === "\\") {
          const e = line[i];
          i += 1;
          v += e === "n" ? "\n" : e;
        } else v += c;
      }
      labels[k[0]] = v;
      while (line[i] === " ") i += 1;
      if (line[i] === ",") i += 1;
    }
    i += 1;
  }
  // Value, then an optional timestamp, then (OpenMetrics) an optional exemplar after " # ".
  const rest = line.slice(i).split(" # ")[0].trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(text) {
  if (text === undefined || text === "") return null;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const v = Number(text);
  return Number.isNaN(v) ? null : v;
}

/** Per-second increase of the counters `name` (matching `match`) from `prev` to `cur`,
 * summed over series; a series that went down was reset and counts from zero. `null` when
 * there is nothing to compare. */
export function rate(prev, cur, name, match = {}) {
  if (!prev || !cur || !cur.has(name)) return null;
  const dt = (cur.t - prev.t) / 1000;
  if (dt <= 0) return null;
  return increase(prev, cur, name, match) / dt;
}

function increase(prev, cur, name, match) {
  const before = new Map(prev.select(name, match).map((s) => [key(s.labels), s.value]));
  let total = 0;
  for (const s of cur.select(name, match)) {
    const old = before.get(key(s.labels));
    if (old === undefined) continue;
    total += s.value >= old ? s.value - old : s.value;
  }
  return total;
}

function key(labels) {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

/** The `q` quantile (0..1) of histogram `name` over the requests between the two scrapes,
 * with linear interpolation inside a bucket as histogram_quantile() does; `null` when no
 * request was observed. */
export function quantile(q, prev, cur, name, match = {}) {
  if (!prev || !cur) return null;
  const bucket = `${name}_bucket`;
  const les = new Map();
  const before = new Map(prev.select(bucket, match).map((s) => [key(s.labels), s.value]));
  for (const s of cur.select(bucket, match)) {
    const old = before.get(key(s.labels));
    if (old === undefined) continue;
    const le = parseValue(s.labels.le);
    if (le === null) continue;
    les.set(le, (les.get(le) || 0) + (s.value >= old ? s.value - old : s.value));
  }
  const buckets = [...les.entries()].sort((a, b) => a[0] - b[0]);
  if (buckets.length < 2) return null;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      const inBucket = count - below;
      return inBucket > 0 ? lower + ((le - lower) * (rank - below)) / inBucket : le;
    }
    lower = le;
    below = count;
  }
  return lower;
}
