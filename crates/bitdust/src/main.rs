//! `bitdust`: the command-line interface, the daemon, the devnet and the demo (benchmarks and simulations are
//! `bitdust-lab`'s).
//!
//! Commands that need the network talk to the running daemon through its local API ([`client`]);
//! `init`, `key export` and `daemon` work on the home folder directly.

use bitdust::{client, demo, devnet, out};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitdust_core::human_bytes;
use bitdust_core::keys::NodeKeys;
use bitdust_node::{Config, Daemon, Home, Service, StartOptions};
use bitdust_storage::config::StorageConfig;
use bitdust_storage::{Overrides, Storage, StorageService};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::client::Client;

/// bitdust: encrypted, erasure-coded backup to a peer-to-peer network of suppliers.
#[derive(Parser)]
#[command(name = "bitdust", version, about)]
struct Cli {
    /// The node's home folder (default: $BITDUST_HOME, else ~/.local/share/bitdust).
    #[arg(long, global = true, env = "BITDUST_HOME")]
    home: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new identity (keys, identity revision 1, config) in the home.
    Init {
        /// Nickname, 3 to 32 of a-z 0-9 _ - (with --from-key, the one in the DHT is used if found).
        #[arg(long)]
        nickname: Option<String>,
        /// Restore an identity from a key file written by `bitdust key export`, then recover the catalog
        /// from the suppliers found through the DHT.
        #[arg(long, value_name = "FILE")]
        from_key: Option<PathBuf>,
        /// Bootstrap nodes (multiaddr ending in /p2p/PEER_ID), saved in the config.
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: Vec<String>,
        /// With --from-key: also restore the latest version of every backup into DIR/NAME.
        #[arg(long, value_name = "DIR", requires = "from_key")]
        restore_to: Option<PathBuf>,
        /// Local API port to save in the config.
        #[arg(long)]
        api_port: Option<u16>,
    },
    /// Run the node.
    Daemon {
        /// libp2p listen address (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
        /// Bootstrap node (repeatable), ending in /p2p/PEER_ID.
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: Vec<String>,
        /// Offer space to customers.
        #[arg(long, requires = "donate")]
        supplier: bool,
        /// Donated space, e.g. 10G.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        donate: Option<u64>,
        /// Local API port (overrides the config).
        #[arg(long)]
        api_port: Option<u16>,
        /// Serve as a relay ("proxy router") for nodes behind NAT (for public nodes).
        #[arg(long)]
        relay: bool,
        /// Reserve a slot on this relay (repeatable), ending in /p2p/PEER_ID.
        #[arg(long, value_name = "MULTIADDR")]
        use_relay: Vec<String>,
    },
    /// Show this node's state.
    Status,
    /// Show the hired suppliers (hires missing ones with --hire).
    Suppliers {
        /// Hire suppliers now until n positions are filled.
        #[arg(long)]
        hire: bool,
    },
    /// Back up a file or folder (a new version each time).
    Backup {
        /// The path.
        path: PathBuf,
    },
    /// List backups and versions.
    Ls,
    /// Restore NAME or NAME@VERSION into a folder.
    Restore {
        /// Backup name, optionally @VERSION.
        name: String,
        /// Target folder (must be empty unless --force).
        #[arg(long)]
        to: PathBuf,
        /// Restore into a non-empty folder.
        #[arg(long)]
        force: bool,
    },
    /// List every state machine with its state; or print one kind's diagram.
    Automata {
        /// Print the diagram of this automaton kind (supplier_connection, hire_fire, rebuild) and exit.
        #[arg(long, value_name = "KIND")]
        diagram: Option<String>,
        /// With --diagram: Graphviz DOT instead of Mermaid.
        #[arg(long, requires = "diagram")]
        dot: bool,
    },
    /// Per backup version: blocks at full redundancy, degraded (and how many more losses they take), lost.
    Health,
    /// Supplier management.
    Supplier {
        #[command(subcommand)]
        command: SupplierCmd,
    },
    /// Key management.
    Key {
        #[command(subcommand)]
        command: KeyCmd,
    },
    /// Run a local network on 127.0.0.1 (bootstrap node, suppliers, customer alice) until Ctrl-C.
    Devnet {
        /// Folder for every node's home.
        #[arg(long)]
        dir: PathBuf,
        /// Number of suppliers the customer hires.
        #[arg(long, default_value_t = 4)]
        suppliers: u16,
        /// Data shards k of the customer's layout RS(k, suppliers); 0: ceil(suppliers / 2).
        #[arg(long, default_value_t = 0)]
        data_shards: u16,
        /// Spare suppliers beyond those, ready to replace one that goes away.
        #[arg(long, default_value_t = 2)]
        spares: u16,
        /// Transports the nodes listen on.
        #[arg(long, value_enum, default_value_t = devnet::Transports::Both)]
        transports: devnet::Transports,
    },
    /// A first look: devnet, backup, stop n-k suppliers, restore, verify, report.
    Demo {
        /// What to back up (default /usr/share/doc).
        path: Option<PathBuf>,
        /// Number of suppliers.
        #[arg(long, default_value_t = 4)]
        suppliers: u16,
    },
}

