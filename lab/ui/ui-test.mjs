// Browser tests of the bitdust web UI, on a devnet of real daemons, in Debian's chromium driven by playwright-core:
//   1. a new user opens the login link, sees 4 suppliers connected, backs up a folder, watches the progress,
//      restores it elsewhere through the UI, and the trees are identical;
//   2. alice and bob (two browser sessions) add each other and chat; bob's page shows alice's message live; a
//      message `<img src=x onerror=alert(1)>` shows as text; a file sent in the chat downloads identical;
//   3. a supplier is stopped: the suppliers and automata pages show the change and the replacement live;
//   4. security (the attacker: another web site in the user's browser, or a DNS-rebinding page): a foreign Host
//      gets 403, a WebSocket from a foreign Origin is refused, no session gets 401, a cookie-authenticated change
//      without the UI's Origin gets 403, a login link works once and leaves no secret in the URL;
//   5. axe-core: no serious or critical violation on any page.
// Screenshots of every page go to target/ui-screenshots/. Every wait is on something the page or the node shows.
//
// usage: node lab/ui/ui-test.mjs BITDUST_BINARY
import { chromium } from "playwright-core";
import AxeBuilder from "@axe-core/playwright";
import { spawn, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import assert from "node:assert/strict";

const BIN = path.resolve(process.argv[2] || "target/debug/bitdust");
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const SHOTS = path.join(ROOT, "target/ui-screenshots");
const W = fs.mkdtempSync(path.join(os.tmpdir(), "bitdust-ui-"));
const children = [];
/** The app's files the browsers loaded: path -> bytes. */
const assets = new Map();
/** Every page opened, for the pictures taken when a test fails. */
const openPages = [];
let failed = false;

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const bd = (home, ...args) => execFileSync(BIN, ["--home", home, ...args], { encoding: "utf8", timeout: 120000 });
const bdJson = (home, ...args) => JSON.parse(bd(home, "--json", ...args));

/** Starts `args` and resolves once a line of its output matches `ready`. */
function startProcess(args, ready, logFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    const out = fs.createWriteStream(logFile);
    let text = "";
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} not ready in 180 s:\n${text}`)), 180000);
    const onData = (d) => {
      out.write(d);
      text += d;
      if (ready.test(text)) {
        clearTimeout(timer);
        resolve({ child, text });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code}):\n${text}`)));
  });
}

