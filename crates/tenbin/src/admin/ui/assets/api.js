// The node's API as the page calls it: every request carries the token the operator typed,
// kept in sessionStorage (this tab only, gone when it closes), as `Authorization: Bearer`.

const KEY = "tenbin.admin-token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** A failed call: `status` is the HTTP status (0 when the node did not answer). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, `the node does not answer (${e.message})`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = JSON.parse(text).error || text;
    } catch (_) {
      // not JSON: keep the text
    }
    throw new ApiError(res.status, `${method} ${path}: ${res.status} ${message}`.trim());
  }
  return text;
}

export async function state() {
  return JSON.parse(await call("GET", "/api/v1/state"));
}

/** The Prometheus text, or `null` when this node serves no /metrics. */
export async function metrics() {
  try {
    return await call("GET", "/metrics");
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

const server = (pool, name) =>
  `/api/v1/pools/${encodeURIComponent(pool)}/servers/${encodeURIComponent(name)}`;

/** `active`, `draining` or `maintenance`. */
export async function setState(pool, name, value) {
  return JSON.parse(await call("PUT", `${server(pool, name)}/state`, { state: value }));
}

export async function setWeight(pool, name, weight) {
  return JSON.parse(await call("PUT", `${server(pool, name)}/weight`, { weight }));
}
