//! # bitdust-api
//!
//! The local API v1 as types: every request and response body the daemon serves under `/api/v1/` and the CLI
//! (and later the web UI) reads, the event log's entries, and the error body. The daemon and the CLI share them,
//! so nothing is built or read back by string keys; each type derives its OpenAPI 3 schema (utoipa), and the
//! daemon serves the whole document at `/api/v1/openapi.json` (a checked-in copy is `docs/openapi.json`).
//!
//! Errors: any failed request answers [`ErrorBody`] with the status of its kind (400 bad input, 401 missing or
//! wrong token, 404 unknown backup, version, job or path, 405 a path that does not take the method, 409
//! conflicting state, 503 too few suppliers or the network not ready, 500 our own failure).
//!
//! ```
//! use bitdust_api::{JobState, JobStarted};
//! let started: JobStarted = serde_json::from_str(r#"{"job": 3, "event_id": 17}"#).unwrap();
//! assert_eq!((started.job, started.event_id), (3, 17));
//! assert_eq!(serde_json::to_string(&JobState::Running).unwrap(), r#""running""#);
//! ```

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The runtime

/// `GET /api/v1/status`: the node, and each wing's section.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The runtime's part (its fields are at the top level of the JSON object).
    #[serde(flatten)]
    pub node: NodeStatus,
    /// The storage wing's part.
    pub storage: Option<StorageStatus>,
}

/// The runtime's part of the status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeStatus {
    /// Peer id.
    pub peer_id: String,
    /// `nickname@short peer id`.
    pub global_id: String,
    /// Nickname.
    pub nickname: String,
    /// Identity revision.
    pub identity_revision: u64,
    /// Listen addresses, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<String>,
    /// Peers connected now.
    pub connected_peers: usize,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// Whether the identity record is in the DHT.
    pub announced: bool,
    /// AutoNAT's verdict.
    pub reachability: Reachability,
    /// Relays holding a reservation for us (peer ids).
    pub relays: Vec<String>,
    /// Whether this node serves as a relay.
    pub relay_server: bool,
    /// Open connections.
    pub connections: Vec<Connection>,
}

/// Whether others can dial this node directly (AutoNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// Dialable from the internet.
    Public,
    /// Behind NAT: reachable through a relay.
    Private,
    /// Not known yet.
    Unknown,
}

/// One open connection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    /// Remote peer id.
    pub peer_id: String,
    /// Remote address (for an inbound relayed one, our relayed listen address).
    pub address: String,
    /// Whether it goes through a relay.
    pub relayed: bool,
}

/// `GET /api/v1/identity`: the signed identity document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Identity {
    /// `nickname@short peer id`.
    pub global_id: String,
    /// Nickname.
    pub nickname: String,
    /// Peer id (the Ed25519 identity key).
    pub peer_id: String,
    /// Revision.
    pub revision: u64,
    /// Addresses.
    pub addresses: Vec<String>,
    /// X25519 public key, hex.
    pub encryption_key: String,
    /// The encoded, signed document, hex.
    pub document_hex: String,
}

/// `GET /api/v1/automata`: every automaton instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Automata {
    /// By name.
    pub automata: Vec<AutomatonInfo>,
}

/// One automaton instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomatonInfo {
    /// Instance name, e.g. `supplier_connection/2`.
    pub name: String,
    /// Kind (its diagram: `bitdust automata --diagram KIND`).
    pub kind: String,
    /// Current state.
    pub state: String,
    /// Unix milliseconds when the state was entered.
    pub since_unix_ms: u64,
    /// Kind-specific details (an object of scalars: position, peer id, counters).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /api/v1/automata/kinds`: every automaton kind the node runs (the runtime's and its wings'), with its
/// transition table, so a client can draw the diagrams and highlight the states instances are in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutomatonKinds {
    /// By name.
    pub kinds: Vec<AutomatonKind>,
}

/// One automaton kind.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutomatonKind {
    /// Name (the `kind` of its instances).
    pub name: String,
    /// Its transitions.
    pub transitions: Vec<Transition>,
    /// Its diagram, Mermaid `stateDiagram-v2`.
    pub mermaid: String,
}

/// One edge of an automaton's diagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// State before.
    pub from: String,
    /// Event or condition.
    pub event: String,
    /// State after.
    pub to: String,
}

/// A long-running operation (`GET /api/v1/jobs/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// `backup` or `restore`.
    pub kind: String,
    /// What it works on (a path, `NAME@VERSION`).
    pub target: String,
    /// State.
    pub state: JobState,
    /// Bytes processed so far.
    pub done_bytes: u64,
    /// Bytes in all (0 until known).
    pub total_bytes: u64,
    /// Of `done_bytes`, those a backup had to store (the rest were found in earlier versions: deduplicated).
    #[serde(default)]
    pub new_bytes: u64,
    /// The result, once done.
    pub result: Option<JobResult>,
    /// The error, once failed.
    pub error: Option<String>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Working.
    Running,
    /// Ended well; `result` holds what it did.
    Done,
    /// Ended with `error`.
    Failed,
}

/// What a job did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum JobResult {
    /// A backup.
    Backup(BackupReport),
    /// A restore.
    Restore(RestoreReport),
}