/** Waits until `f()` is truthy (polling every 200 ms), up to `ms`. */
async function until(what, f, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every file, folder and symlink under `dir`: relative path -> kind, mode, size, SHA-256 or link target. */
function tree(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isSymbolicLink()) out.set(rel, `link ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${(st.mode & 0o777).toString(8)}`);
        walk(p);
      } else out.set(rel, `file ${(st.mode & 0o777).toString(8)} ${st.size} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
    }
  };
  walk(dir);
  return out;
}

/** A raw HTTP request to the node (Node's own http: it lets us set Host and Origin as an attacker would). */
function raw(port, { method = "GET", path: p = "/api/v1/status", headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: p, headers, setHost: !("Host" in headers) });
    req.on("response", (r) => {
      let body = "";
      r.on("data", (d) => (body += d));
      r.on("end", () => resolve({ status: r.statusCode, headers: r.headers, body }));
    });
    req.on("upgrade", (r, socket) => {
      socket.destroy();
      resolve({ status: r.statusCode, headers: r.headers, body: "" });
    });
    req.on("error", reject);
    req.end();
  });
}

const browserArgs = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

async function newSession(browser, home, who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  openPages.push([who, page]);
  page.on("pageerror", (e) => { failed = true; console.error(`${who}: page error: ${e.message}`); });
  page.on("dialog", async (d) => { failed = true; console.error(`${who}: a dialog opened: ${d.message()}`); await d.dismiss(); });
  const { url } = bdJson(home, "ui", "--no-open");
  page.on("response", async (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/api/") || u.pathname.startsWith("/ui/") || assets.has(u.pathname)) return;
    assets.set(u.pathname, null);
    try { assets.set(u.pathname, await r.body()); } catch (e) { assets.delete(u.pathname); }
  });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector("#global-id");
  const firstPageMs = Date.now() - t0;
  const origin = new URL(url).origin;
  assert.equal(page.url(), origin + "/", "after login the URL holds no code");
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1);
  assert.ok(cookies[0].httpOnly, "the session cookie is HttpOnly");
  assert.equal(cookies[0].sameSite, "Strict");
  // the link works once
  const again = await raw(Number(new URL(url).port), { path: new URL(url).pathname + new URL(url).search });
  assert.equal(again.status, 401, "a used login link is refused");
  log(`${who}: logged in, first page shown in ${firstPageMs} ms`);
  return { context, page, origin, port: Number(new URL(url).port), cookie: `${cookies[0].name}=${cookies[0].value}`, firstPageMs };
}

const go = async (s, name) => {
  await s.page.goto(`${s.origin}/#/${name}`);
  await s.page.waitForSelector(`nav a[href="#/${name}"][aria-current="page"]`);
};

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  log(`devnet in ${W}`);
  const net = path.join(W, "net");
  const { text: banner } = await startProcess(["devnet", "--dir", net, "--suppliers", "4", "--spares", "2"], /press Ctrl-C/, path.join(W, "devnet.log"));
  const peers = Object.fromEntries([...banner.matchAll(/^\s+(\S+)\s+(12D3Koo\S+)/gm)].map((m) => [m[2], m[1]]));
  const alice = path.join(net, "alice");
  const bootstrap = bdJson(path.join(net, "bootstrap"), "status").listen_addrs.find((a) => a.includes("/tcp/"));

  // bob: a second user of the same network, without suppliers of his own
  const bob = path.join(W, "bob");
  bd(bob, "init", "--nickname", "bob", "--api-port", "0");
  await startProcess(["--home", bob, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", bootstrap], /web UI on/, path.join(W, "bob.log"));
  await until("bob announced", () => bdJson(bob, "status").announced, 90000);

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: browserArgs });
  try {
    // ---------------------------------------------------------------- 1: overview, backup, progress, restore
    const a = await newSession(browser, alice, "alice");
    const p = a.page;
    await p.click("#hire-now");
    await p.waitForSelector("#suppliers-summary:has-text('4 of 4 suppliers hired, 4 connected')", { timeout: 90000 });
    await p.waitForSelector(".alert.ok");
    log("1: the overview shows 4 suppliers connected");
    const src = path.join(W, "src");
    fs.mkdirSync(path.join(src, "sub/deeper"), { recursive: true });
    fs.writeFileSync(path.join(src, "big.bin"), randomBytes(48 << 20));
    fs.writeFileSync(path.join(src, "sub/notes.txt"), "notes <b>not bold</b>\n");
    fs.writeFileSync(path.join(src, "sub/deeper/run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    fs.symlinkSync("sub/notes.txt", path.join(src, "link"));
    await go(a, "backups");
    await p.fill("#backup-path", src);
    // the bar moves (a row re-drawn from the events: value 0 until the first progress event); a release build backs
    // 48 MiB up in under a second, so every change of the page is watched rather than polled
    await p.evaluate(() => {
      window.barValues = [];
      new MutationObserver(() => {
        for (const bar of document.querySelectorAll(".job[data-state='running'] progress")) window.barValues.push(Number(bar.value));
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await p.click("form[aria-label='Start a backup'] button[type=submit]");
    await p.waitForSelector(".job[data-state='done']", { timeout: 300000 });
    const bar = await p.evaluate(() => window.barValues);
    assert.ok(bar.some((v) => v > 0), `the running bar moved (values seen: ${bar.slice(0, 20).join(", ")})`);
    await p.waitForSelector("#backup-list table tbody tr");
    log("1: backed up, progress seen");
    await p.click("#backup-list button[data-browse]");
    await p.waitForSelector("#file-browser tr[data-entry='big.bin']");
    await p.click("#file-browser button[data-dir='sub']");
    await p.waitForSelector("#file-browser tr[data-entry='sub/notes.txt']");
    await p.waitForSelector("#file-browser tr[data-entry='sub/deeper']");
    log("1: browsed the version's tree");
    const restored = path.join(W, "restored");
    await p.fill("#restore-to", restored);
    await p.click("form[aria-label='Restore a version'] button[type=submit]");
    await until("the restore's job row", async () => (await p.$$(".job[data-state='done']")).length >= 2, 300000);
    assert.deepEqual(tree(restored), tree(src), "the restored tree is identical");
    log("1: restored through the UI, trees identical");
    await p.waitForSelector("#backup-list .ok");
    // a second version, then forget --keep-last 1: a dry run first, then for real
    fs.writeFileSync(path.join(src, "sub/notes.txt"), "notes, second version\n");
    await p.fill("#backup-path", src);
    await p.click("form[aria-label='Start a backup'] button[type=submit]");
    await p.waitForSelector("#backup-list button[data-browse$='@2']", { timeout: 300000 });
    await p.fill("#keep-last", "1");
    await p.click("form[aria-label='Forget old versions'] button[type=submit]");
    await p.waitForSelector("#forget-report li[data-removed='1']:has-text('would remove')");
    assert.equal(await p.$$eval("#backup-list button[data-browse]", (x) => x.length), 2, "a dry run removes nothing");
    await p.uncheck("#forget-dry-run");
    await p.click("form[aria-label='Forget old versions'] button[type=submit]");
    await p.waitForSelector("#forget-report li[data-removed='1']:has-text('removed')");
    await until("version 1 gone from the list", async () => (await p.$$("#backup-list button[data-browse]")).length === 1);
    assert.ok(await p.$("#backup-list button[data-browse$='@2']"));
    log("1: a second version, then forget --keep-last 1 (dry run, then for real) from the UI");
    // prune: a dry run, then for real; what version 1 alone used (the old notes.txt) leaves the suppliers
    await p.click("form[aria-label='Prune'] button[type=submit]");
    await p.waitForSelector("#prune-report p[data-dry-run='true']");
    await p.uncheck("#prune-dry-run");
    await p.click("form[aria-label='Prune'] button[type=submit]");
    const pruned = await p.waitForSelector("#prune-report p[data-dry-run='false']");
    assert.ok((await pruned.textContent()).includes("1 versions use"), await pruned.textContent());
    // one folder of the version restored alone
    const part = path.join(W, "part");
    await p.fill("#restore-path", "sub");
    await p.fill("#restore-to", part);
    await p.click("form[aria-label='Restore a version'] button[type=submit]");
    await until("the partial restore", async () => fs.existsSync(path.join(part, "deeper/run.sh")) && (await p.$$(".job[data-state='done']")).length >= 4, 300000);
    assert.deepEqual(tree(part), tree(path.join(src, "sub")), "the restored folder is identical");
    await p.fill("#restore-path", "");
    // a backup set: added, run at once by the daemon, listed with its result, removed
    await p.fill("#schedule-path", src);
    await p.fill("#schedule-keep-last", "3");
    await p.click("form[aria-label='Add a backup set'] button[type=submit]");
    await p.waitForSelector("#schedule-list tr[data-set='1'][data-ran='yes']", { timeout: 120000 });
    await p.click("#schedule-list button[data-remove-set='1']");
    await p.waitForSelector("#schedule-list p:has-text('No backup sets')");
    log("1: prune, a partial restore and a backup set from the UI");
    await p.screenshot({ path: path.join(SHOTS, "backups.png"), fullPage: true });

    // ---------------------------------------------------------------- 2: chat between two browser sessions
    const b = await newSession(browser, bob, "bob");
    await go(a, "chat");
    await go(b, "chat");
    await p.fill("#add-contact", "bob");
    await p.click("form[aria-label='Add a contact'] button[type=submit]");
    await p.waitForSelector("#contact-list button[data-contact='bob']", { timeout: 60000 });
    await b.page.fill("#add-contact", "alice");
    await b.page.click("form[aria-label='Add a contact'] button[type=submit]");
    await b.page.waitForSelector("#contact-list button[data-contact='alice']", { timeout: 60000 });
    // both conversations open; bob's page is not reloaded from here on
    await b.page.click("#contact-list button[data-contact='alice']");
    await p.click("#contact-list button[data-contact='bob']");
    await p.fill("#message-text", "hello bob, from the browser");
    await p.click("form[aria-label='Send a message'] button[type=submit]");
    await b.page.waitForSelector("#messages li:has-text('hello bob, from the browser')", { timeout: 60000 });
    log("2: bob's page shows alice's message live");
    await b.page.fill("#message-text", "hi alice, got it");
    await b.page.click("form[aria-label='Send a message'] button[type=submit]");
    await p.waitForSelector("#messages li.in:has-text('hi alice, got it')", { timeout: 60000 });
    await p.waitForSelector("#messages li.out[data-state='read']", { timeout: 60000 });
    log("2: and alice's shows bob's answer and the read receipt");
    const xss = "<img src=x onerror=alert(1)>";
    await p.fill("#message-text", xss);
    await p.click("form[aria-label='Send a message'] button[type=submit]");
    const shown = await b.page.waitForSelector(`#messages li:has-text('${xss}')`, { timeout: 60000 });
    assert.ok((await shown.textContent()).includes(xss), "the markup shows as text");
    assert.equal(await b.page.$$eval("#messages img", (x) => x.length), 0, "no element was made of it");
    const sent = path.join(W, "photo.bin");
    fs.writeFileSync(sent, randomBytes(700 * 1024 + 13));
    await p.setInputFiles("#message-file", sent);
    await p.click("form[aria-label='Send a file'] button[type=submit]");
    const link = await b.page.waitForSelector("#messages a[data-file='photo.bin']", { timeout: 120000 });
    const [download] = await Promise.all([b.page.waitForEvent("download"), link.click()]);
    const got = path.join(W, "downloaded.bin");
    await download.saveAs(got);
    assert.ok(fs.readFileSync(got).equals(fs.readFileSync(sent)), "the downloaded file is identical");
    assert.equal(download.suggestedFilename(), "photo.bin");
    log("2: the file sent in the chat downloads identical");
    // a group: alice creates it and adds bob; bob finds it in his list and reads it; a new message arrives live
    await p.fill("#new-group", "team");
    await p.click("form[aria-label='Create a group'] button[type=submit]");
    await p.waitForSelector("#group-list button[data-group='team'][aria-pressed='true']");
    await p.fill("form[aria-label='Add a member'] input[name=member]", "bob");
    await p.click("form[aria-label='Add a member'] button[type=submit]");
    await p.waitForSelector("#conversation-head li:has-text('bob')");
    await p.fill("#message-text", "hello team");
    await p.click("form[aria-label='Send a message'] button[type=submit]");
    await b.page.click("#group-list button[data-group='team']", { timeout: 60000 });
    await b.page.waitForSelector("#messages li:has-text('hello team')", { timeout: 60000 });
    await p.fill("#message-text", "second to the team");
    await p.click("form[aria-label='Send a message'] button[type=submit]");
    await b.page.waitForSelector("#messages li:has-text('second to the team')", { timeout: 60000 });
    log("2: a group made in alice's page is read live in bob's");
    await b.page.click("#contact-list button[data-contact='alice']");
    await b.page.waitForSelector("#messages a[data-file='photo.bin']");
    await b.page.screenshot({ path: path.join(SHOTS, "chat.png"), fullPage: true });

    // ---------------------------------------------------------------- 3: a supplier stops
    const autom = await a.context.newPage();
    await autom.goto(`${a.origin}/#/automata`);
    await go(a, "suppliers");
    const row0 = await p.waitForSelector("#supplier-table tr[data-position='0']");
    const victim = await row0.getAttribute("data-peer");
    await autom.waitForSelector(`tr[data-automaton='supplier_connection/0'][data-state='connected']`);
    const name = peers[victim];
    assert.ok(name, `position 0's supplier ${victim} is a devnet node`);
    const pid = Number(fs.readFileSync(path.join(net, name, "daemon.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    log(`3: killed ${name} (position 0)`);
    await p.waitForSelector("#supplier-table tr[data-position='0'] .bad", { timeout: 120000 });
    await autom.waitForSelector(`tr[data-automaton='supplier_connection/0']:not([data-state='connected'])`, { timeout: 120000 });
    log("3: both pages show the supplier down");
    await p.waitForSelector(`#supplier-table tr[data-position='0']:not([data-peer='${victim}']) .ok`, { timeout: 240000 });
    await autom.waitForSelector(`tr[data-automaton='supplier_connection/0'][data-state='connected']:not([data-peer='${victim}'])`, { timeout: 60000 });
    log("3: both pages show the replacement");
    await p.screenshot({ path: path.join(SHOTS, "suppliers.png"), fullPage: true });
    await autom.close();

    // ---------------------------------------------------------------- 4: security
    const port = a.port;
    assert.equal((await raw(port, { headers: { Host: `evil.example:${port}`, Cookie: a.cookie } })).status, 403, "foreign Host");
    assert.equal((await raw(port, { path: "/", headers: { Host: `evil.example:${port}` } })).status, 403, "foreign Host on the app");
    assert.equal((await raw(port)).status, 401, "no cookie, no token");
    assert.equal((await raw(port, { headers: { Cookie: a.cookie } })).status, 200, "the session's cookie");
    const ws = { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64"), Cookie: a.cookie };
    assert.equal((await raw(port, { path: "/api/v1/events/ws", headers: { ...ws, Origin: "http://evil.example" } })).status, 403, "WebSocket from a foreign Origin");
    assert.equal((await raw(port, { path: "/api/v1/events/ws", headers: { ...ws, Origin: a.origin } })).status, 101, "WebSocket from the UI");
    assert.equal((await raw(port, { method: "POST", path: "/api/v1/suppliers/hire", headers: { Cookie: a.cookie } })).status, 403, "a change by cookie without Origin");
    assert.equal((await raw(port, { method: "POST", path: "/api/v1/suppliers/hire", headers: { Cookie: a.cookie, Origin: "http://evil.example" } })).status, 403, "a change from a foreign Origin");
    const index = await raw(port, { path: "/" });
    assert.match(index.headers["content-security-policy"], /default-src 'self'/);
    assert.equal(index.headers["x-content-type-options"], "nosniff");
    const fetched = await b.page.evaluate(async () => (await fetch("/api/v1/files/" + "0".repeat(32))).status);
    assert.equal(fetched, 404);
    log("4: Host, Origin, cookie and WebSocket checks hold");

    // ---------------------------------------------------------------- settings: checked config, sealed key
    await go(a, "settings");
    await p.waitForSelector("main[data-ready]");
    const configFile = path.join(alice, "config.toml");
    const before = fs.readFileSync(configFile, "utf8");
    const cfg = await p.inputValue("#config-text");
    assert.match(cfg, /data_shards = \d+/);
    await p.fill("#config-text", cfg.replace(/data_shards = \d+/, "data_shards = 9"));
    await p.click("form[aria-label='Settings'] button[type=submit]");
    await p.waitForSelector("form[aria-label='Settings'] ~ .error:has-text('layout')");
    assert.equal(fs.readFileSync(configFile, "utf8"), before, "a refused config writes nothing");
    const interval = Number(cfg.match(/announce_interval_secs = (\d+)/)[1]);
    await p.fill("#config-text", cfg.replace(/announce_interval_secs = \d+/, `announce_interval_secs = ${interval + 1}`));
    await p.click("form[aria-label='Settings'] button[type=submit]");
    await p.waitForSelector("#config-saved .ok");
    assert.ok(fs.readFileSync(configFile, "utf8").includes(`announce_interval_secs = ${interval + 1}`));
    const keyFile = path.join(W, "alice.key");
    await p.fill("#key-file", keyFile);
    await p.fill("#key-passphrase", "correct horse battery");
    await p.fill("#key-passphrase-again", "correct horse battery");
    await p.click("form[aria-label='Export the key'] button[type=submit]");
    await p.waitForSelector("#key-exported .ok");
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(keyFile, "utf8").includes(fs.readFileSync(path.join(alice, "identity.key"), "utf8").trim()), "sealed");
    log("settings: a bad config refused with its reason, a good one saved, the key exported sealed");

    // ---------------------------------------------------------------- 5: accessibility, and every page's picture
    for (const [s, who] of [[a, "alice"], [b, "bob"]]) {
      for (const pageName of ["overview", "backups", "suppliers", "automata", "chat", "shares", "settings"]) {
        await go(s, pageName);
        await s.page.waitForSelector("main[data-ready]");
        if (pageName === "chat") await s.page.click(`#contact-list button[data-contact='${who === "alice" ? "bob" : "alice"}']`);
        const r = await new AxeBuilder({ page: s.page }).analyze();
        const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
        assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`), [], `axe on ${who}'s ${pageName}`);
        if (who === "alice") await s.page.screenshot({ path: path.join(SHOTS, `${pageName}.png`), fullPage: true });
      }
    }
    log("5: axe-core: no serious or critical violation on any page");
    assert.ok(!failed, "no page error and no dialog");
    let plain = 0, gz = 0;
    for (const [file, body] of assets) {
      const z = zlib.gzipSync(body, { level: 9 }).length;
      plain += body.length;
      gz += z;
      log(`  ${file}: ${body.length} bytes, ${z} gzipped`);
    }
    log(`the whole UI: ${assets.size} files, ${plain} bytes, ${gz} gzipped`);
    assert.ok(gz < 500 * 1024, "the whole UI under 500 KB compressed");
    // the overview loaded again (a returning user): from navigation start to the node's numbers on screen
    await go(a, "overview");
    const loads = [];
    for (let i = 0; i < 7; i++) {
      const t = Date.now();
      await p.reload();
      await p.waitForSelector("#connected-peers");
      loads.push(Date.now() - t);
    }
    loads.sort((x, y) => x - y);
    log(`first page shown in ${a.firstPageMs} ms (alice's login), ${b.firstPageMs} ms (bob's); overview reloaded: median ${loads[3]} ms, worst ${loads[6]} ms of 7; screenshots in ${SHOTS}`);
  } catch (e) {
    for (const [i, [who, page]] of openPages.entries()) {
      await page.screenshot({ path: path.join(SHOTS, `failed-${i}-${who}.png`), fullPage: true }).catch(() => {});
      console.error(`${who}'s page at the failure (${page.url()}), picture in ${SHOTS}/failed-${i}-${who}.png:\n` +
        (await page.textContent("main").catch(() => "?")));
    }
    throw e;
  } finally {
    await browser.close();
  }
}

let code = 0;
try {
  await main();
  log("ui tests passed");
} catch (e) {
  code = 1;
  console.error(e);
  for (const f of ["devnet.log", "bob.log"]) {
    const p = path.join(W, f);
    if (fs.existsSync(p)) console.error(`--- ${f} (last 40 lines)\n` + fs.readFileSync(p, "utf8").split("\n").slice(-40).join("\n"));
  }
} finally {
  for (const c of children) c.kill("SIGINT");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on("exit", r)))));
  if (code === 0) fs.rmSync(W, { recursive: true, force: true });
  else console.error(`kept ${W}`);
  process.exit(code);
}
