// The bitdust web UI: a client of the node's public API v1 only (the same OpenAPI document the CLI uses), served
// by the node itself. Everything another user wrote (names, messages, file names) reaches the page as text
// nodes only: this file and pages.js never assign innerHTML.
import { pages } from "./pages.js";

/** An element: `h("a", {href: "#"}, "text", child)`; `on*` props are listeners; strings become text nodes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element, like `h`. */
export function svg(tag, props = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "value" || k === "checked" || k === "disabled") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An API error: the status and the node's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API: `api("GET", "/status")`; JSON in and out; throws ApiError. */
export async function api(method, path, body, raw) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (raw !== undefined) {
    opts.body = raw;
    opts.headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  let r;
  try {
    r = await fetch("/api/v1" + path, opts);
  } catch (e) {
    throw new ApiError(0, "the node does not answer (is the daemon running?)");
  }
  let data = null;
  try {
    data = await r.json();
  } catch (e) {
    data = null;
  }
  if (r.status === 401) loggedOut();
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || r.statusText);
  return data;
}

/** Bytes for people: 1.5 MiB. */
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
}

/** A Unix time (seconds or, with `ms`, milliseconds) for people. */
export function when(t, ms) {
  if (!t) return "–";
  return new Date(ms ? t : t * 1000).toLocaleString();
}

/** Seconds for people: 1 h 5 min. */
export function duration(s) {
  if (!isFinite(s) || s < 0) return "–";
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
}

/** A form's error line: shows `e`'s message, or clears with null. */
export function showError(el, e) {
  fill(el, e ? (e.message || String(e)) : "");
}

// ---------------------------------------------------------------------------------------------------------------
// The jobs (backups, restores): what the events say, kept across pages.

/** Job id -> {id, kind, target, state, done, total, started, error}. */
export const jobs = new Map();

function jobEvent(ev) {
  if (ev.type === "job_started") {
    jobs.set(ev.job, { id: ev.job, kind: ev.kind, target: ev.target, state: "running", done: 0, total: 0, started: ev.time_unix_ms, seen: Date.now() });
  } else if (ev.type === "job_progress") {
    const j = jobs.get(ev.job) || { id: ev.job, kind: "job", target: "", state: "running", started: ev.time_unix_ms, seen: Date.now() };
    j.done = ev.done_bytes;
    j.total = ev.total_bytes;
    j.fresh = ev.new_bytes || 0;
    jobs.set(ev.job, j);
  } else if (ev.type === "job_ended") {
    const j = jobs.get(ev.job);
    if (j) {
      j.state = ev.state;
      j.ended = ev.time_unix_ms;
      if (ev.state !== "done") {
        api("GET", "/jobs/" + ev.job).then((full) => { j.error = full.error; bus.emit({ type: "job_detail", job: ev.job }); }).catch(() => {});
      }
    }
  }
}

/** A job's line: its progress bar, bytes, rate and ETA, or how it ended. */
export function jobView(j) {
  const label = `${j.kind} ${j.target}`;
  const row = h("div", { class: "job", "data-job": j.id, "data-state": j.state });
  if (j.state === "running") {
    const secs = (Date.now() - (j.started || Date.now())) / 1000;
    const rate = secs > 0 ? j.done / secs : 0;
    const eta = rate > 0 && j.total ? (j.total - j.done) / rate : NaN;
    const pct = j.total ? Math.floor((100 * j.done) / j.total) : 0;
    fill(row, h("strong", {}, label), " ",
      h("progress", { max: j.total || 1, value: j.done || 0, "aria-label": `${label} progress` }), " ",
      `${pct}% · ${bytes(j.done)} of ${bytes(j.total)} · ${bytes(rate)}/s · ETA ${duration(eta)}`,
      j.kind === "backup" && j.done ? ` · ${bytes(j.fresh || 0)} new, ${bytes(j.done - (j.fresh || 0))} deduplicated` : "");
  } else {
    const took = j.ended && j.started ? (j.ended - j.started) / 1000 : NaN;
    fill(row, h("strong", {}, label), " ",
      h("span", { class: j.state === "done" ? "ok" : "bad" }, j.state),
      j.state === "done" && j.total ? ` · ${bytes(j.total)} in ${duration(took)}` : "",
      j.error ? h("span", { class: "error" }, " " + j.error) : "");
  }
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// The events stream: one WebSocket, reconnected; pages subscribe.

export const bus = {
  listeners: new Set(),
  emit(ev) {
    for (const f of this.listeners) {
      try { f(ev); } catch (e) { console.error(e); }
    }
  },
};

let lastEvent = 0;
let socket = null;
let retry = 500;

async function connectEvents() {
  const live = document.getElementById("live");
  try {
    if (lastEvent === 0) lastEvent = (await api("GET", "/events?timeout_ms=0")).last_id;
  } catch (e) {
    live.textContent = "offline";
    setTimeout(connectEvents, Math.min((retry *= 2), 10000));
    return;
  }
  socket = new WebSocket(`ws://${location.host}/api/v1/events/ws?since=${lastEvent}`);
  socket.onopen = () => {
    retry = 500;
    live.textContent = "live";
    live.className = "live ok-live";
    bus.emit({ type: "reconnected" });
  };
  socket.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (typeof ev.id === "number") lastEvent = Math.max(lastEvent, ev.id);
    jobEvent(ev);
    bus.emit(ev);
  };
  socket.onclose = () => {
    live.textContent = "reconnecting…";
    socket = null;
    setTimeout(connectEvents, Math.min((retry *= 2), 10000));
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Pages

let current = null;
let authenticated = true;

function loggedOut() {
  if (!authenticated) return;
  authenticated = false;
  if (current && current.unmount) current.unmount();
  current = null;
  const main = document.getElementById("main");
  fill(main, h("section", { class: "card login" },
    h("h1", {}, "Log in to your bitdust node"),
    h("p", {}, "This browser has no session with the node. On the machine that runs it, type:"),
    h("pre", { class: "mono" }, "bitdust ui"),
    h("p", {}, "and open the link it prints. A link works once, for two minutes.")));
}

async function route() {
  if (!authenticated) return;
  const name = (location.hash.replace(/^#\/?/, "") || "overview").split("/")[0];
  const page = pages[name] || pages.overview;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === "#/" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (current && current.unmount) current.unmount();
  const main = document.getElementById("main");
  fill(main);
  main.removeAttribute("data-ready");
  document.title = `${page.title} · bitdust`;
  main.append(h("h1", {}, page.title));
  current = page.mount(main) || {};
}

bus.listeners.add((ev) => {
  if (current && current.onEvent) current.onEvent(ev);
});

// messages that arrive while another page is shown: counted on the Chat link until it is opened
let unseen = 0;
function markChat() {
  const a = document.querySelector('#nav a[href="#/chat"]');
  if (a) fill(a, "Chat", unseen ? h("span", { class: "badge", "aria-label": `${unseen} new messages` }, String(unseen)) : "");
}
bus.listeners.add((ev) => {
  const onChat = location.hash.startsWith("#/chat");
  if (ev.type === "message" && !ev.outgoing && ev.state === "received" && !onChat) {
    unseen++;
    markChat();
  }
});
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/chat") && unseen) {
    unseen = 0;
    markChat();
  }
});

function start() {
  // the page and the header at once: a 401 from either shows the login help
  api("GET", "/identity").then((id) => fill(document.getElementById("whoami"), id.global_id)).catch(() => {});
  window.addEventListener("hashchange", route);
  route();
  connectEvents();
}

start();