/// The answer to a request that starts a job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct JobStarted {
    /// The job's id.
    pub job: u64,
    /// The id of the event that announced it: follow `GET /api/v1/events?since=` this minus one for its progress.
    pub event_id: u64,
}

/// `GET /api/v1/proof?nonce=HEX`: the daemon's proof that it knows the token (see `bitdust_node::http::token_proof`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Proof {
    /// Keyed BLAKE3 of the nonce under a key derived from the token, hex.
    pub proof: String,
}

/// `POST /api/v1/ui/login`: a one-time link that opens a web UI session in a browser.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UiLogin {
    /// `http://127.0.0.1:PORT/ui/login?code=CODE`; works once.
    pub url: String,
    /// Seconds it works for.
    pub expires_in_s: u64,
}

/// `POST /api/v1/ui/logout`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct UiLogout {
    /// Whether the request came with a live session, now ended.
    pub ended: bool,
}

/// `GET /api/v1/config`: the node's settings, as the file `config.toml` holds them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigText {
    /// The file's path on this node.
    pub file: String,
    /// Its TOML text (every field, defaults included).
    pub toml: String,
}

/// `PUT /api/v1/config`: new settings, checked by the runtime and every wing before they are written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigUpdate {
    /// The whole file's TOML text (at most 64 KiB).
    #[schema(max_length = 65536)]
    pub toml: String,
}

/// `PUT /api/v1/config`: what was written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigSaved {
    /// The file's path on this node.
    pub file: String,
    /// Always true: settings take effect when the daemon starts again.
    pub restart_needed: bool,
}

/// `POST /api/v1/key/export`: write the secret key, sealed under a passphrase, to a new file on this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyExportRequest {
    /// An absolute path on this node that does not exist yet.
    pub file: String,
    /// The passphrase that seals it (Argon2id, AES-256-GCM); at least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub passphrase: String,
}

/// `POST /api/v1/key/export`: what was written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyExported {
    /// The file written (mode 0600).
    pub file: String,
    /// Whose key it is.
    pub peer_id: String,
}

/// `POST /api/v1/shutdown`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Stopping {
    /// Always true: the daemon stops after answering.
    pub stopping: bool,
}

// ---------------------------------------------------------------------------------------------------------------
// Events

/// `GET /api/v1/events?since=ID&timeout_ms=N`: the events after `since`, in id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Events {
    /// Events with ids above `since` (at most a page). Ids rise by one: a jump means the client fell behind the
    /// bounded buffer and missed events.
    pub events: Vec<Event>,
    /// The newest id the node has given (ask `since` this next).
    pub last_id: u64,
}

/// One entry of the node's event log (the model is Syncthing's events API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Rising by one per event.
    pub id: u64,
    /// Unix milliseconds.
    pub time_unix_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A job started.
    JobStarted {
        /// Job id.
        job: u64,
        /// `backup` or `restore`.
        kind: String,
        /// What it works on.
        target: String,
    },
    /// A job moved on (at most a few per second per job).
    JobProgress {
        /// Job id.
        job: u64,
        /// Bytes processed so far.
        done_bytes: u64,
        /// Bytes in all (0 until known).
        total_bytes: u64,
        /// Of `done_bytes`, those a backup had to store (the rest were deduplicated).
        #[serde(default)]
        new_bytes: u64,
    },
    /// A job ended.
    JobEnded {
        /// Job id.
        job: u64,
        /// `done` or `failed`.
        state: JobState,
    },
    /// An automaton entered a state (or appeared).
    AutomatonChanged {
        /// Instance name.
        name: String,
        /// Kind.
        kind: String,
        /// The state entered.
        state: String,
    },
    /// The storage wing's health changed: blocks queued for rebuilding, positions whose supplier is down.
    HealthChanged {
        /// Blocks in the rebuild queue.
        queued_blocks: u64,
        /// Positions whose supplier is offline, refused or fired.
        down_positions: Vec<u16>,
    },
    /// A private message was stored here (received or written) or changed state; its text is in the conversation
    /// (`GET /api/v1/messages/{contact}`), not in the event log.
    Message {
        /// The contact's name, or the sender's peer id if it is not a contact.
        contact: String,
        /// The peer id.
        peer: String,
        /// Whether we wrote it.
        outgoing: bool,
        /// The message id (hex).
        message_id: String,
        /// `sent`, `delivered` or `received`.
        state: String,
    },
}

// ---------------------------------------------------------------------------------------------------------------
// The storage wing

/// The storage wing's part of the status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorageStatus {
    /// Whether the supplier role is on.
    pub supplier: bool,
    /// Donated space, bytes.
    pub donated_bytes: u64,
    /// Bytes stored for customers.
    pub stored_bytes: u64,
    /// Customers served.
    pub customers: usize,
    /// Suppliers hired.
    pub suppliers_hired: usize,
    /// Suppliers wanted (n).
    pub suppliers_wanted: u16,
    /// Backups in the catalog.
    pub backups: usize,
    /// Catalog revision.
    pub catalog_revision: u64,
    /// The backup sets the daemon runs, with their last and next runs.
    #[serde(default)]
    pub backup_sets: Vec<BackupSet>,
}

