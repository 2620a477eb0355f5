// The pages of the web UI. Each `mount(main)` builds its page under `main` and returns {onEvent, unmount}; what
// the node reports is re-read when an event says it changed (and every few seconds for counters no event
// announces). Forms are built once, so a refresh never loses what the user is typing.
import { h, svg, fill, api, bytes, when, duration, showError, jobs, jobView } from "./app.js";

/** Re-reads `load()` into `render(data)` now, on the events `wants(ev)` accepts (at most every 150 ms) and every
 * `everyMs`; a failure shows in `errorEl`. */
function live(load, render, wants, everyMs, errorEl) {
  let timer = null;
  let busy = false;
  let again = false;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      render(await load());
      if (errorEl) showError(errorEl, null);
      // for tests and assistive tools: the page shows what the node said
      document.getElementById("main").setAttribute("data-ready", "");
    } catch (e) {
      if (errorEl) showError(errorEl, e);
    }
    busy = false;
    if (again) { again = false; run(); }
  };
  const soon = () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; run(); }, 150);
  };
  run();
  const interval = everyMs ? setInterval(run, everyMs) : null;
  return {
    refresh: run,
    onEvent(ev) { if (ev.type === "reconnected" || wants(ev)) soon(); },
    unmount() { stopped = true; if (interval) clearInterval(interval); if (timer) clearTimeout(timer); },
  };
}

/** Several `live`s as one page. */
function all(...parts) {
  return {
    onEvent(ev) { for (const p of parts) p.onEvent(ev); },
    unmount() { for (const p of parts) p.unmount(); },
  };
}

const card = (title, ...children) => h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...children);
const facts = (pairs) => h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
const table = (headers, rows, label) =>
  h("table", { "aria-label": label }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))), h("tbody", {}, rows));
const errorLine = () => h("p", { class: "error", role: "alert" });
const field = (label, input) => h("label", {}, label, input);
const short = (peer) => (peer ? peer.slice(0, 8) + "…" + peer.slice(-6) : "–");
const anyOf = (...types) => (ev) => types.includes(ev.type);

/** Submits `form` through `action()`, showing its error in `err`; the button is disabled meanwhile. */
function onSubmit(form, err, action) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    showError(err, null);
    try {
      await action();
    } catch (x) {
      showError(err, x);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Overview

function overview(main) {
  const alerts = h("div", { role: "region", "aria-label": "Alerts" });
  const identity = card("Identity");
  const network = card("Network");
  const roles = card("Roles and space");
  const err = errorLine();
  main.append(err, alerts, identity, network, roles);
  const load = async () => {
    const [status, id, suppliers, health] = await Promise.all([
      api("GET", "/status"), api("GET", "/identity"),
      api("GET", "/suppliers").catch(() => null), api("GET", "/health").catch(() => null),
    ]);
    return { status, id, suppliers, health };
  };
  const render = ({ status, id, suppliers, health }) => {
    fill(identity, h("h2", {}, "Identity"), facts([
      ["Nickname", id.nickname],
      ["Global id", h("span", { class: "mono", id: "global-id" }, id.global_id)],
      ["Peer id (key fingerprint)", h("span", { class: "mono" }, id.peer_id)],
      ["Identity revision", String(id.revision)],
      ["Safety numbers", h("span", {}, "per contact, on the ", h("a", { href: "#/chat" }, "Chat"), " page (Verify)")],
    ]));
    const n = status;
    const relayed = n.connections.filter((c) => c.relayed).length;
    fill(network, h("h2", {}, "Network"), facts([
      ["Connected peers", h("span", { id: "connected-peers" }, String(n.connected_peers))],
      ["Connections", `${n.connections.length - relayed} direct, ${relayed} relayed`],
      ["Routing table", `${n.routing_table_size} peers`],
      ["In the DHT", n.announced ? "announced" : "not yet announced"],
      ["Reachability", n.reachability],
      ["Relays holding a slot for us", n.relays.length ? n.relays.map(short).join(", ") : "none"],
      ["Listening on", h("span", { class: "mono" }, n.listen_addrs.join(" "))],
    ]));
    const st = n.storage;
    const rows = [];
    if (st) {
      rows.push(["Supplier", st.supplier ? `yes: ${bytes(st.stored_bytes)} of ${bytes(st.donated_bytes)} donated used, ${st.customers} customers` : "no (start the daemon with --supplier --donate SIZE)"]);
      const connected = suppliers ? suppliers.suppliers.filter((s) => s.connected).length : 0;
      rows.push(["Customer", h("span", { id: "suppliers-summary" }, `${st.suppliers_hired} of ${st.suppliers_wanted} suppliers hired, ${connected} connected; ${st.backups} backups`)]);
    }
    rows.push(["Relay server", n.relay_server ? "yes" : "no"]);
    fill(roles, h("h2", {}, "Roles and space"), facts(rows));
    const list = [];
    if (st && st.suppliers_hired < st.suppliers_wanted) list.push(["warn", `Too few suppliers: ${st.suppliers_hired} of ${st.suppliers_wanted} hired (a first backup hires them too). `, hireButton()]);
    if (suppliers) {
      const down = suppliers.suppliers.filter((s) => !s.connected);
      if (down.length) list.push(["warn", `${down.length} supplier(s) not connected: position ${down.map((s) => s.position).join(", ")}.`]);
    }
    if (health) {
      for (const v of health.versions) {
        if (v.lost) list.push(["bad", `${v.name}@${v.version}: ${v.lost} block(s) lost.`]);
        else if (v.degraded) list.push(["warn", `${v.name}@${v.version}: ${v.degraded} of ${v.blocks} block(s) degraded (being rebuilt).`]);
      }
      for (const p of health.positions) {
        if (p.failing_audits) list.push(["bad", `Supplier ${p.position} failed ${p.failing_audits} audit(s)${p.last_audit_error ? ": " + p.last_audit_error : ""}.`]);
      }
    }
    fill(alerts, list.length ? list.map(([k, ...t]) => h("p", { class: "alert " + k }, t)) : h("p", { class: "alert ok" }, "All good: no alerts."));
  };
  const hireButton = () => {
    const b = h("button", { type: "button", id: "hire-now" }, "Hire suppliers now");
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await api("POST", "/suppliers/hire"); showError(err, null); } catch (e) { showError(err, e); }
      page.refresh();
    });
    return b;
  };
  const page = live(load, render, anyOf("automaton_changed", "health_changed", "job_ended"), 3000, err);
  return page;
}