#[derive(Subcommand)]
enum SupplierCmd {
    /// Fire the supplier at POSITION and hire another; its fragments are rebuilt on the new one.
    Replace {
        /// Position (0-based shard index), as `bitdust suppliers` shows.
        position: u16,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Write the secret key to FILE (mode 0600). Whoever holds it can read all your data.
    Export {
        /// Where to write it (must not exist).
        file: PathBuf,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    bitdust_core::parse_size(s)
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BITDUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,bitdust=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let json = cli.json;
    if let Err(e) = run(cli) {
        if json {
            out!("{}", json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}

fn print(json_out: bool, value: &Value, text: impl FnOnce(&Value) -> String) {
    if json_out {
        out!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        out!("{}", text(value));
    }
}

fn run(cli: Cli) -> Result<()> {
    let home = Home::new(cli.home.clone().unwrap_or_else(Home::default_root));
    let j = cli.json;
    match cli.command {
        Cmd::Init { nickname, from_key, bootstrap, restore_to, api_port } => {
            init(&home, nickname, from_key, bootstrap, restore_to, api_port, j)
        }
        Cmd::Daemon { listen, bootstrap, supplier, donate, api_port, relay, use_relay } => {
            let opts =
                StartOptions { listen, bootstrap, api_port, quiet: false, relays: use_relay, relay_server: relay };
            let storage = Overrides { donate_bytes: if supplier { donate } else { None } };
            tokio::runtime::Runtime::new()?.block_on(daemon(home, opts, storage))
        }
        Cmd::Status => {
            let v = Client::for_home(&home)?.get("/status")?;
            print(j, &v, |v| {
                let mut s = format!(
                    "node        {}\npeer id     {}\nidentity    revision {}\naddresses   {}\nnetwork     {} connected peers, {} in routing table, {}\n",
                    v["global_id"].as_str().unwrap_or(""),
                    v["peer_id"].as_str().unwrap_or(""),
                    v["identity_revision"],
                    v["listen_addrs"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default(),
                    v["connected_peers"],
                    v["routing_table_size"],
                    if v["announced"].as_bool() == Some(true) { "announced in the DHT" } else { "not yet announced in the DHT" },
                );
                if v["supplier"].as_bool() == Some(true) {
                    s += &format!(
                        "supplier    {} of {} donated used, {} customers\n",
                        human_bytes(v["stored_bytes"].as_u64().unwrap_or(0)),
                        human_bytes(v["donated_bytes"].as_u64().unwrap_or(0)),
                        v["customers"]
                    );
                }
                s += &format!(
                    "customer    {} of {} suppliers hired, {} backups (catalog revision {})\n",
                    v["suppliers_hired"], v["suppliers_wanted"], v["backups"], v["catalog_revision"]
                );
                let relays: Vec<&str> =
                    v["relays"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                s += &format!(
                    "nat         reachability {}; relays in use: {}{}",
                    v["reachability"].as_str().unwrap_or("unknown"),
                    if relays.is_empty() { "none".to_string() } else { relays.join(", ") },
                    if v["relay_server"].as_bool() == Some(true) { "; serving as a relay" } else { "" }
                );
                for c in v["connections"].as_array().into_iter().flatten() {
                    s += &format!(
                        "\n  {} {:<8} {}",
                        c["peer_id"].as_str().unwrap_or(""),
                        if c["relayed"].as_bool() == Some(true) { "relayed" } else { "direct" },
                        c["address"].as_str().unwrap_or("")
                    );
                }
                s
            });
            Ok(())
        }
        Cmd::Suppliers { hire } => {
            let c = Client::for_home(&home)?;
            let v = if hire { c.post("/suppliers/hire", json!({}))? } else { c.get("/suppliers")? };
            print(j, &v, |v| {
                let list = v["suppliers"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    return format!(
                        "no suppliers hired yet (wanted: {}); `bitdust suppliers --hire` or a first backup hires them",
                        v["wanted"]
                    );
                }
                let mut s = format!(
                    "{} of {} suppliers\nPOS  STATE        HOLDS                  PEER ID",
                    list.len(),
                    v["wanted"]
                );
                for x in list {
                    let holds = match (x["held_fragments"].as_u64(), x["held_bytes"].as_u64()) {
                        (Some(f), Some(b)) => format!("{f} fragments, {}", human_bytes(b)),
                        _ => "?".into(),
                    };
                    s += &format!(
                        "\n{:<4} {:<12} {:<22} {}",
                        x["position"],
                        x["state"].as_str().unwrap_or(if x["connected"].as_bool() == Some(true) {
                            "connected"
                        } else {
                            "unknown"
                        }),
                        holds,
                        x["peer_id"].as_str().unwrap_or("")
                    );
                }
                s
            });
            Ok(())
        }
        Cmd::Backup { path } => {
            let abs = std::path::absolute(&path).with_context(|| format!("cannot back up {}", path.display()))?;
            std::fs::symlink_metadata(&abs).with_context(|| format!("cannot back up {}", path.display()))?;
            let c = Client::for_home(&home)?;
            let job = c.post("/backups", json!({ "path": abs }))?;
            let v = c.wait_job(job["job"].as_u64().unwrap_or(0), "backup ", j)?;
            print(j, &v, |v| {
                let bytes = v["bytes"].as_u64().unwrap_or(0);
                let secs = v["seconds"].as_f64().unwrap_or(0.0);
                let mut s = format!(
                    "backed up {} as {}@{}: {} files, {} in {:.2} s ({:.1} MB/s); {} stored with {}",
                    abs.display(),
                    v["name"].as_str().unwrap_or(""),
                    v["version"],
                    v["files"],
                    human_bytes(bytes),
                    secs,
                    bytes as f64 / 1e6 / secs.max(1e-9),
                    human_bytes(v["stored_bytes"].as_u64().unwrap_or(0)),
                    v["layout"].as_str().unwrap_or("")
                );
                for (key, what) in [("skipped", "skipped (special file)"), ("changed", "changed during backup")] {
                    for p in v[key].as_array().into_iter().flatten() {
                        s += &format!("\n  {what}: {}", p.as_str().unwrap_or(""));
                    }
                }
                s
            });
            Ok(())
        }
        Cmd::Ls => {
            let v = Client::for_home(&home)?.get("/backups")?;
            print(j, &v, |v| {
                let list = v["backups"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    return "no backups yet".into();
                }
                let mut s = String::from(
                    "NAME@VERSION          FILES        SIZE      STORED  LAYOUT     CREATED (unix)  SOURCE",
                );
                for b in list {
                    for ver in b["versions"].as_array().into_iter().flatten() {
                        s += &format!(
                            "\n{:<20} {:>6} {:>11} {:>11}  {:<10} {:<15} {}",
                            format!("{}@{}", b["name"].as_str().unwrap_or(""), ver["version"]),
                            ver["files"],
                            human_bytes(ver["bytes"].as_u64().unwrap_or(0)),
                            human_bytes(ver["stored_bytes"].as_u64().unwrap_or(0)),
                            ver["layout"].as_str().unwrap_or(""),
                            ver["created_unix"],
                            b["source"].as_str().unwrap_or("")
                        );
                    }
                }
                s
            });
            Ok(())
        }
        Cmd::Restore { name, to, force } => {
            let (name, version) = split_version(&name)?;
            let to = std::path::absolute(&to)?;
            let c = Client::for_home(&home)?;
            let job = c.post("/restores", json!({ "name": name, "version": version, "to": to, "force": force }))?;
            let v = c.wait_job(job["job"].as_u64().unwrap_or(0), "restore", j)?;
            print(j, &v, |v| {
                let bytes = v["bytes"].as_u64().unwrap_or(0);
                let secs = v["seconds"].as_f64().unwrap_or(0.0);
                format!(
                    "restored {}@{} into {}: {} files, {} in {:.2} s ({:.1} MB/s){}",
                    v["name"].as_str().unwrap_or(""),
                    v["version"],
                    v["target"].as_str().unwrap_or(""),
                    v["files"],
                    human_bytes(bytes),
                    secs,
                    bytes as f64 / 1e6 / secs.max(1e-9),
                    match v["fragments_failed"].as_u64() {
                        Some(0) | None => String::new(),
                        Some(n) => format!("; {n} fragments were missing or bad and were replaced by others"),
                    }
                )
            });
            Ok(())
        }
        Cmd::Automata { diagram: Some(kind), dot } => {
            let all = automata_kinds();
            let table = bitdust_core::automata::transitions(&all, &kind).with_context(|| {
                let kinds: Vec<&str> = all.iter().map(|(k, _)| *k).collect();
                format!("no automaton kind {kind:?} (kinds: {})", kinds.join(", "))
            })?;
            let text =
                if dot { bitdust_core::automata::dot(&kind, table) } else { bitdust_core::automata::mermaid(table) };
            print(j, &json!({ "kind": kind, "diagram": text }), |_| text.trim_end().to_string());
            Ok(())
        }
        Cmd::Automata { diagram: None, .. } => {
            let v = Client::for_home(&home)?.get("/automata")?;
            print(j, &v, |v| {
                let list = v["automata"].as_array().cloned().unwrap_or_default();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let mut s = String::from("AUTOMATON                 STATE          FOR      DETAILS");
                for a in list {
                    let since = a["since_unix_ms"].as_u64().unwrap_or(now);
                    let details: Vec<String> = a["details"]
                        .as_object()
                        .map(|o| o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k}={v}")).collect())
                        .unwrap_or_default();
                    s += &format!(
                        "\n{:<25} {:<14} {:>6}s  {}",
                        a["name"].as_str().unwrap_or(""),
                        a["state"].as_str().unwrap_or(""),
                        now.saturating_sub(since) / 1000,
                        details.join(" ")
                    );
                }
                s
            });
            Ok(())
        }
        Cmd::Health => {
            let v = Client::for_home(&home)?.get("/health")?;
            print(j, &v, |v| {
                let list = v["versions"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    return "no backups yet".into();
                }
                let mut s = String::from("NAME@VERSION          BLOCKS    FULL  DEGRADED  CAN STILL LOSE  LOST");
                for x in &list {
                    s += &format!(
                        "\n{:<20} {:>7} {:>7} {:>9} {:>15} {:>5}",
                        format!("{}@{}", x["name"].as_str().unwrap_or(""), x["version"]),
                        x["blocks"],
                        x["full"],
                        x["degraded"],
                        x["can_still_lose"],
                        x["lost"]
                    );
                    for f in x["lost_files"].as_array().into_iter().flatten() {
                        s += &format!("\n  cannot be restored: {}", f.as_str().unwrap_or(""));
                    }
                }
                s += &format!(
                    "\nrebuild queue: {} blocks, {} fragments",
                    v["rebuild_queue_blocks"], v["rebuild_queue_fragments"]
                );
                s
            });
            Ok(())
        }
        Cmd::Supplier { command: SupplierCmd::Replace { position } } => {
            let v = Client::for_home(&home)?.post(&format!("/suppliers/{position}/replace"), json!({}))?;
            print(j, &v, |_| {
                format!("replacing the supplier at position {position}; watch it with `bitdust automata`")
            });
            Ok(())
        }
        Cmd::Key { command: KeyCmd::Export { file } } => {
            let keys = home.keys()?;
            if file.exists() {
                bail!("{} exists; refusing to overwrite it", file.display());
            }
            bitdust_node::home::write_secret(&file, keys.export_text().as_bytes())?;
            let v = json!({ "file": file, "peer_id": keys.peer_id().to_string() });
            print(j, &v, |_| {
                format!(
                    "secret key of {} written to {} (mode 0600).\nKeep it safe and offline: it alone restores your identity and all your data.",
                    keys.peer_id(),
                    file.display()
                )
            });
            Ok(())
        }
        Cmd::Devnet { dir, suppliers, data_shards, spares, transports } => {
            let options =
                devnet::DevnetOptions { data_shards, transports, ..devnet::DevnetOptions::new(suppliers, spares) };
            devnet::run(&dir, &options)
        }
        Cmd::Demo { path, suppliers } => {
            let report = demo::run(path, suppliers, j)?;
            if j {
                out!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
    }
}

fn split_version(spec: &str) -> Result<(String, Option<u32>)> {
    match spec.rsplit_once('@') {
        Some((name, v)) => {
            let v: u32 = v.parse().with_context(|| format!("invalid version in {spec:?}: expected NAME@NUMBER"))?;
            Ok((name.to_string(), Some(v)))
        }
        None => Ok((spec.to_string(), None)),
    }
}

/// The automata kinds of the runtime and every wing (for diagrams without a running daemon).
fn automata_kinds() -> Vec<bitdust_core::automata::Kind> {
    let mut kinds = bitdust_core::automata::KINDS.to_vec();
    for wing in wings(Overrides::default()) {
        kinds.extend(wing.automata().iter().copied());
    }
    kinds
}

/// The feature wings the daemon runs.
fn wings(storage: Overrides) -> Vec<Box<dyn Service>> {
    vec![StorageService::new(storage)]
}

async fn daemon(home: Home, opts: StartOptions, storage: Overrides) -> Result<()> {
    let daemon = Daemon::start(home.clone(), opts, wings(storage)).await?;
    let node = daemon.node().clone();
    let _pid = bitdust_node::PidFile::create(home.path("daemon.pid"))?;
    let token = home.api_token()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let (addr, listener) = bitdust_node::http::bind(node.config().api_port).await?;
    let router = daemon.router(token, tx);
    bitdust_store::write_atomic(&home.path("api.port"), addr.port().to_string().as_bytes())?;
    let id = node.identity();
    out!("bitdust daemon {} ({})", id.identity.global_id(), node.peer_id());
    for a in &id.identity.addresses {
        out!("  listening on {a}");
    }
    out!("  API on http://{addr}/api/v1 (token in {})", home.path("api.token").display());
    if let Some(store) = daemon.service::<Storage>().and_then(|s| s.store().cloned()) {
        out!("  supplier: {} donated", human_bytes(store.donated_bytes()));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    bitdust_node::http::serve(listener, router, stop).await?;
    daemon.shutdown().await;
    let _ = std::fs::remove_file(home.path("api.port"));
    Ok(())
}

fn init(
    home: &Home,
    nickname: Option<String>,
    from_key: Option<PathBuf>,
    bootstrap: Vec<String>,
    restore_to: Option<PathBuf>,
    api_port: Option<u16>,
    j: bool,
) -> Result<()> {
    let mut config = Config { bootstrap: bootstrap.clone(), ..Config::default() };
    if let Some(p) = api_port {
        config.api_port = p;
    }
    // the storage sections with their defaults, so users see what they can set
    StorageConfig::default().write_into(&mut config)?;
    let Some(key_file) = from_key else {
        let nickname = nickname.context("--nickname NAME is required")?;
        let keys = NodeKeys::generate();
        let id = home.init(&keys, &nickname, &config)?;
        let v = json!({ "home": home.root(), "global_id": id.identity.global_id(), "peer_id": keys.peer_id().to_string(), "revision": 1 });
        print(j, &v, |_| {
            format!(
                "created identity {} (peer id {}) in {}\nnext: bitdust --home {} daemon --bootstrap <MULTIADDR>\nback up your key: bitdust --home {} key export FILE",
                id.identity.global_id(),
                keys.peer_id(),
                home.root().display(),
                home.root().display(),
                home.root().display()
            )
        });
        return Ok(());
    };
    let text = std::fs::read_to_string(&key_file).with_context(|| format!("reading {}", key_file.display()))?;
    let keys =
        NodeKeys::import_text(&text).with_context(|| format!("{} is not a bitdust key file", key_file.display()))?;
    if bootstrap.is_empty() {
        bail!("--from-key needs at least one --bootstrap node to find your suppliers");
    }
    home.init(&keys, nickname.as_deref().unwrap_or("recovered"), &config)?;
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(recover(home, restore_to.as_deref(), j))?;
    print(j, &report, |r| {
        let mut s = format!(
            "restored identity {} into {}; catalog revision {} with {} backups recovered from the suppliers",
            r["global_id"].as_str().unwrap_or(""),
            home.root().display(),
            r["catalog_revision"],
            r["backups"].as_array().map(Vec::len).unwrap_or(0)
        );
        for x in r["restored"].as_array().into_iter().flatten() {
            s += &format!(
                "\n  restored {}@{} into {} ({} files)",
                x["name"].as_str().unwrap_or(""),
                x["version"],
                x["target"].as_str().unwrap_or(""),
                x["files"]
            );
        }
        s
    });
    Ok(())
}

/// Runs an in-process node with the restored key: adopts the identity found in the DHT, recovers the
/// catalog and optionally restores every backup.
async fn recover(home: &Home, restore_to: Option<&Path>, j: bool) -> Result<Value> {
    let daemon = Daemon::start(
        home.clone(),
        StartOptions { listen: vec!["/ip4/0.0.0.0/tcp/0".into()], quiet: true, ..StartOptions::default() },
        wings(Overrides::default()),
    )
    .await?;
    let node = daemon.node().clone();
    let storage = daemon.service::<Storage>().context("the storage wing runs")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let catalog = loop {
        match storage.recover_catalog().await {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => {
                node.shutdown().await;
                return Err(e.context("could not recover the catalog"));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    };
    // Adopt the identity published from the old device (nickname), with a higher revision.
    if let Ok(found) = node.lookup_identity(node.peer_id()).await {
        node.adopt_identity(&found)?;
    }
    let mut restored = Vec::new();
    if let Some(root) = restore_to {
        let root = std::path::absolute(root)?;
        for b in &catalog.backups {
            let target = bitdust_storage::service::customer::restore_all_path(&root, &b.name);
            if !j {
                eprintln!("restoring {} into {} ...", b.name, target.display());
            }
            let r = storage.restore(&b.name, None, &target, false, bitdust_node::Progress::new()).await?;
            restored.push(serde_json::to_value(r)?);
        }
    }
    node.shutdown().await;
    Ok(json!({
        "global_id": home.identity()?.identity.global_id(),
        "peer_id": node.peer_id().to_string(),
        "catalog_revision": catalog.revision,
        "backups": catalog.backups.iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
        "restored": restored,
    }))
}