/// `POST /api/v1/schedules`: a backup set the daemon runs every `every_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRequest {
    /// Absolute path of the folder or file (it must exist now).
    pub path: String,
    /// Seconds between runs (at least 60).
    #[schema(minimum = 60)]
    pub every_secs: u64,
    /// Patterns to leave out (gitignore syntax, as `backup --exclude`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Leave out folders tagged with `CACHEDIR.TAG`.
    #[serde(default)]
    pub exclude_caches: bool,
    /// Stay on the path's file system.
    #[serde(default)]
    pub one_file_system: bool,
    /// After each run, forget what this keeps not (restic's meaning; none given: every version stays), then
    /// prune.
    #[serde(default)]
    pub keep: KeepRules,
}

/// Keep rules (`--keep-last N` ...), restic's meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeepRules {
    /// The N newest.
    pub last: Option<u32>,
    /// The newest of each of the last N hours.
    pub hourly: Option<u32>,
    /// ... days.
    pub daily: Option<u32>,
    /// ... ISO weeks.
    pub weekly: Option<u32>,
    /// ... months.
    pub monthly: Option<u32>,
    /// ... years.
    pub yearly: Option<u32>,
}

impl KeepRules {
    /// Whether no rule keeps anything (then nothing is forgotten).
    pub fn is_empty(&self) -> bool {
        [self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly].iter().all(|n| n.unwrap_or(0) == 0)
    }
}

/// A backup set and how its runs went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupSet {
    /// Its number.
    pub id: u32,
    /// What it backs up and how often.
    pub request: ScheduleRequest,
    /// When the last run ended (Unix seconds).
    pub last_run_unix: Option<u64>,
    /// What the last run did (`NAME@VERSION ...`) or why it failed.
    pub last_result: Option<String>,
    /// Whether the last run failed.
    pub last_failed: bool,
    /// When the next run is due (Unix seconds): a run missed while the machine slept runs once when it wakes.
    pub next_run_unix: u64,
    /// Whether a run is going on now (one at a time per set).
    pub running: bool,
}

/// `GET /api/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupSets {
    /// The sets, by id.
    pub sets: Vec<BackupSet>,
}

/// `GET /api/v1/suppliers`, `POST /api/v1/suppliers/hire`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Suppliers {
    /// Positions wanted (n).
    pub wanted: u16,
    /// Hired, by position.
    pub suppliers: Vec<Supplier>,
}

/// One hired supplier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Supplier {
    /// Position (shard index).
    pub position: u16,
    /// Peer id.
    pub peer_id: String,
    /// Whether a connection to it is open now.
    pub connected: bool,
    /// Its supplier connection automaton's state.
    pub state: Option<String>,
    /// Bytes it last said it holds for us.
    pub held_bytes: Option<u64>,
    /// Fragments it last said it holds for us.
    pub held_fragments: Option<u64>,
    /// Needed space of the contract, bytes.
    pub needed_bytes: Option<u64>,
    /// Contract start, Unix seconds.
    pub contract_start_unix: Option<u64>,
    /// When hired, Unix seconds.
    pub hired_unix: u64,
}

/// `POST /api/v1/suppliers/{position}/replace`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Replacing {
    /// The position being replaced.
    pub replacing: u16,
}

/// `GET /api/v1/backups`: backups and their versions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Backups {
    /// Catalog revision.
    pub revision: u64,
    /// Backups, by name.
    pub backups: Vec<BackupInfo>,
}

/// One backup (one source path).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupInfo {
    /// Name.
    pub name: String,
    /// The source path (lossy UTF-8).
    pub source: String,
    /// Versions, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// One version of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// Number (1, 2, ...).
    pub version: u32,
    /// When made, Unix seconds.
    pub created_unix: u64,
    /// Files.
    pub files: usize,
    /// Entries (files, folders, symlinks).
    pub entries: usize,
    /// Bytes of file contents.
    pub bytes: u64,
    /// Bytes stored on suppliers, all fragments.
    pub stored_bytes: u64,
    /// Blocks.
    pub blocks: usize,
    /// The ecc layout, `RS(k, n)`.
    pub layout: String,
}

/// `POST /api/v1/backups`: back up a path (a new version).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BackupRequest {
    /// Absolute path of a file or folder.
    pub path: String,
    /// Paths to leave out, gitignore syntax, relative to the folder (`!pattern` takes one back in); besides these,
    /// every `.bitdustignore` file under the folder applies to its own folder and below.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Leave out the contents of folders tagged with a valid `CACHEDIR.TAG`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude_caches: bool,
    /// Do not descend into other file systems.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_file_system: bool,
}

/// `POST /api/v1/backups/{name}/forget`: which versions to keep (restic's `forget` policy; at least one rule).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ForgetRequest {
    /// Keep the N newest versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest version of each of the last N hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    /// ... of each of the last N days (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// ... of each of the last N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// ... of each of the last N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// ... of each of the last N years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    /// Only say what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// A version `forget` keeps, and the rules that keep it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeptVersion {
    /// The version.
    pub version: u32,
    /// When it was made, Unix seconds.
    pub created_unix: u64,
    /// `last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`.
    pub reasons: Vec<String>,
}