// ---------------------------------------------------------------------------------------------------------------
// Backups

function backups(main) {
  const err = errorLine();
  const path = h("input", { id: "backup-path", name: "path", required: true, placeholder: "/home/me/Documents", autocomplete: "off" });
  const backupErr = errorLine();
  const exclude = h("input", { id: "backup-exclude", name: "exclude", placeholder: "*.tmp, node_modules/", autocomplete: "off" });
  const caches = h("input", { type: "checkbox", id: "backup-exclude-caches" });
  const oneFs = h("input", { type: "checkbox", id: "backup-one-file-system" });
  const backupForm = h("form", { class: "row", "aria-label": "Start a backup" },
    field("Folder or file on this node", path), field("Leave out (gitignore patterns, comma-separated)", exclude),
    h("label", { class: "check" }, caches, "skip CACHEDIR.TAG folders"), h("label", { class: "check" }, oneFs, "stay on this file system"),
    h("button", { type: "submit" }, "Back up"));
  onSubmit(backupForm, backupErr, async () => {
    await api("POST", "/backups", {
      path: path.value.trim(),
      exclude: exclude.value.split(",").map((x) => x.trim()).filter((x) => x),
      exclude_caches: caches.checked,
      one_file_system: oneFs.checked,
    });
  });
  const jobList = h("div", { id: "jobs", "aria-live": "polite" });
  const which = h("select", { id: "restore-version", name: "version", required: true });
  const to = h("input", { id: "restore-to", name: "to", required: true, placeholder: "/tmp/restored", autocomplete: "off" });
  const force = h("input", { type: "checkbox", id: "restore-force" });
  const only = h("input", { id: "restore-path", name: "path", placeholder: "(all) or sub/folder", autocomplete: "off" });
  const restoreErr = errorLine();
  const restoreForm = h("form", { class: "row", "aria-label": "Restore a version" },
    field("Backup and version", which), field("Only this file or folder", only), field("Into folder (empty)", to),
    h("label", { class: "check" }, force, "into a folder that is not empty"),
    h("button", { type: "submit" }, "Restore"));
  onSubmit(restoreForm, restoreErr, async () => {
    const [name, version] = JSON.parse(which.value);
    const sub = only.value.trim();
    await api("POST", "/restores", { name, version, to: to.value.trim(), force: force.checked, path: sub || null });
  });
  const list = h("div", { id: "backup-list" });
  const forgetWhich = h("select", { id: "forget-backup", required: true });
  const keeps = ["last", "hourly", "daily", "weekly", "monthly", "yearly"].map((k) => [k, h("input", { type: "number", min: 0, id: `keep-${k}`, size: 4, class: "small" })]);
  const dry = h("input", { type: "checkbox", id: "forget-dry-run", checked: true });
  const forgetErr = errorLine();
  const forgetOut = h("div", { id: "forget-report", role: "status" });
  const forgetForm = h("form", { class: "row", "aria-label": "Forget old versions" },
    field("Backup", forgetWhich), keeps.map(([k, input]) => field(`Keep ${k}`, input)),
    h("label", { class: "check" }, dry, "dry run (only show)"), h("button", { type: "submit" }, "Forget"));
  onSubmit(forgetForm, forgetErr, async () => {
    fill(forgetOut);
    const body = { dry_run: dry.checked };
    for (const [k, input] of keeps) if (input.value !== "") body[`keep_${k}`] = Number(input.value);
    if (!Object.entries(body).some(([k, v]) => k.startsWith("keep_") && v > 0)) throw new Error("give at least one Keep number above 0: without one, forget would remove every version");
    const r = await api("POST", `/backups/${encodeURIComponent(forgetWhich.value)}/forget`, body);
    fill(forgetOut,
      h("ul", {}, r.kept.map((k) => h("li", { class: "ok" }, `keep ${r.backup}@${k.version} (${k.reasons.join(", ")})`)),
        r.removed.map((v) => h("li", { class: "warn", "data-removed": v }, `${r.dry_run ? "would remove" : "removed"} ${r.backup}@${v}`))),
      h("p", {}, r.dry_run ? `Dry run: ${bytes(r.freed_bytes)} would be freed on the suppliers.` : `${bytes(r.freed_bytes)} freed on the suppliers (${r.fragments_deleted} fragments deleted).`));
    if (!r.dry_run) page.refresh();
  });
  const pruneDry = h("input", { type: "checkbox", id: "prune-dry-run", checked: true });
  const pruneErr = errorLine();
  const pruneOut = h("div", { id: "prune-report", role: "status" });
  const pruneForm = h("form", { class: "row", "aria-label": "Prune" },
    h("label", { class: "check" }, pruneDry, "dry run (only show)"), h("button", { type: "submit" }, "Prune"));
  onSubmit(pruneForm, pruneErr, async () => {
    fill(pruneOut);
    const r = await api("POST", "/prune", { dry_run: pruneDry.checked });
    const verb = r.dry_run ? "would delete" : "deleted";
    fill(pruneOut, h("p", { "data-deleted": r.blocks_deleted, "data-dry-run": String(r.dry_run) },
      `${r.versions} versions use ${r.used_chunks} chunks; ${verb} ${r.blocks_deleted} blocks and ${r.dry_run ? "would repack" : "repacked"} ${r.blocks_repacked}: ` +
      `${bytes(r.freed_bytes)} ${r.dry_run ? "would be " : ""}freed on the suppliers; ${r.blocks_kept} blocks kept.`));
    if (!r.dry_run) page.refresh();
  });
  const sets = h("div", { id: "schedule-list" });
  const setPath = h("input", { id: "schedule-path", required: true, placeholder: "/home/me/Documents", autocomplete: "off" });
  const setEvery = h("select", { id: "schedule-every" },
    [["1 hour", 3600], ["6 hours", 21600], ["1 day", 86400], ["1 week", 604800]].map(([t, v]) => h("option", { value: String(v) }, t)));
  const setKeep = h("input", { type: "number", min: 0, id: "schedule-keep-last", size: 4, class: "small" });
  const setErr = errorLine();
  const setForm = h("form", { class: "row", "aria-label": "Add a backup set" },
    field("Folder or file", setPath), field("Every", setEvery), field("Keep last (then forget and prune)", setKeep),
    h("button", { type: "submit" }, "Add"));
  onSubmit(setForm, setErr, async () => {
    const keep = setKeep.value !== "" ? { last: Number(setKeep.value) } : {};
    await api("POST", "/schedules", { path: setPath.value.trim(), every_secs: Number(setEvery.value), keep });
    setPath.value = "";
    schedule.refresh();
  });
  const schedule = live(() => api("GET", "/schedules"), (v) => {
    const now = Date.now() / 1000;
    fill(sets, v.sets.length ? table(["Set", "Path", "Every", "Last run", "Next run", ""], v.sets.map((x) => {
      const remove = h("button", { type: "button", class: "secondary", "data-remove-set": x.id }, "Remove");
      remove.addEventListener("click", async () => {
        try { await api("DELETE", `/schedules/${x.id}`); schedule.refresh(); } catch (e) { showError(setErr, e); }
      });
      const last = !x.last_result ? "never" : x.last_failed ? h("span", { class: "bad" }, "failed: " + x.last_result) : h("span", { class: "ok" }, x.last_result);
      const next = x.running ? "running now" : x.next_run_unix <= now ? "due now" : when(x.next_run_unix);
      return h("tr", { "data-set": x.id, "data-ran": x.last_run_unix ? "yes" : "no" }, h("td", {}, String(x.id)), h("td", { class: "mono" }, x.request.path),
        h("td", {}, duration(x.request.every_secs)), h("td", {}, last), h("td", {}, next), h("td", {}, remove));
    }), "Backup sets") : h("p", {}, "No backup sets."));
  }, anyOf("job_ended"), 10000, setErr);
  const browser = h("div", { id: "file-browser" }, h("p", {}, "Pick Browse on a version."));
  const browse = async (name, version, dir) => {
    try {
      const l = await api("GET", `/backups/${encodeURIComponent(name)}/files?version=${version}&dir=${encodeURIComponent(dir)}`);
      const parts = l.dir ? l.dir.split("/") : [];
      const crumbs = [h("button", { type: "button", class: "secondary", onclick: () => browse(name, version, "") }, `${name}@${version}`)];
      parts.forEach((p, i) => crumbs.push(" / ", h("button", { type: "button", class: "secondary", onclick: () => browse(name, version, parts.slice(0, i + 1).join("/")) }, p)));
      fill(browser, h("nav", { "aria-label": "Folder path", class: "crumbs" }, crumbs),
        table(["Name", "Kind", "Size"], l.entries.map((e) => {
          const base = e.path.split("/").pop();
          return h("tr", { "data-entry": e.path }, h("td", { class: "mono" }, e.kind === "dir"
            ? h("button", { type: "button", class: "secondary", "data-dir": e.path, onclick: () => browse(name, version, e.path) }, base + "/") : base),
          h("td", {}, e.kind), h("td", {}, e.kind === "file" ? bytes(e.size) : ""));
        }), `Files of ${name}@${version}${l.dir ? " in " + l.dir : ""}`),
        l.more ? h("p", {}, `and ${l.more} more`) : "");
    } catch (e) {
      fill(browser, h("p", { class: "error" }, e.message));
    }
  };
  const err2 = errorLine();
  main.append(
    card("Back up", backupForm, backupErr),
    card("Transfers", jobList),
    card("Restore", restoreForm, restoreErr),
    h("section", { class: "card", "aria-label": "Backups and versions" }, h("h2", {}, "Backups and versions"), err2, list),
    h("section", { class: "card", "aria-label": "Files of a version" }, h("h2", {}, "Files"), browser),
    card("Forget old versions", forgetForm, forgetErr, forgetOut),
    card("Prune", h("p", {}, "Deletes from the suppliers what no kept incremental version uses (after Forget)."), pruneForm, pruneErr, pruneOut),
    card("Backup sets", sets, setForm, setErr),
  );
  const renderJobs = () => {
    const shown = [...jobs.values()].filter((j) => j.kind === "backup" || j.kind === "restore").sort((a, b) => b.id - a.id).slice(0, 8);
    fill(jobList, shown.length ? shown.map(jobView) : h("p", {}, "No backup or restore since this page was opened."));
  };
  renderJobs();
  const load = async () => {
    const [b, health] = await Promise.all([api("GET", "/backups"), api("GET", "/health").catch(() => null)]);
    return { b, health };
  };
  const render = ({ b, health }) => {
    const hv = new Map((health ? health.versions : []).map((v) => [`${v.name}@${v.version}`, v]));
    const forgetSelected = forgetWhich.value;
    fill(forgetWhich, b.backups.map((bk) => h("option", { value: bk.name }, bk.name)));
    if (forgetSelected) forgetWhich.value = forgetSelected;
    const selected = which.value;
    fill(which, b.backups.flatMap((bk) => bk.versions.slice().reverse().map((v) => h("option", { value: JSON.stringify([bk.name, v.version]) }, `${bk.name}@${v.version}`))));
    if (selected) which.value = selected;
    fill(list, b.backups.length ? b.backups.map((bk) => h("div", { class: "backup" },
      h("h3", {}, bk.name, " ", h("span", { class: "meta" }, "from " + bk.source)),
      table(["Version", "Made", "Files", "Size", "Stored", "Layout", "Health", ""], bk.versions.map((v) => {
        const x = hv.get(`${bk.name}@${v.version}`);
        const state = !x ? "–" : x.lost ? h("span", { class: "bad" }, `${x.lost} blocks lost`)
          : x.degraded ? h("span", { class: "warn" }, `${x.degraded} degraded, can lose ${x.can_still_lose} more`)
          : h("span", { class: "ok" }, `full (can lose ${x.can_still_lose} suppliers)`);
        return h("tr", {}, h("td", {}, String(v.version)), h("td", {}, when(v.created_unix)), h("td", {}, String(v.files)),
          h("td", {}, bytes(v.bytes)), h("td", {}, bytes(v.stored_bytes)), h("td", {}, v.layout), h("td", {}, state),
          h("td", {}, h("button", { type: "button", class: "secondary", "data-browse": `${bk.name}@${v.version}`, onclick: () => browse(bk.name, v.version, "") }, "Browse")));
      }), `Versions of ${bk.name}`))) : h("p", {}, "No backups yet."));
  };
  const page = live(load, render, anyOf("job_ended", "health_changed"), 0, err2);
  const ticker = setInterval(renderJobs, 1000);
  return {
    onEvent(ev) {
      if (ev.type.startsWith("job_")) renderJobs();
      page.onEvent(ev);
      schedule.onEvent(ev);
    },
    unmount() { clearInterval(ticker); page.unmount(); schedule.unmount(); },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Suppliers

function suppliers(main) {
  const err = errorLine();
  const body = h("div", { id: "supplier-table" });
  const hireErr = errorLine();
  const hire = h("button", { type: "button", class: "secondary" }, "Hire missing suppliers now");
  hire.addEventListener("click", async () => {
    hire.disabled = true;
    try { await api("POST", "/suppliers/hire"); showError(hireErr, null); } catch (e) { showError(hireErr, e); }
    hire.disabled = false;
  });
  main.append(err, h("section", { class: "card", "aria-label": "Suppliers" }, h("h2", {}, "Who holds which position"), body, h("p", {}, hire), hireErr));
  const load = async () => {
    const [s, health] = await Promise.all([api("GET", "/suppliers"), api("GET", "/health").catch(() => null)]);
    return { s, health };
  };
  const render = ({ s, health }) => {
    const audits = new Map((health ? health.positions : []).map((p) => [p.position, p]));
    const rows = [];
    for (let pos = 0; pos < s.wanted; pos++) {
      const sup = s.suppliers.find((x) => x.position === pos);
      const a = audits.get(pos);
      if (!sup) {
        rows.push(h("tr", { "data-position": pos }, h("td", {}, String(pos)), h("td", { colspan: 6 }, h("span", { class: "warn" }, "no supplier: being hired"))));
        continue;
      }
      const replaceErr = h("span", { class: "error" });
      const replace = h("button", { type: "button", class: "secondary", "aria-label": `Replace supplier ${pos}` }, "Replace");
      replace.addEventListener("click", async () => {
        if (!confirm(`Replace supplier ${pos}? Its fragments are rebuilt on a new supplier.`)) return;
        replace.disabled = true;
        try { await api("POST", `/suppliers/${pos}/replace`); } catch (e) { showError(replaceErr, e); replace.disabled = false; }
      });
      const audit = !a ? "–" : a.failing_audits ? h("span", { class: "bad" }, `failing (${a.failing_audits})${a.last_audit_error ? ": " + a.last_audit_error : ""}`)
        : a.last_audit_passed_unix_ms ? h("span", { class: "ok" }, "passed " + when(a.last_audit_passed_unix_ms, true)) : "not yet";
      rows.push(h("tr", { "data-position": pos, "data-peer": sup.peer_id },
        h("td", {}, String(pos)),
        h("td", { class: "mono", title: sup.peer_id }, short(sup.peer_id)),
        h("td", { class: "supplier-state" }, h("span", { class: sup.connected ? "ok" : "bad" }, (sup.state || "–") + (sup.connected ? "" : " (offline)"))),
        h("td", {}, bytes(sup.held_bytes), sup.needed_bytes !== null && sup.needed_bytes !== undefined ? ` of ${bytes(sup.needed_bytes)}` : ""),
        h("td", {}, audit),
        h("td", {}, when(sup.hired_unix)),
        h("td", {}, replace, replaceErr)));
    }
    fill(body, table(["Position", "Peer", "State", "Holds", "Last audit", "Hired", ""], rows, "Suppliers"));
  };
  return live(load, render, anyOf("automaton_changed", "health_changed"), 3000, err);
}

// ---------------------------------------------------------------------------------------------------------------
// Automata

/** A state diagram of `kind` (its transitions), states on a circle, the states in `current` highlighted. */
function diagram(kind, current) {
  const states = [];
  for (const t of kind.transitions) for (const s of [t.from, t.to]) if (!states.includes(s)) states.push(s);
  const n = states.length;
  const w = 150, bh = 28;
  const r = Math.max(110, (n * (w * 0.55)) / Math.PI);
  const cx = r + w / 2 + 20, cy = r + bh + 20;
  const pos = new Map(states.map((s, i) => {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    return [s, [cx + r * Math.cos(a), cy + r * Math.sin(a)]];
  }));
  const labels = new Map();
  for (const t of kind.transitions) {
    const key = t.from + "\u0000" + t.to;
    labels.set(key, [...(labels.get(key) || []), t.event]);
  }
  const edges = [];
  for (const [key, evs] of labels) {
    const [from, to] = key.split("\u0000");
    const [x1, y1] = pos.get(from);
    const [x2, y2] = pos.get(to);
    if (from === to) continue;
    // shorten to the box edge so the arrow head shows
    const dx = x2 - x1, dy = y2 - y1, len = Math.hypot(dx, dy) || 1;
    const cut = Math.min(Math.abs((w / 2) / (dx / len || 1e-9)), Math.abs((bh / 2) / (dy / len || 1e-9)));
    const ex = x2 - (dx / len) * (cut + 2), ey = y2 - (dy / len) * (cut + 2);
    // bend a little so two opposite edges do not overlap
    const mx = (x1 + ex) / 2 - (dy / len) * 14, my = (y1 + ey) / 2 + (dx / len) * 14;
    edges.push(svg("path", { class: "edge", d: `M${x1},${y1} Q${mx},${my} ${ex},${ey}`, "marker-end": "url(#arrow)" }));
    edges.push(svg("text", { class: "edge-label", x: mx, y: my, "text-anchor": "middle" }, evs.join(", ")));
  }
  const boxes = states.map((s) => {
    const [x, y] = pos.get(s);
    const on = current.has(s);
    return svg("g", { class: "state" + (on ? " current" : ""), "data-state": s },
      svg("rect", { x: x - w / 2, y: y - bh / 2, width: w, height: bh, rx: 6 }),
      svg("text", { x, y: y + 4, "text-anchor": "middle" }, s + (on && current.get(s) > 1 ? ` ×${current.get(s)}` : "")));
  });
  const width = 2 * cx, height = 2 * cy;
  return svg("svg", { class: "diagram", viewBox: `0 0 ${width} ${height}`, width, role: "img", "aria-label": `State diagram of ${kind.name}; highlighted: ${[...current.keys()].join(", ") || "none"}` },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8c959f" }))),
    edges, boxes);
}

function automata(main) {
  const err = errorLine();
  const body = h("div", { id: "automata" });
  main.append(err, h("p", {}, "Every long-lived process of the node is a state machine; the states its instances are in now are highlighted."), body);
  let kinds = null;
  const load = async () => {
    if (!kinds) kinds = (await api("GET", "/automata/kinds")).kinds;
    return (await api("GET", "/automata")).automata;
  };
  const render = (instances) => {
    fill(body, kinds.map((kind) => {
      const mine = instances.filter((a) => a.kind === kind.name).sort((a, b) => a.name.localeCompare(b.name));
      const current = new Map();
      for (const a of mine) current.set(a.state, (current.get(a.state) || 0) + 1);
      return h("section", { class: "card", "aria-label": kind.name, "data-kind": kind.name },
        h("h2", {}, kind.name),
        mine.length ? table(["Instance", "State", "Since", "Details"], mine.map((a) => h("tr", { "data-automaton": a.name, "data-state": a.state, "data-peer": (a.details && a.details.peer_id) || "" },
          h("td", { class: "mono" }, a.name), h("td", { class: "automaton-state" }, h("strong", {}, a.state)), h("td", {}, when(a.since_unix_ms, true)),
          h("td", { class: "mono" }, Object.entries(a.details || {}).filter(([k]) => k !== "peer_id").map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ")))), `Instances of ${kind.name}`)
          : h("p", {}, "No instance now."),
        diagram(kind, current));
    }));
  };
  return live(load, render, anyOf("automaton_changed"), 0, err);
}

// ---------------------------------------------------------------------------------------------------------------
// Chat

function chat(main) {
  let selected = null; // {kind: "contact"|"group", name}
  const err = errorLine();
  const contactList = h("ul", { class: "contacts", id: "contact-list", "aria-label": "Contacts" });
  const groupList = h("ul", { class: "contacts", id: "group-list", "aria-label": "Groups" });
  const who = h("input", { id: "add-contact", name: "who", required: true, placeholder: "nickname", autocomplete: "off" });
  const addErr = errorLine();
  const addForm = h("form", { class: "row", "aria-label": "Add a contact" }, field("Nickname or peer id", who), h("button", { type: "submit" }, "Add contact"));
  onSubmit(addForm, addErr, async () => {
    const c = await api("POST", "/contacts", { who: who.value.trim() });
    who.value = "";
    contacts.refresh();
    select({ kind: "contact", name: c.name });
  });
  const groupName = h("input", { id: "new-group", name: "group", required: true, placeholder: "team", autocomplete: "off" });
  const groupErr = errorLine();
  const groupForm = h("form", { class: "row", "aria-label": "Create a group" }, field("New group", groupName), h("button", { type: "submit", class: "secondary" }, "Create"));
  onSubmit(groupForm, groupErr, async () => {
    const g = await api("POST", "/groups", { name: groupName.value.trim() });
    groupName.value = "";
    contacts.refresh();
    select({ kind: "group", name: g.name });
  });
  const head = h("div", { id: "conversation-head" });
  const messages = h("ul", { class: "messages", id: "messages", "aria-label": "Messages", "aria-live": "polite" });
  const text = h("input", { id: "message-text", name: "text", autocomplete: "off", placeholder: "Write a message", "aria-label": "Message" });
  const sendErr = errorLine();
  const sendForm = h("form", { class: "row", "aria-label": "Send a message" }, text, h("button", { type: "submit" }, "Send"));
  const file = h("input", { type: "file", id: "message-file", "aria-label": "File to send" });
  const fileForm = h("form", { class: "row", "aria-label": "Send a file" }, file, h("button", { type: "submit", class: "secondary" }, "Send file"));
  const convo = h("div", { hidden: true }, head, messages, sendForm, fileForm, sendErr);
  onSubmit(sendForm, sendErr, async () => {
    const t = text.value;
    if (!t.trim() || !selected) return;
    if (selected.kind === "group") await api("POST", `/groups/${encodeURIComponent(selected.name)}/messages`, { text: t });
    else await api("POST", "/messages", { to: selected.name, text: t });
    text.value = "";
    conversation.refresh();
  });
  onSubmit(fileForm, sendErr, async () => {
    const f = file.files && file.files[0];
    if (!f || !selected || selected.kind !== "contact") throw new Error("pick a file, and a contact (files go to contacts, not groups)");
    const up = await api("POST", `/uploads?name=${encodeURIComponent(f.name)}`, undefined, f);
    await api("POST", "/messages", { to: selected.name, file: up.path });
    file.value = "";
    conversation.refresh();
  });
  main.append(err, h("div", { class: "chat" },
    h("div", {}, h("h2", {}, "Contacts"), contactList, addForm, addErr, h("h2", {}, "Groups"), groupList, groupForm, groupErr),
    h("div", {}, h("h2", { id: "conversation-title" }, "Pick a contact"), convo)));

  const select = (s) => {
    selected = s;
    convo.hidden = false;
    fill(document.getElementById("conversation-title"), s.kind === "group" ? `Group ${s.name}` : s.name);
    fill(messages);
    contacts.refresh();
    conversation.refresh();
    text.focus();
  };

  const contacts = live(async () => {
    const [c, g] = await Promise.all([api("GET", "/contacts"), api("GET", "/groups")]);
    return { c: c.contacts, g: g.groups };
  }, ({ c, g }) => {
    fill(contactList, c.length ? c.map((x) => h("li", {}, h("button", {
      type: "button", class: "secondary", "data-contact": x.name,
      "aria-pressed": selected && selected.kind === "contact" && selected.name === x.name ? "true" : "false",
      onclick: () => select({ kind: "contact", name: x.name }),
    }, `${x.name} `, x.online ? "● online" : "○", x.verified ? " ✓ verified" : "", x.key_change ? " ⚠ KEY CHANGED" : ""))) : h("li", {}, "No contacts yet."));
    fill(groupList, g.length ? g.filter((x) => x.active).map((x) => h("li", {}, h("button", {
      type: "button", class: "secondary", "data-group": x.name,
      "aria-pressed": selected && selected.kind === "group" && selected.name === x.name ? "true" : "false",
      onclick: () => select({ kind: "group", name: x.name }),
    }, `${x.name} (${x.members.length})`))) : h("li", {}, "No groups."));
  }, anyOf("message"), 10000, err);

  const verifyBox = h("div", { id: "verify" });
  const conversation = live(async () => {
    if (!selected) return null;
    const asked = selected;
    if (selected.kind === "group") return { asked, group: await api("GET", `/groups/${encodeURIComponent(selected.name)}/messages?limit=200`) };
    const c = await api("GET", `/messages/${encodeURIComponent(selected.name)}?limit=200`);
    if (c.messages.some((m) => !m.outgoing && m.state !== "read")) api("POST", `/messages/${encodeURIComponent(selected.name)}/read`).catch(() => {});
    const info = (await api("GET", "/contacts")).contacts.find((x) => x.name === selected.name);
    return { asked, c, info };
  }, (data) => {
    // an answer for a conversation no longer selected (the user picked another meanwhile) is not shown
    if (!data || data.asked !== selected) return;
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    if (data.group) {
      const g = data.group;
      const iAmAdmin = g.group.members.some((m) => m.me && m.admin);
      fill(head, h("ul", { class: "members", "aria-label": "Members" }, g.group.members.map((m) => {
        const who = m.me ? "me" : m.contact || short(m.peer_id);
        const remove = iAmAdmin && !m.me ? h("button", { type: "button", class: "secondary", "aria-label": `Remove ${who}` }, "Remove") : "";
        if (remove) remove.addEventListener("click", async () => {
          if (!confirm(`Remove ${who} from ${g.group.name}? Every member's key is replaced.`)) return;
          try { await api("DELETE", `/groups/${encodeURIComponent(g.group.name)}/members/${encodeURIComponent(m.contact || m.peer_id)}`); conversation.refresh(); } catch (e) { showError(sendErr, e); }
        });
        return h("li", {}, who, m.admin ? " (admin) " : " ", remove);
      })), ...controlsFor(g.group, iAmAdmin));
      fill(messages, g.messages.map((m) => h("li", { class: m.outgoing ? "out" : "in", "data-id": m.id },
        h("span", { class: "meta" }, `${m.outgoing ? "me" : m.from_contact || short(m.from)} · ${when(m.sent_unix_ms, true)}`), m.text)));
    } else {
      const { c, info } = data;
      fill(head, info ? h("p", {}, info.global_id, " · ", info.verified ? h("span", { class: "ok" }, "verified") : h("span", { class: "warn" }, "not verified"), " ",
        h("button", { type: "button", class: "secondary", onclick: () => verify(info.name) }, "Verify…"),
        info.key_change ? h("span", { class: "bad" }, " KEY CHANGED: " + info.key_change) : "") : "", verifyBox);
      fill(messages, c.messages.map((m) => h("li", { class: m.outgoing ? "out" : "in", "data-id": m.id, "data-state": m.state },
        h("span", { class: "meta" }, `${m.outgoing ? "me" : c.contact} · ${when(m.sent_unix_ms, true)}${m.outgoing ? " · " + m.state : ""}`),
        m.file ? fileView(m) : m.text)));
    }
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  }, (ev) => ev.type === "message" && selected && (ev.contact === selected.name || ev.contact === "group:" + selected.name), 0, sendErr);

  const fileView = (m) => {
    const f = m.file;
    const ready = m.outgoing || f.state === "received";
    return h("span", {}, "File: ",
      ready ? h("a", { href: `/api/v1/files/${m.id}`, download: f.name, "data-file": f.name }, f.name) : h("span", {}, f.name),
      ` (${bytes(f.size)}, ${f.state}${f.state === "receiving" ? " " + bytes(f.received_bytes) : ""})`, f.error ? h("span", { class: "error" }, " " + f.error) : "");
  };

  const verify = async (name) => {
    fill(verifyBox, "looking the contact up…");
    try {
      const s = await api("GET", `/contacts/${encodeURIComponent(name)}/verify`);
      const confirm = h("button", { type: "button" }, "The numbers are the same");
      confirm.addEventListener("click", async () => {
        await api("POST", `/contacts/${encodeURIComponent(name)}/verify`);
        fill(verifyBox, h("p", { class: "ok" }, "Verified."));
        contacts.refresh();
        conversation.refresh();
      });
      fill(verifyBox, h("div", { class: "alert warn" }, h("p", {}, `Compare this safety number with ${name}, in person or on a call:`),
        h("p", { class: "mono" }, s.safety_number), confirm));
    } catch (e) {
      fill(verifyBox, h("p", { class: "error" }, e.message));
    }
  };

  // the group's controls are built once for the page and only shown or hidden, so no refresh can replace the form
  // being typed in (a rebuilt form came back empty between a fill and its submit)
  let controlsGroup = "";
  const member = h("input", { name: "member", placeholder: "contact", autocomplete: "off", "aria-label": "Contact to add" });
  const history = h("input", { type: "checkbox" });
  const memberErr = h("span", { class: "error" });
  const memberForm = h("form", { class: "row", "aria-label": "Add a member" }, member, h("label", { class: "check" }, history, "with history"), h("button", { type: "submit", class: "secondary" }, "Add member"), memberErr);
  onSubmit(memberForm, memberErr, async () => {
    await api("POST", `/groups/${encodeURIComponent(controlsGroup)}/members`, { contact: member.value.trim(), history: history.checked });
    member.value = "";
    conversation.refresh();
  });
  const leave = h("button", { type: "button", class: "secondary" }, "Leave the group");
  leave.addEventListener("click", async () => {
    const name = controlsGroup;
    if (!confirm(`Leave ${name}? You will not read its new messages.`)) return;
    try { await api("POST", `/groups/${encodeURIComponent(name)}/leave`); contacts.refresh(); } catch (e) { showError(sendErr, e); }
  });
  const controlsFor = (g, admin) => {
    if (g.name !== controlsGroup) {
      controlsGroup = g.name;
      member.value = "";
      showError(memberErr, null);
    }
    memberForm.hidden = !admin;
    leave.hidden = admin;
    return [memberForm, leave];
  };

  return all(contacts, conversation);
}

// ---------------------------------------------------------------------------------------------------------------
// Shares

function shares(main) {
  const err = errorLine();
  const backup = h("input", { id: "share-backup", required: true, placeholder: "Documents or Documents@2:sub/dir", autocomplete: "off" });
  const withWho = h("input", { id: "share-with", required: true, placeholder: "bob, group:team or public", autocomplete: "off" });
  const write = h("input", { type: "checkbox", id: "share-write" });
  const title = h("input", { id: "share-title", placeholder: "(public) title", autocomplete: "off" });
  const keywords = h("input", { id: "share-keywords", placeholder: "(public) maps, alps", autocomplete: "off" });
  const shareErr = errorLine();
  const shareForm = h("form", { class: "row", "aria-label": "Share a backup" },
    field("Backup [@version][:path]", backup), field("With", withWho), h("label", { class: "check" }, write, "may write"),
    field("Title", title), field("Keywords", keywords), h("button", { type: "submit" }, "Share"));
  onSubmit(shareForm, shareErr, async () => {
    const m = backup.value.trim().match(/^([^@:]+)(?:@(\d+))?(?::(.+))?$/);
    if (!m) throw new Error("write NAME, NAME@VERSION or NAME[@VERSION]:PATH");
    await api("POST", "/shares", {
      backup: m[1], version: m[2] ? Number(m[2]) : null, path: m[3] || null, with: withWho.value.trim(), write: write.checked,
      title: title.value.trim() || null, keywords: keywords.value.trim() || null,
    });
    mine.refresh();
  });
  const mineBox = h("div", { id: "my-shares" });
  const theirsBox = h("div", { id: "shared-with-me" });
  const listing = h("div", { id: "shared-listing" });
  const q = h("input", { id: "search-words", required: true, placeholder: "alps maps", autocomplete: "off", "aria-label": "Search words" });
  const searchErr = errorLine();
  const hits = h("div", { id: "search-hits" });
  const searchForm = h("form", { class: "row", role: "search", "aria-label": "Search public shares" }, q, h("button", { type: "submit" }, "Search"));
  onSubmit(searchForm, searchErr, async () => {
    fill(hits, "searching the network…");
    const r = await api("GET", `/search?q=${encodeURIComponent(q.value.trim())}`);
    fill(hits, r.hits.length ? table(["Title", "Owner", "Backup", "Keywords", "Published"], r.hits.map((x) => h("tr", {},
      h("td", {}, x.title, h("span", { class: "meta" }, x.description)), h("td", { class: "mono" }, x.owner_name || short(x.owner)),
      h("td", {}, x.backup + (x.version ? "@" + x.version : "")), h("td", {}, x.keywords.join(", ")), h("td", {}, when(x.published_unix)))), "Search results")
      : h("p", {}, `Nothing found (${r.providers} publishers asked, ${r.seconds.toFixed(1)} s).`));
  });
  main.append(err, card("Share", shareForm, shareErr), card("What I share", mineBox), card("Shared with me", theirsBox, listing), card("Search public shares", searchForm, searchErr, hits));

  const mine = live(() => api("GET", "/shares"), (s) => {
    fill(mineBox, s.shares.length ? table(["Backup", "With", "Access", "Grantees", "Versions written", ""], s.shares.map((x) => {
      const revoke = h("button", { type: "button", class: "secondary", "aria-label": `Revoke share ${x.id}` }, "Revoke");
      const e = h("span", { class: "error" });
      revoke.addEventListener("click", async () => {
        if (!confirm(`Revoke the share of ${x.backup} with ${x.with}?`)) return;
        try { await api("POST", `/shares/${x.id}/revoke`, {}); mine.refresh(); } catch (y) { showError(e, y); }
      });
      const active = x.grantees.some((g) => !g.revoked) || x.with === "public";
      return h("tr", { "data-share": x.id },
        h("td", {}, x.backup + (x.version ? "@" + x.version : "")), h("td", {}, x.with), h("td", {}, x.write ? "read, write" : "read"),
        h("td", {}, x.grantees.map((g) => `${g.name || short(g.peer)}${g.revoked ? " (revoked)" : g.delivered ? "" : " (not told yet)"}`).join(", ") || "–"),
        h("td", {}, x.contributions.map((c) => `@${c.version} by ${c.author_name || short(c.author)}`).join(", ") || "–"),
        h("td", {}, active ? revoke : "revoked", e));
    }), "My shares") : h("p", {}, "You share nothing."));
  }, anyOf("message", "job_ended"), 10000, err);

  const theirs = live(() => api("GET", "/shared"), (s) => {
    fill(theirsBox, s.shared.length ? table(["Owner", "Backup", "Access", "Received", ""], s.shared.map((x) => {
      const owner = x.owner_name || x.owner;
      const browse = h("button", { type: "button", class: "secondary", disabled: x.revoked }, "Browse");
      browse.addEventListener("click", () => browseShare(owner, x.backup, x.version, x.write && !x.revoked));
      return h("tr", {}, h("td", { class: "mono" }, owner), h("td", {}, x.backup + (x.version ? "@" + x.version : "")),
        h("td", {}, x.revoked ? "revoked" : x.write ? "read, write" : "read"), h("td", {}, when(x.received_unix_ms, true)), h("td", {}, browse));
    }), "Shared with me") : h("p", {}, "Nobody shares anything with you yet."));
  }, anyOf("message"), 10000, err);

  const browseShare = async (owner, name, version, writable) => {
    fill(listing, "asking the owner's suppliers…");
    try {
      const l = await api("GET", `/shared/${encodeURIComponent(owner)}/${encodeURIComponent(name)}${version ? "?version=" + version : ""}`);
      const to = h("input", { required: true, placeholder: "/tmp/shared", autocomplete: "off", "aria-label": "Restore into folder" });
      const e = errorLine();
      const form = h("form", { class: "row", "aria-label": "Restore the share" }, to, h("button", { type: "submit" }, `Restore ${l.backup}@${l.version}`));
      onSubmit(form, e, async () => {
        const r = await api("POST", "/shared/restore", { owner, backup: name, version: l.version, to: to.value.trim(), force: false });
        fill(e, h("span", { class: "ok" }, `Restored ${r.files} files, ${bytes(r.bytes)}.`));
      });
      let writeForm = "";
      if (writable) {
        const from = h("input", { required: true, placeholder: "/home/me/edits", autocomplete: "off", "aria-label": "Folder to add as a new version" });
        const we = errorLine();
        writeForm = h("div", {}, h("form", { class: "row", "aria-label": "Add a version to the share" }, from, h("button", { type: "submit", class: "secondary" }, "Add as a new version")), we);
        onSubmit(writeForm.firstChild, we, async () => {
          const r = await api("POST", "/shared/write", { owner, backup: name, path: from.value.trim() });
          fill(we, h("span", { class: "ok" }, `Sent to ${owner} in ${r.seconds.toFixed(1)} s; it appears as a new version once ${owner} takes it.`));
        });
      }
      fill(listing, h("h3", {}, `${owner}: ${l.backup}@${l.version}`), form, e, writeForm,
        table(["Path", "Kind", "Size"], l.entries.slice(0, 500).map((x) => h("tr", {}, h("td", { class: "mono" }, x.path), h("td", {}, x.kind), h("td", {}, bytes(x.size)))), "Files of the share"),
        l.entries.length > 500 ? h("p", {}, `and ${l.entries.length - 500} more`) : "");
    } catch (e) {
      fill(listing, h("p", { class: "error" }, e.message));
    }
  };
  return all(mine, theirs);
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

function settings(main) {
  const err = errorLine();
  const text = h("textarea", { id: "config-text", rows: 24, cols: 90, spellcheck: "false", class: "mono" });
  const file = h("p", { class: "meta" });
  const saveErr = errorLine();
  const saved = h("p", { id: "config-saved", role: "status" });
  const configForm = h("form", { "aria-label": "Settings" }, h("label", {}, "config.toml", text), h("p", {}, h("button", { type: "submit" }, "Check and save")));
  onSubmit(configForm, saveErr, async () => {
    fill(saved);
    const r = await api("PUT", "/config", { toml: text.value });
    fill(saved, h("span", { class: "ok" }, `Saved to ${r.file}. The new settings apply when the daemon starts again.`));
  });
  const keyFile = h("input", { id: "key-file", required: true, placeholder: "/media/usb/alice.key", autocomplete: "off" });
  const pass = h("input", { type: "password", id: "key-passphrase", required: true, minlength: 8, autocomplete: "new-password" });
  const pass2 = h("input", { type: "password", id: "key-passphrase-again", required: true, minlength: 8, autocomplete: "new-password" });
  const keyErr = errorLine();
  const keyDone = h("p", { id: "key-exported", role: "status" });
  const keyForm = h("form", { class: "row", "aria-label": "Export the key" }, field("New file on this node", keyFile), field("Passphrase (8 or more characters)", pass), field("Passphrase again", pass2), h("button", { type: "submit" }, "Export"));
  onSubmit(keyForm, keyErr, async () => {
    fill(keyDone);
    if (pass.value !== pass2.value) throw new Error("the two passphrases differ");
    const r = await api("POST", "/key/export", { file: keyFile.value.trim(), passphrase: pass.value });
    pass.value = pass2.value = "";
    fill(keyDone, h("span", { class: "ok" }, `The key of ${r.peer_id} is in ${r.file}, sealed under your passphrase. Keep it offline: with the passphrase it alone restores your identity and all your data.`));
  });
  const logout = h("button", { type: "button", class: "secondary" }, "Log out of this browser");
  logout.addEventListener("click", async () => {
    await api("POST", "/ui/logout", {}).catch(() => {});
    location.reload();
  });
  main.append(err,
    card("Settings", file, configForm, saveErr, saved),
    card("Export the secret key", h("p", {}, "The key file, with its passphrase, restores everything on a new device (bitdust init --from-key FILE). It is written on this node, never sent to the browser."), keyForm, keyErr, keyDone),
    card("Session", h("p", {}, "This browser holds a session cookie that only this node's pages can use."), logout));
  api("GET", "/config").then((c) => {
    text.value = c.toml;
    fill(file, "File: " + c.file);
    main.setAttribute("data-ready", "");
  }).catch((e) => showError(err, e));
  return {};
}

export const pages = {
  overview: { title: "Overview", mount: overview },
  backups: { title: "Backups", mount: backups },
  suppliers: { title: "Suppliers", mount: suppliers },
  automata: { title: "Automata", mount: automata },
  chat: { title: "Chat", mount: chat },
  shares: { title: "Shares", mount: shares },
  settings: { title: "Settings", mount: settings },
};
