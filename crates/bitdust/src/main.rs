//! `bitdust`: the command-line interface, the daemon, the devnet and the demo (benchmarks and simulations are
//! `bitdust-lab`'s). Each command is a module of [`cmd`], over the typed local API ([`bitdust_api`]).

mod cmd;

use std::path::PathBuf;

use anyhow::Result;
use bitdust::{demo, devnet, out};
use bitdust_node::{Home, StartOptions};
use bitdust_storage::Overrides;
use clap::{Parser, Subcommand};

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
        /// With a protected --from-key file: read its passphrase from the first line of FILE (otherwise it is
        /// asked on the terminal).
        #[arg(long, value_name = "FILE", requires = "from_key")]
        passphrase_file: Option<PathBuf>,
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
    /// Print a one-time link that logs a browser into the web UI (and open it on a desktop).
    Ui {
        /// Only print the link.
        #[arg(long)]
        no_open: bool,
    },
    /// Show the hired suppliers (hires missing ones with --hire).
    Suppliers {
        /// Hire suppliers now until n positions are filled.
        #[arg(long)]
        hire: bool,
    },
    /// Back up a file or folder (a new version each time); with --to OWNER:NAME, as a new version of what OWNER
    /// shares with you with write access.
    Backup {
        /// The path.
        path: PathBuf,
        /// A share that lets you write: OWNER:NAME (OWNER a contact's name or a peer id).
        #[arg(long, value_name = "OWNER:NAME")]
        to: Option<String>,
        /// Leave out paths matching PATTERN (gitignore syntax, relative to the folder; repeatable; `!PATTERN`
        /// takes one back in). `.bitdustignore` files under the folder apply too.
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
        /// Leave out the patterns in FILE, one per line (repeatable).
        #[arg(long, value_name = "FILE")]
        exclude_file: Vec<PathBuf>,
        /// Leave out the contents of folders tagged with a CACHEDIR.TAG.
        #[arg(long)]
        exclude_caches: bool,
        /// Do not descend into other file systems.
        #[arg(long)]
        one_file_system: bool,
    },
    /// List backups and versions; given NAME[@VERSION] [PATH], one folder of a version; given OWNER:NAME[@VERSION],
    /// the files of what OWNER shares with you.
    Ls {
        /// NAME[@VERSION] of yours, or OWNER:NAME[@VERSION] of a share (OWNER: a contact's name or a peer id).
        shared: Option<String>,
        /// A folder in the version (default its root).
        path: Option<String>,
    },
    /// What changed between two versions of a backup: NAME@A NAME@B.
    Diff {
        /// The older version, NAME@A.
        from: String,
        /// The newer version, NAME@B.
        to: String,
    },
    /// Find files and folders by name or path (a glob: *, ?, [...], **) in every version of every backup.
    Find {
        /// The pattern.
        pattern: String,
    },
    /// Restore NAME[@VERSION] (yours) or OWNER:NAME[@VERSION] (shared with you) into a folder.
    Restore {
        /// Backup name, optionally @VERSION; OWNER:NAME[@VERSION] for a share.
        name: String,
        /// Target folder (must be empty unless --force).
        #[arg(long)]
        to: PathBuf,
        /// Restore into a non-empty folder.
        #[arg(long)]
        force: bool,
        /// Only this file or folder of the version (relative to the backed-up folder; incremental versions).
        #[arg(long, value_name = "SUB/DIR")]
        path: Option<String>,
    },
    /// Verify the catalog on every supplier, the indexes and the trees; --read-data [PERCENT] also fetches every
    /// fragment of that share of the blocks (all without a number) and checks it.
    Check {
        /// Percent of the blocks to read back (no number: 100).
        #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100")]
        read_data: Option<f64>,
    },
    /// Backup sets the daemon runs on a schedule: add, list, remove.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCmd,
    },
    /// Delete from the suppliers every block that no kept incremental version uses (after forget).
    Prune {
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the versions of a backup that a keep policy does not keep (restic's meaning) and free their space.
    Forget {
        /// The backup.
        name: String,
        #[command(flatten)]
        keep: KeepArgs,
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
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
    /// Private messages: send one, or show a conversation.
    Msg {
        #[command(subcommand)]
        command: MsgCmd,
    },
    /// A terminal chat with a contact (or a group: `group:NAME`): lines typed are sent, incoming messages appear
    /// live; Ctrl-D ends it.
    Chat {
        /// The contact's name, or `group:NAME`.
        name: String,
    },
    /// Share a backup (every version it has, or NAME@VERSION) with a contact, a group or anyone: they list and restore
    /// it from your suppliers (`bitdust ls you:NAME`) until you revoke it.
    Share {
        /// Backup name, optionally @VERSION, optionally :PATH (a file or folder inside it, shared as a copy of that
        /// version; the grantees see it as NAME/PATH).
        name: String,
        /// Whom: a contact, `group:NAME` (every member, as the group changes), or `public` (anyone; found by
        /// `bitdust search`).
        #[arg(long)]
        with: String,
        /// A public share's title (searched too).
        #[arg(long)]
        title: Option<String>,
        /// A public share's description.
        #[arg(long)]
        description: Option<String>,
        /// A public share's keywords, separated by spaces or commas.
        #[arg(long)]
        keywords: Option<String>,
        /// The grantees may add versions (`bitdust backup PATH --to YOU:NAME`); every version is shared.
        #[arg(long, conflicts_with = "read")]
        write: bool,
        /// The grantees may only read (the default).
        #[arg(long)]
        read: bool,
    },
    /// Find public shares across the network by keyword.
    Search {
        /// Words to look for.
        #[arg(required = true)]
        words: Vec<String>,
    },
    /// What you share, and with whom.
    Shares,
    /// Revoke a share (from everyone, or --from one contact): your suppliers refuse its grants from now on. What
    /// was fetched before stays with whoever fetched it; later versions are under new keys.
    Revoke {
        /// The share's id (`bitdust shares`).
        id: String,
        /// Only this contact (a name or a peer id).
        #[arg(long)]
        from: Option<String>,
    },
    /// What others share with you (list it with `bitdust ls OWNER:NAME`, restore with `bitdust restore`).
    Shared,
    /// Group conversations: a key shared by the members, replaced on every removal.
    Group {
        #[command(subcommand)]
        command: GroupCmd,
    },
    /// The address book: list contacts (or add, remove, verify one).
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCmd>,
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
        /// Start every node but the customer (alice): its suppliers keep its records alive, so that
        /// `init --from-key` in a new home finds them.
        #[arg(long)]
        no_customer: bool,
        /// Seconds DHT records live unless published again, for new homes (default 48 hours); short values show
        /// what happens when a customer stays away past their lifetime.
        #[arg(long)]
        record_ttl_secs: Option<u64>,
        /// Back up the whole tree each time in every home (catalog format 1: customer.incremental = false in
        /// config.toml) instead of incrementally.
        #[arg(long)]
        no_incremental: bool,
    },
    /// Print the OpenAPI 3 document of the local API (what a daemon serves at /api/v1/openapi.json).
    Openapi,
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
enum MsgCmd {
    /// Send TEXT to contact NAME, end-to-end encrypted (delivered directly while it is online).
    Send {
        /// The contact's name.
        name: String,
        /// The text.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Send this file instead: the contact fetches it from this node in verified slices (a cut link resumes).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// With --file: store it on your suppliers for the contact, so you may go offline at once (done anyway when
        /// the contact does not answer).
        #[arg(long, requires = "file")]
        via_storage: bool,
    },
    /// Every conversation with its last message, the most recent first.
    Inbox,
    /// Store contacts and conversations on your suppliers now (done every 30 s anyway), so that
    /// `init --from-key` on a new device gets everything.
    Sync,
    /// The conversation with contact NAME, oldest first.
    History {
        /// The contact's name.
        name: String,
        /// The last this many messages.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// restic's keep rules, for `forget` and `schedule add`.
#[derive(clap::Args)]
struct KeepArgs {
    /// Keep the N newest versions.
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest version of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// ... of each of the last N days (UTC).
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// ... of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// ... of each of the last N months.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// ... of each of the last N years.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
}

impl From<KeepArgs> for bitdust_api::KeepRules {
    fn from(k: KeepArgs) -> Self {
        Self {
            last: k.keep_last,
            hourly: k.keep_hourly,
            daily: k.keep_daily,
            weekly: k.keep_weekly,
            monthly: k.keep_monthly,
            yearly: k.keep_yearly,
        }
    }
}

#[derive(Subcommand)]
enum ScheduleCmd {
    /// Back PATH up every interval (`30m`, `1h`, `1d`...); the first run starts now.
    Add {
        /// The folder or file.
        path: PathBuf,
        /// How often: a number and s, m, h, d or w.
        #[arg(long, value_name = "INTERVAL")]
        every: String,
        /// Leave out paths matching PATTERN (gitignore syntax; repeatable).
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
        /// Leave out the contents of folders tagged with a CACHEDIR.TAG.
        #[arg(long)]
        exclude_caches: bool,
        /// Do not descend into other file systems.
        #[arg(long)]
        one_file_system: bool,
        /// After each run, forget what these rules do not keep, then prune.
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// The backup sets, their last and next runs.
    List,
    /// Stop running backup set ID (its versions stay).
    Remove {
        /// The set's number (see `schedule list`).
        id: u32,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Create group NAME, with you as its admin (the only one who adds and removes members).
    Create {
        /// The group's name.
        name: String,
    },
    /// Add contact CONTACT to group NAME (the admin only); it reads from now on, or with --history the earlier
    /// messages too.
    Add {
        /// The group's name or id.
        name: String,
        /// The contact's name.
        contact: String,
        /// Also give the newcomer the group's earlier messages (the last 1,000, as you hold them).
        #[arg(long)]
        history: bool,
    },
    /// Remove MEMBER (a contact's name or a peer id) from group NAME (the admin only): every member replaces its
    /// key, so MEMBER cannot read what follows.
    Remove {
        /// The group's name or id.
        name: String,
        /// The member.
        member: String,
    },
    /// Leave group NAME (the admin removes you; its history stays here).
    Leave {
        /// The group's name or id.
        name: String,
    },
    /// Send TEXT to group NAME.
    Send {
        /// The group's name or id.
        name: String,
        /// The text.
        text: String,
    },
    /// Group NAME's messages, oldest first.
    History {
        /// The group's name or id.
        name: String,
        /// The last this many messages.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Group NAME's members.
    Members {
        /// The group's name or id.
        name: String,
    },
    /// Every group you are (or were) in.
    List,
}

#[derive(Subcommand)]
enum ContactsCmd {
    /// Add someone found by nickname (its signed claim in the DHT), global id (nickname@xxxxxxxx) or peer id.
    Add {
        /// Nickname, global id or peer id.
        who: String,
        /// The name to give the contact (default: its nickname).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a contact.
    Remove {
        /// The contact's name.
        name: String,
    },
    /// Show the safety number to compare with the contact out of band (looking its keys up again); with
    /// --confirm, mark it verified once the numbers match.
    Verify {
        /// The contact's name.
        name: String,
        /// The numbers match: mark the contact verified (and accept a new encryption key it carries).
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Write the secret key to FILE (mode 0600), protected by a passphrase (Argon2id, AES-256-GCM) asked twice on
    /// the terminal. Whoever holds the key (and its passphrase) can read all your data.
    Export {
        /// Where to write it (must not exist).
        file: PathBuf,
        /// Read the passphrase from the first line of FILE instead of the terminal.
        #[arg(long, value_name = "FILE", conflicts_with = "no_passphrase")]
        passphrase_file: Option<PathBuf>,
        /// Write the key unprotected (anyone who reads the file holds your identity and data).
        #[arg(long)]
        no_passphrase: bool,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    bitdust_core::parse_size(s)
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    bitdust::main_with("warn,bitdust=info", json, || run(cli));
}

fn run(cli: Cli) -> Result<()> {
    let home = Home::new(cli.home.clone().unwrap_or_else(Home::default_root));
    let j = cli.json;
    match cli.command {
        Cmd::Init { nickname, from_key, bootstrap, restore_to, api_port, passphrase_file } => {
            let key = from_key.map(|file| cmd::init::KeyFile { file, passphrase_file });
            cmd::init::run(&home, nickname, key, bootstrap, restore_to, api_port, j)
        }
        Cmd::Daemon { listen, bootstrap, supplier, donate, api_port, relay, use_relay } => {
            let opts =
                StartOptions { listen, bootstrap, api_port, quiet: false, relays: use_relay, relay_server: relay };
            let storage = Overrides { donate_bytes: if supplier { donate } else { None } };
            tokio::runtime::Runtime::new()?.block_on(cmd::daemon::run(home, opts, storage))
        }
        Cmd::Status => cmd::status::run(&home, j),
        Cmd::Forget { name, keep, dry_run } => {
            let k = bitdust_api::KeepRules::from(keep);
            let request = bitdust_api::ForgetRequest {
                keep_last: k.last,
                keep_hourly: k.hourly,
                keep_daily: k.daily,
                keep_weekly: k.weekly,
                keep_monthly: k.monthly,
                keep_yearly: k.yearly,
                dry_run,
            };
            cmd::forget::run(&home, &name, request, j)
        }
        Cmd::Ui { no_open } => cmd::ui::run(&home, no_open, j),
        Cmd::Suppliers { hire } => cmd::suppliers::list(&home, hire, j),
        Cmd::Chat { name } => cmd::chat::run(&home, &name),
        Cmd::Group { command } => match command {
            GroupCmd::Create { name } => cmd::group::create(&home, &name, j),
            GroupCmd::Add { name, contact, history } => cmd::group::add(&home, &name, &contact, history, j),
            GroupCmd::Remove { name, member } => cmd::group::remove(&home, &name, &member, j),
            GroupCmd::Leave { name } => cmd::group::leave(&home, &name, j),
            GroupCmd::Send { name, text } => cmd::group::send(&home, &name, &text, j),
            GroupCmd::History { name, limit } => cmd::group::history(&home, &name, limit, j),
            GroupCmd::Members { name } => cmd::group::members(&home, &name, j),
            GroupCmd::List => cmd::group::list(&home, j),
        },
        Cmd::Msg { command } => match command {
            MsgCmd::Send { name, text, file, via_storage } => cmd::msg::send(&home, &name, text, file, via_storage, j),
            MsgCmd::History { name, limit } => cmd::msg::history(&home, &name, limit, j),
            MsgCmd::Inbox => cmd::msg::inbox(&home, j),
            MsgCmd::Sync => cmd::msg::sync(&home, j),
        },
        Cmd::Contacts { command } => match command {
            None => cmd::contacts::list(&home, j),
            Some(ContactsCmd::Add { who, name }) => cmd::contacts::add(&home, &who, name, j),
            Some(ContactsCmd::Remove { name }) => cmd::contacts::remove(&home, &name, j),
            Some(ContactsCmd::Verify { name, confirm }) => cmd::contacts::verify(&home, &name, confirm, j),
        },
        Cmd::Backup { path, to: None, exclude, exclude_file, exclude_caches, one_file_system } => {
            let excludes = cmd::backup::Excludes {
                patterns: exclude,
                files: exclude_file,
                caches: exclude_caches,
                one_file_system,
            };
            cmd::backup::run(&home, &path, excludes, j)
        }
        Cmd::Backup { path, to: Some(spec), .. } => match cmd::share::split_owner(&spec)? {
            Some((owner, name, None)) => cmd::share::write(&home, &owner, &name, &path, j),
            _ => anyhow::bail!("--to takes OWNER:NAME (a share that lets you write), got {spec:?}"),
        },
        Cmd::Ls { shared: None, .. } => cmd::ls::run(&home, j),
        Cmd::Ls { shared: Some(spec), path } => match cmd::share::split_owner(&spec)? {
            Some((owner, name, version)) => cmd::share::ls(&home, &owner, &name, version, j),
            None => cmd::ls::folder(&home, &spec, path.as_deref().unwrap_or(""), j),
        },
        Cmd::Diff { from, to } => cmd::ls::diff(&home, &from, &to, j),
        Cmd::Find { pattern } => cmd::ls::find(&home, &pattern, j),
        Cmd::Restore { name, to, force, path } => match cmd::share::split_owner(&name)? {
            Some((owner, backup, version)) => cmd::share::restore(&home, &owner, &backup, version, &to, force, j),
            None => cmd::restore::run(&home, &name, path, &to, force, j),
        },
        Cmd::Prune { dry_run } => cmd::prune::run(&home, dry_run, j),
        Cmd::Check { read_data } => cmd::prune::check(&home, read_data, j),
        Cmd::Schedule { command } => match command {
            ScheduleCmd::Add { path, every, exclude, exclude_caches, one_file_system, keep } => {
                cmd::schedule::add(&home, &path, &every, exclude, exclude_caches, one_file_system, keep.into(), j)
            }
            ScheduleCmd::List => cmd::schedule::list(&home, j),
            ScheduleCmd::Remove { id } => cmd::schedule::remove(&home, id, j),
        },
        Cmd::Share { name, with, title, description, keywords, write, read: _ } => {
            let described = cmd::share::Described { title, description, keywords, write };
            cmd::share::share(&home, &name, &with, described, j)
        }
        Cmd::Search { words } => cmd::share::search(&home, &words, j),
        Cmd::Shares => cmd::share::shares(&home, j),
        Cmd::Revoke { id, from } => cmd::share::revoke(&home, &id, from, j),
        Cmd::Shared => cmd::share::shared(&home, j),
        Cmd::Automata { diagram: Some(kind), dot } => cmd::automata::diagram(&kind, dot, j),
        Cmd::Automata { diagram: None, .. } => cmd::automata::list(&home, j),
        Cmd::Health => cmd::health::run(&home, j),
        Cmd::Supplier { command: SupplierCmd::Replace { position } } => cmd::suppliers::replace(&home, position, j),
        Cmd::Key { command: KeyCmd::Export { file, passphrase_file, no_passphrase } } => {
            let protection = match (no_passphrase, passphrase_file) {
                (true, _) => cmd::key::Protection::None,
                (false, Some(f)) => cmd::key::Protection::File(f),
                (false, None) => cmd::key::Protection::Ask,
            };
            cmd::key::export(&home, &file, protection, j)
        }
        Cmd::Openapi => cmd::openapi::run(),
        Cmd::Devnet {
            dir,
            suppliers,
            data_shards,
            spares,
            transports,
            no_customer,
            record_ttl_secs,
            no_incremental,
        } => {
            let options = devnet::DevnetOptions {
                data_shards,
                transports,
                customer: !no_customer,
                record_ttl_secs,
                incremental: !no_incremental,
                ..devnet::DevnetOptions::new(suppliers, spares)
            };
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