/// What `forget` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ForgetReport {
    /// The backup.
    pub backup: String,
    /// Kept, newest first.
    pub kept: Vec<KeptVersion>,
    /// Removed, newest first.
    pub removed: Vec<u32>,
    /// Bytes the removed versions held on the suppliers (fragments, all positions).
    pub freed_bytes: u64,
    /// Fragments the suppliers confirmed deleted (the rest go when their contracts end).
    pub fragments_deleted: usize,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// `POST /api/v1/prune`: delete from the suppliers what no kept version uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PruneRequest {
    /// Only say what would be deleted (default false). An option, not a defaulted bool, so that a JSON array is
    /// refused as a body (serde reads a struct of defaulted fields from `[]`).
    pub dry_run: Option<bool>,
}

/// What `prune` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PruneReport {
    /// Incremental versions whose trees were walked (every chunk they use is kept).
    pub versions: usize,
    /// Distinct chunks they use.
    pub used_chunks: u64,
    /// Blocks (packs) deleted: none of their chunks is used.
    pub blocks_deleted: usize,
    /// Blocks repacked: more than 5% of their bytes unused; their used chunks moved into new blocks.
    pub blocks_repacked: usize,
    /// Sealed bytes moved by repacking.
    pub repacked_bytes: u64,
    /// Blocks kept.
    pub blocks_kept: usize,
    /// Bytes freed on the suppliers (fragments, all positions): the deleted and repacked blocks', less the new
    /// blocks repacking wrote.
    pub freed_bytes: u64,
    /// Sealed bytes in kept blocks that no version uses (blocks under the repack threshold, or holding an index).
    pub unused_bytes_kept: u64,
    /// Fragments the suppliers confirmed deleted (the rest go when their contracts end).
    pub fragments_deleted: usize,
    /// Seconds it took.
    pub seconds: f64,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// `POST /api/v1/check`: verify the catalog, the indexes and the trees; optionally read fragments back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CheckRequest {
    /// Also fetch every fragment of this share of the blocks (0 to 100, percent) and check each against its hash.
    #[schema(minimum = 0.0, maximum = 100.0)]
    pub read_data_percent: Option<f64>,
}

/// What `check` found. Each problem list holds at most 100 lines.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckReport {
    /// The local catalog's revision.
    pub revision: u64,
    /// Suppliers holding the catalog at this revision.
    pub catalog_copies_ok: usize,
    /// Suppliers whose copy is missing, older or unreadable.
    pub catalog_problems: Vec<String>,
    /// Index objects read back from the suppliers.
    pub index_objects: usize,
    /// Their entries.
    pub index_entries: u64,
    /// Entries pointing outside their set or block, or disagreeing with this device's chunk index.
    pub index_problems: Vec<String>,
    /// Incremental versions whose trees were walked.
    pub versions: usize,
    /// Distinct trees read.
    pub trees: usize,
    /// Distinct chunks the versions use.
    pub chunks_used: u64,
    /// Chunks a version uses that no index places (they cannot be restored).
    pub missing_chunks: Vec<String>,
    /// Blocks on the suppliers (all versions).
    pub blocks: usize,
    /// Blocks whose every fragment was fetched (`read_data_percent`).
    pub blocks_read: usize,
    /// Fragments fetched.
    pub fragments_read: u64,
    /// Fragments missing, unreachable or not matching their hash.
    pub fragments_bad: Vec<String>,
    /// Whether nothing was found wrong.
    pub ok: bool,
    /// Seconds it took.
    pub seconds: f64,
}

/// `POST /api/v1/restores`: restore a version into a folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreRequest {
    /// Backup name.
    pub name: String,
    /// Version (default the latest).
    pub version: Option<u32>,
    /// Absolute target folder (must be empty unless `force`).
    pub to: String,
    /// Restore into a non-empty folder.
    #[serde(default)]
    pub force: bool,
    /// Only this file or folder of the version (relative to its root; incremental versions only).
    #[serde(default)]
    pub path: Option<String>,
}

/// What a backup did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupReport {
    /// Backup name.
    pub name: String,
    /// The version made.
    pub version: u32,
    /// Files.
    pub files: usize,
    /// Folders.
    pub folders: usize,
    /// Symlinks.
    pub symlinks: usize,
    /// Bytes of file contents.
    pub bytes: u64,
    /// Bytes stored on suppliers.
    pub stored_bytes: u64,
    /// Blocks.
    pub blocks: usize,
    /// The ecc layout, `RS(k, n)`.
    pub layout: String,
    /// Seconds taken.
    pub seconds: f64,
    /// Paths skipped (special files).
    pub skipped: Vec<String>,
    /// Paths that changed while read.
    pub changed: Vec<String>,
    /// Paths left out by the excludes (a folder counts once, with everything in it).
    #[serde(default)]
    pub excluded: u64,
    /// Incremental backups: bytes of content not stored before (the rest was deduplicated); a full backup sends
    /// all of `bytes`.
    #[serde(default)]
    pub new_bytes: u64,
    /// Incremental backups: files taken from the previous version without being read (size, mtime, ctime and
    /// inode unchanged).
    #[serde(default)]
    pub unchanged_files: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreReport {
    /// Backup name.
    pub name: String,
    /// Version restored.
    pub version: u32,
    /// Target folder.
    pub target: String,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Fragments that were missing, unreachable or corrupt (others were used instead).
    pub fragments_failed: u64,
    /// Files that could not be restored (more than n - k fragments of a block lost).
    pub lost_files: Vec<String>,
}

/// `GET /api/v1/health`: per version, and the rebuild queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Every version.
    pub versions: Vec<VersionHealth>,
    /// Blocks queued for rebuilding.
    pub rebuild_queue_blocks: usize,
    /// Fragments queued for rebuilding.
    pub rebuild_queue_fragments: usize,
    /// Every position's supplier and its audits.
    pub positions: Vec<PositionHealth>,
}

/// One position's supplier as audits see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PositionHealth {
    /// Position (shard index).
    pub position: u16,
    /// The supplier's peer id.
    pub peer_id: String,
    /// Its supplier connection automaton's state.
    pub state: String,
    /// Whether its fragments count as held: not down, and its last audit did not fail.
    pub healthy: bool,
    /// Audits it passed since it was hired (or since this node started).
    pub audits_passed: u64,
    /// Audits failed since its last pass (at `audit_failures_to_fire` in a row it is replaced).
    pub failing_audits: u32,
    /// When it last passed an audit, Unix milliseconds (`None`: not since this node started).
    pub last_audit_passed_unix_ms: Option<u64>,
    /// Why its last audit failed, while it fails.
    pub last_audit_error: Option<String>,
}

/// Health of one version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionHealth {
    /// Backup name.
    pub name: String,
    /// Version number.
    pub version: u32,
    /// Blocks in all.
    pub blocks: usize,
    /// Blocks with all n fragments.
    pub full: usize,
    /// Blocks missing some fragments but restorable.
    pub degraded: usize,
    /// The fewest further losses any degraded block can take.
    pub can_still_lose: u16,
    /// Blocks that cannot be restored.
    pub lost: usize,
    /// Files that can no longer be restored.
    pub lost_files: Vec<String>,
}

/// `GET /api/v1/store`: what this node stores as a supplier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoreUsage {
    /// Whether the supplier role is on.
    pub supplier: bool,
    /// Per customer.
    pub customers: Vec<CustomerUsage>,
}

/// What one customer stores here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerUsage {
    /// Customer peer id.
    pub customer: String,
    /// The position the customer gave this supplier.
    pub position: u16,
    /// Bytes stored: fragments, the sealed catalog and the records held for it.
    pub used_bytes: u64,
    /// Fragments stored.
    pub fragments: u64,
    /// Needed space of its contract, bytes.
    pub needed_bytes: u64,
    /// Unix seconds when its contract ends, or ended (its data is freed a grace period after).
    pub contract_ends_unix: u64,
}

/// One contact (`GET /api/v1/contacts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactInfo {
    /// The user's name for it.
    pub name: String,
    /// Its peer id (the identity key it is pinned to).
    pub peer_id: String,
    /// `nickname@short peer id`.
    pub global_id: String,
    /// Its nickname.
    pub nickname: String,
    /// Whether the user confirmed the safety number.
    pub verified: bool,
    /// When it was added, Unix seconds.
    pub added_unix: u64,
    /// A key change seen since it was added (never accepted silently), for people; absent if none.
    pub key_change: Option<String>,
    /// Whether it is online (it answered the last presence question, asked every minute, or wrote since); absent
    /// until asked.
    pub online: Option<bool>,
    /// When it was last heard from, Unix seconds; absent if never.
    pub last_seen_unix: Option<u64>,
}

/// `GET /api/v1/contacts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Contacts {
    /// The contacts, in the order they were added.
    pub contacts: Vec<ContactInfo>,
}

/// `POST /api/v1/contacts`: whom to add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddContact {
    /// A nickname, a global id (`nickname@xxxxxxxx`) or a peer id.
    pub who: String,
    /// The name to give it (default: its nickname).
    pub name: Option<String>,
}

/// `GET /api/v1/contacts/{name}/verify` (the numbers to compare) and `POST` (confirm them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SafetyNumber {
    /// The contact.
    pub contact: ContactInfo,
    /// 60 digits in 12 groups of 5: equal on both sides means each holds the other's real key.
    pub safety_number: String,
}

/// `POST /api/v1/messages`: a text to a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendMessage {
    /// The contact's name.
    pub to: String,
    /// The text (at most 16 KiB of UTF-8); empty with `file`.
    #[serde(default)]
    pub text: String,
    /// An absolute path of a file on this node to send instead of text: the contact fetches it from this node
    /// (verified slices; a cut link resumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// With `file`: store it on this node's suppliers for the contact ("send through storage"), so this node may
    /// go offline at once (done anyway when the contact does not answer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_storage: bool,
}

/// A file sent or received in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// `offered` (sender), `receiving`, `received` or `failed` (recipient).
    pub state: String,
    /// Bytes received and verified so far.
    pub received_bytes: u64,
    /// Where it is on this node (the sender's file; the recipient's once received).
    pub path: String,
    /// Why it failed (with `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageInfo {
    /// Whether we wrote it.
    pub outgoing: bool,
    /// Its id (hex).
    pub id: String,
    /// The writer's sequence number in the conversation.
    pub seq: u64,
    /// When the writer wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// When it was stored here, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The text.
    pub text: String,
    /// `sent` (stored here, not acknowledged), `stored` (left in the recipient's mailboxes: it was offline),
    /// `delivered` (the recipient stored it), `read` (the recipient showed it; for a received message: shown here)
    /// or `received`.
    pub state: String,
    /// Mailboxes it was left in (with `stored`).
    pub mailboxes: u8,
    /// The file it offers, if it is a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
}

/// `GET /api/v1/messages/{name}`: the conversation with a contact, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// The contact's name.
    pub contact: String,
    /// The messages, oldest first (the last `limit`).
    pub messages: Vec<MessageInfo>,
}

/// One conversation in the inbox (`GET /api/v1/inbox`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxEntry {
    /// The contact's name, or the peer id of a sender who is not a contact.
    pub contact: String,
    /// Whether the peer is in the address book.
    pub is_contact: bool,
    /// Messages in the conversation.
    pub messages: u64,
    /// The last message.
    pub last: Option<MessageInfo>,
}

/// `GET /api/v1/inbox`: every conversation, the most recent first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inbox {
    /// The conversations.
    pub conversations: Vec<InboxEntry>,
}

/// `POST /api/v1/messages/{name}/read`: the messages received from the contact were shown; a read receipt goes
/// back to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MarkedRead {
    /// Messages newly marked read.
    pub marked: u64,
}

/// `POST /api/v1/history/sync`: what changed in contacts and conversations went to the user's suppliers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistorySync {
    /// Whether there was anything to store (false: the suppliers already had everything).
    pub stored: bool,
}

/// `POST /api/v1/uploads?name=NAME` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name (`/`, `\\` and NUL become `_`, a leading `.` too; cut to 200 bytes).
    #[param(min_length = 1, max_length = 255)]
    pub name: String,
}

/// `POST /api/v1/uploads`: a file the browser gave, now on this node (to send with [`SendMessage::file`]).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    /// Its absolute path on this node.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `GET /api/v1/messages/{name}` and `GET /api/v1/groups/{name}/messages` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The last this many messages (default 100, at most 10,000).
    #[param(minimum = 0, maximum = 10000)]
    pub limit: Option<u32>,
}

/// `POST /api/v1/groups`: a new group with this node as its admin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGroup {
    /// Its name (1 to 64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

/// `POST /api/v1/groups/{name}/members`: a contact to add (the admin only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddMember {
    /// The contact's name.
    pub contact: String,
    /// Also give the newcomer the group's earlier messages (the last 1,000, as the admin holds them); without, it
    /// reads from its join.
    #[serde(default)]
    pub history: bool,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupMemberInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Its name in our address book, if it is a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Whether it is the group's admin.
    pub admin: bool,
    /// Whether it is this node.
    pub me: bool,
}

/// A group as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupInfo {
    /// Its id (hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The roster revision held (one more at each add or removal).
    pub revision: u64,
    /// Whether we are a member (false once removed or left: the history stays).
    pub active: bool,
    /// The members.
    pub members: Vec<GroupMemberInfo>,
}

/// `GET /api/v1/groups`: every group held, current and left.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Groups {
    /// The groups.
    pub groups: Vec<GroupInfo>,
}

/// `POST /api/v1/groups/{name}/messages`: a text to a group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendGroupMessage {
    /// The text (at most 16 KiB of UTF-8).
    pub text: String,
}

/// One message of a group's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupMessageInfo {
    /// Its id (hex).
    pub id: String,
    /// Whether we wrote it.
    pub outgoing: bool,
    /// The writer's peer id.
    pub from: String,
    /// The writer's name in our address book, if it is a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_contact: Option<String>,
    /// When the writer wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// When it was stored here, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The text.
    pub text: String,
}

/// The answer to `POST /api/v1/groups/{name}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupSentInfo {
    /// The message.
    pub message: GroupMessageInfo,
    /// Members it was delivered to directly.
    pub delivered: u32,
    /// Members it was left for in their mailboxes (they were offline).
    pub stored: u32,
    /// Members reached neither way.
    pub missed: u32,
}

/// `GET /api/v1/groups/{name}/messages`: a group's history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupConversation {
    /// The group.
    pub group: GroupInfo,
    /// The messages, oldest first (the last `limit`).
    pub messages: Vec<GroupMessageInfo>,
}

/// An optional version number in a JSON body, taken as JSON Schema's integers are: `3` and `3.0` alike (a whole
/// number written as a float is an integer there); a fraction, a negative or one over `u32::MAX` is refused.
mod whole_version {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let Some(n) = Option::<f64>::deserialize(d)? else { return Ok(None) };
        if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
            return Err(serde::de::Error::custom(format!("version {n} is not a whole number from 0 to {}", u32::MAX)));
        }
        Ok(Some(n as u32))
    }
}

/// `POST /api/v1/shares`: share a backup (all its versions, or one) with a contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareRequest {
    /// The backup's name.
    pub backup: String,
    /// One version (default: every version it has now).
    #[serde(default, deserialize_with = "whole_version::deserialize")]
    pub version: Option<u32>,
    /// Whom: a contact's name, `group:NAME` (every member, as the group changes) or `public` (anyone; listed in
    /// the search index).
    pub with: String,
    /// A public share's title (searched too).
    #[serde(default)]
    pub title: Option<String>,
    /// A public share's description.
    #[serde(default)]
    pub description: Option<String>,
    /// A public share's keywords, separated by spaces or commas (at most 16 of 2-32 letters, digits or `-`).
    #[serde(default)]
    pub keywords: Option<String>,
    /// The grantees may add versions (a contact or a group; every version, no `version`, no `path`).
    #[serde(default)]
    pub write: bool,
    /// Only this file or folder of the backup (`/`-separated, relative to its root): a copy of that version (the
    /// latest if no `version`) holding nothing else, which the grantees see as `NAME/PATH`.
    #[serde(default)]
    pub path: Option<String>,
}

/// A version a grantee added to a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContributionInfo {
    /// The version it became.
    pub version: u32,
    /// Its author's peer id.
    pub author: String,
    /// Its author's contact name, if a contact.
    pub author_name: Option<String>,
    /// When it was taken, Unix seconds.
    pub at_unix: u64,
}

/// `POST /api/v1/shared/write`: add a file or folder as a new version of a share that lets you write.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedWriteRequest {
    /// The owner: a contact's name or a peer id.
    pub owner: String,
    /// The backup's name.
    pub backup: String,
    /// Absolute path of the file or folder.
    pub path: String,
}

/// What a write to a share did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedWriteReport {
    /// The owner's peer id.
    pub owner: String,
    /// The backup's name.
    pub backup: String,
    /// Seconds until the owner took it (it then fetches the version and gives the share again to its grantees).
    pub seconds: f64,
}

/// `GET /api/v1/search?q=WORDS` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to look for (at most 8 are used).
    pub q: String,
}

/// One public share found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// The publisher's peer id (`bitdust ls PEER:BACKUP` lists it).
    pub owner: String,
    /// The publisher's contact name, if it is a contact.
    pub owner_name: Option<String>,
    /// The share's id (hex).
    pub id: String,
    /// The backup's name.
    pub backup: String,
    /// The version shared (none: every version it had).
    pub version: Option<u32>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Query words it matches.
    pub score: usize,
    /// When published, Unix seconds.
    pub published_unix: u64,
}

/// `GET /api/v1/search`: public shares matching the words, best first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// The words looked for.
    pub words: Vec<String>,
    /// Publishers asked.
    pub providers: usize,
    /// Entries refused (not signed by the publisher that listed them, or malformed).
    pub refused: usize,
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// Seconds the search took.
    pub seconds: f64,
}

/// Someone a share is given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShareGrantee {
    /// Its peer id.
    pub peer: String,
    /// Its contact name, if it is a contact.
    pub name: Option<String>,
    /// Whether its access was revoked.
    pub revoked: bool,
    /// Whether the share's keys reached it (directly or through its mailboxes).
    pub delivered: bool,
}

/// One share this node made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareInfo {
    /// Its id (hex), what `revoke` names.
    pub id: String,
    /// The backup shared.
    pub backup: String,
    /// The version shared (none: every version the backup had when shared).
    pub version: Option<u32>,
    /// Whom, as asked (`bob`).
    pub with: String,
    /// Everyone it was given to.
    pub grantees: Vec<ShareGrantee>,
    /// When it was made, Unix seconds.
    pub created_unix: u64,
    /// Until when its grants hold, Unix seconds.
    pub expires_unix: u64,
    /// Whether the grantees may add versions.
    pub write: bool,
    /// Versions they added.
    pub contributions: Vec<ContributionInfo>,
}

/// `GET /api/v1/shares`: what this node shares, and with whom.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Shares {
    /// Newest first.
    pub shares: Vec<ShareInfo>,
}

/// `POST /api/v1/shares/{id}/revoke`: revoke a share, from everyone or from one grantee.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// A contact's name or a peer id (default: everyone).
    pub from: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevokeReport {
    /// The share after it.
    pub share: ShareInfo,
    /// Grantees revoked now.
    pub revoked: usize,
    /// Suppliers that confirmed they refuse the revoked grants from now on.
    pub suppliers_confirmed: usize,
    /// Suppliers asked.
    pub suppliers: usize,
    /// Seconds from the request until the last supplier confirmed.
    pub seconds: f64,
}

/// One share someone made with this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedInfo {
    /// The share's id (hex).
    pub id: String,
    /// The owner's peer id.
    pub owner: String,
    /// The owner's contact name, if it is a contact.
    pub owner_name: Option<String>,
    /// The backup's name, as the owner calls it.
    pub backup: String,
    /// The version shared (none: every version it had).
    pub version: Option<u32>,
    /// When it arrived, Unix milliseconds.
    pub received_unix_ms: u64,
    /// Whether the owner revoked it.
    pub revoked: bool,
    /// Whether it lets this node add versions.
    pub write: bool,
}

/// `GET /api/v1/shared`: what others share with this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedList {
    /// Newest first.
    pub shared: Vec<SharedInfo>,
}

/// One entry of a version's tree (one's own, or a shared one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SharedEntry {
    /// Path relative to the backup's root (lossy UTF-8).
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub kind: String,
    /// Bytes (files).
    pub size: u64,
}

/// `GET /api/v1/backups/{name}/files?version=N&dir=PATH` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// The version (default: the newest).
    #[serde(default)]
    #[param(required = false, minimum = 1, maximum = 4294967295_u64)]
    pub version: Option<u32>,
    /// The folder whose entries to list, relative to the backup's root, `/`-separated (default: the root).
    #[serde(default)]
    #[param(required = false)]
    pub dir: String,
}

/// `GET /api/v1/backups/{name}/files`: one folder of a version's tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionFiles {
    /// The backup.
    pub backup: String,
    /// The version listed.
    pub version: u32,
    /// The folder listed (`""`: the root).
    pub dir: String,
    /// Its entries (direct children), folders first, then by name; at most [`MAX_LISTED_ENTRIES`].
    pub entries: Vec<SharedEntry>,
    /// Entries left out past [`MAX_LISTED_ENTRIES`].
    pub more: usize,
}

/// Most entries one folder listing carries.
pub const MAX_LISTED_ENTRIES: usize = 10_000;

/// `GET /api/v1/backups/{name}/diff?from=A&to=B` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older version.
    #[param(minimum = 1, maximum = 4294967295_u64)]
    pub from: u32,
    /// The newer version.
    #[param(minimum = 1, maximum = 4294967295_u64)]
    pub to: u32,
}

/// What changed between two versions of a backup (a folder added or removed is listed once, not what is in it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionDiff {
    /// The backup.
    pub backup: String,
    /// The older version.
    pub from: u32,
    /// The newer version.
    pub to: u32,
    /// In `to` only.
    pub added: Vec<SharedEntry>,
    /// In `from` only.
    pub removed: Vec<SharedEntry>,
    /// In both, with other contents, kind, permissions or link target (as in `to`).
    pub changed: Vec<SharedEntry>,
    /// Entries left out past [`MAX_LISTED_ENTRIES`] in all.
    pub more: usize,
}

/// `GET /api/v1/find?pattern=GLOB` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// A glob (`*`, `?`, `[...]`, `**`) matched against each entry's name and its whole path.
    pub pattern: String,
}

/// One match of `find`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Found {
    /// The backup.
    pub backup: String,
    /// The version.
    pub version: u32,
    /// The entry.
    pub entry: SharedEntry,
}

/// What `find` found, in every version of every backup.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FindResult {
    /// The pattern.
    pub pattern: String,
    /// Matches, backup by backup, version by version, in tree order.
    pub matches: Vec<Found>,
    /// Matches left out past [`MAX_LISTED_ENTRIES`].
    pub more: usize,
}

/// `GET /api/v1/shared/{owner}/{backup}`: a shared backup's versions and the files of one, fetched from the
/// owner's suppliers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedListing {
    /// The owner's peer id.
    pub owner: String,
    /// The backup's name.
    pub backup: String,
    /// The versions shared.
    pub versions: Vec<VersionInfo>,
    /// The version listed.
    pub version: u32,
    /// Its entries, in archive order.
    pub entries: Vec<SharedEntry>,
}

/// `GET /api/v1/shared/{owner}/{backup}` query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SharedQuery {
    /// The version to list (default the latest shared).
    pub version: Option<u32>,
}

/// `POST /api/v1/shared/restore`: restore a shared backup's version into a folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedRestoreRequest {
    /// The owner: a contact's name or a peer id.
    pub owner: String,
    /// The backup's name.
    pub backup: String,
    /// Version (default the latest shared).
    #[serde(default, deserialize_with = "whole_version::deserialize")]
    pub version: Option<u32>,
    /// Absolute target folder (must be empty unless `force`).
    pub to: String,
    /// Restore into a non-empty folder.
    #[serde(default)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_a_whole_number_written_either_way() {
        let parse = |v: &str| {
            serde_json::from_str::<ShareRequest>(&format!(r#"{{"backup": "b", "with": "w"{v}}}"#)).map(|r| r.version)
        };
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse(r#", "version": null"#).unwrap(), None);
        assert_eq!(parse(r#", "version": 3"#).unwrap(), Some(3));
        assert_eq!(parse(r#", "version": 182.0"#).unwrap(), Some(182));
        for bad in ["3.5", "-1", "4294967296", "\"3\""] {
            assert!(parse(&format!(r#", "version": {bad}"#)).is_err(), "{bad}");
        }
    }

    /// Every event kind survives JSON both ways inside an `Event` (its fields are flattened next to the event's
    /// own: a kind with a field named like one of them could be written but never read back).
    #[test]
    fn every_event_kind_round_trips_through_json() {
        let kinds = [
            EventKind::JobStarted { job: 1, kind: "backup".into(), target: "/x".into() },
            EventKind::JobProgress { job: 1, done_bytes: 2, total_bytes: 3, new_bytes: 1 },
            EventKind::JobEnded { job: 1, state: JobState::Done },
            EventKind::AutomatonChanged { name: "n".into(), kind: "k".into(), state: "s".into() },
            EventKind::HealthChanged { queued_blocks: 4, down_positions: vec![1] },
            EventKind::Message {
                contact: "bob".into(),
                peer: "p".into(),
                outgoing: true,
                message_id: "00".into(),
                state: "sent".into(),
            },
        ];
        for kind in kinds {
            let event = Event { id: 7, time_unix_ms: 8, kind };
            let json = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, event);
        }
    }
}
