//! File transfer between contacts ([`crate::proto::files`]): the offer travels as an end-to-end encrypted message
//! (its id is the message's), the recipient pulls verified slices straight from the sender.
//!
//! ```text
//! sender                                          recipient
//!   send_file: Bao outboard tree -> home/files/<id>.obao
//!   message Body::File(offer {id, name, size, hash}) ----->  record (receiving), download task:
//!                                                             asks FileGet{id, offset, 1 MiB}, 8 in flight
//!   serve_slice: only to the offer's recipient,   <-----
//!   only while the file is unchanged              ----->  FileSlice: verified against the hash, appended to
//!                                                             home/received/.<id>.part
//!                                                          done: whole-file BLAKE3 checked, renamed into
//!                                                             home/received/<name> (received)
//! ```
//! A cut link: the task retries with backoff (up to [`RETRY_FOR`]) and resumes from the last whole chunk written;
//! after a restart, unfinished downloads resume the same way. A slice that does not verify is refused (counted),
//! and the transfer fails: the sender's file is not what it offered. The libp2p connection is encrypted end to end
//! (Noise, also through a relay), so a relay sees only ciphertext and sizes.

use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::PeerId;
use bitdust_store::{NodeDbError, Txn, Versioned};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::proto::files::{self, chunk_len, FileError, FileOffer, CHUNK_BYTES};
use crate::proto::wire::{Body, Request, Response};
use crate::service::conversations::Entry;
use crate::service::Messages;

/// Transfers, sent and received: transfer (= message) id -> [`FileRecord`].
const FILES: &str = "messages/files";
/// The largest file offered or accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Slices asked at once by a download.
pub const SLICES_IN_FLIGHT: usize = 8;
/// Slices read at once for others (each a blocking read of 1 MiB); more are answered "busy, retry".
pub const SERVING: usize = 16;
/// Received messages whose answers wait for the disk at once (the receiver takes no more meanwhile).
pub const ANSWERING: usize = 64;
/// How long a download keeps retrying a sender it cannot reach before it waits for the next start.
pub const RETRY_FOR: Duration = Duration::from_secs(600);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// What the history shows before a file's name.
pub const FILE_MARK: &str = "📎 ";

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileState {
    /// Offered to the recipient (sender's side).
    Offered,
    /// Being fetched (recipient's side).
    Receiving,
    /// All of it here, verified.
    Received,
    /// Given up, and why.
    Failed(String),
}

impl FileState {
    /// Its name for people and the API.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Offered => "offered",
            Self::Receiving => "receiving",
            Self::Received => "received",
            Self::Failed(_) => "failed",
        }
    }
}

/// One transfer, as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Whether we offered it.
    pub outgoing: bool,
    /// The other side's peer id bytes.
    pub peer: Vec<u8>,
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its Bao (BLAKE3) root hash.
    pub hash: [u8; 32],
    /// The sender's file; the recipient's once received (empty before).
    pub path: String,
    /// Bytes received and verified so far (recipient).
    pub received: u64,
    /// Where it is.
    pub state: FileState,
    /// Sent through storage: the capability (recipient), or a copy of it (sender: the upload to forget).
    #[serde(with = "serde_bytes")]
    pub stored: Vec<u8>,
}

impl Versioned for FileRecord {
    const FORMAT: u16 = 1;
}

/// An offer as received, checked: a size within [`MAX_FILE_BYTES`], a name safe to create.
///
/// # Errors
/// A file over the limit.
pub(crate) fn check_offer(offer: FileOffer) -> Result<FileOffer> {
    if offer.size > MAX_FILE_BYTES {
        bail!("a file of {} bytes is over the {MAX_FILE_BYTES}-byte limit", offer.size);
    }
    if offer.stored.len() > bitdust_node::vault::MAX_CAPABILITY_BYTES {
        bail!("a capability of {} bytes is over the limit", offer.stored.len());
    }
    Ok(FileOffer { name: files::safe_name(&offer.name), ..offer })
}

/// What the history shows for an offer.
pub(crate) fn describe(offer: &FileOffer) -> String {
    format!("{FILE_MARK}{} ({} bytes)", offer.name, offer.size)
}

/// Records an offer received from `peer` (in the transaction that stores its message).
pub(crate) fn put_incoming(tx: &Txn<'_>, peer: &PeerId, offer: &FileOffer) -> Result<(), NodeDbError> {
    let record = FileRecord {
        outgoing: false,
        peer: peer.to_bytes(),
        name: offer.name.clone(),
        size: offer.size,
        hash: offer.hash,
        path: String::new(),
        received: 0,
        state: FileState::Receiving,
        stored: offer.stored.clone(),
    };
    tx.table(FILES)?.put(&offer.transfer, &record)
}

/// Why a slice could not be had.
enum Fetch {
    /// The network (retry).
    Net(anyhow::Error),
    /// The sender refused (it does not offer it, or its file changed).
    Refused(String),
    /// It did not verify.
    Corrupt(FileError),
}

impl Messages {
    /// Offers the file at `path` to contact `name`: its Bao tree is computed, the offer sent as a message (the
    /// history shows it), and the contact fetches it from this node while it runs. With `via_storage`, or when the
    /// contact does not answer, the file is also stored on this node's suppliers for the contact ("send through
    /// storage"), so this node may go offline at once.
    ///
    /// # Errors
    /// An unknown contact, a file that is missing, not a file, over [`MAX_FILE_BYTES`] or changed while it was
    /// read; then what [`Messages::send_text`] can fail with.
    pub async fn send_file(&self, name: &str, path: &Path, via_storage: bool) -> Result<Entry> {
        let contact = self.contacts()?.named(name)?.clone();
        let peer = contact.peer()?;
        let path = std::path::absolute(path)?;
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot send {}", path.display()))?;
        if !meta.is_file() {
            bail!("cannot send {}: not a file", path.display());
        }
        if meta.len() > MAX_FILE_BYTES {
            bail!("cannot send {}: {} bytes is over the {MAX_FILE_BYTES}-byte limit", path.display(), meta.len());
        }
        let transfer: [u8; 16] = rand::random();
        let dir = self.node.home().path("files");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tree = dir.join(format!("{}.obao", hex::encode(transfer)));
        let (source, t) = (path.clone(), tree.clone());
        let size = meta.len();
        let hash = tokio::task::spawn_blocking(move || -> Result<[u8; 32]> {
            let file = std::fs::File::open(&source).with_context(|| format!("cannot send {}", source.display()))?;
            let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).create_new(true).open(&t)?);
            let hash = files::outboard(BufReader::with_capacity(1 << 20, file), size, &mut out)
                .with_context(|| format!("cannot send {}: reading it failed", source.display()))?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(hash)
        })
        .await??;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
        if size != meta.len() {
            let _ = std::fs::remove_file(&tree);
            bail!("cannot send {}: it changed while it was read", path.display());
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let reachable = !via_storage && self.ask(peer, &Request::Presence).await.is_ok();
        let stored = match (reachable, self.node.vault()) {
            (false, Some(vault)) => {
                let expires = bitdust_node::home::unix_now() + crate::service::mailbox::MAIL_TTL.as_secs();
                vault.share_file(&hex::encode(transfer), &path, peer, expires).await.inspect_err(|_| {
                    let _ = std::fs::remove_file(&tree);
                })?
            }
            (false, None) if via_storage => bail!("cannot send through storage: this node runs no storage wing"),
            _ => Vec::new(),
        };
        let offer = FileOffer { transfer, name: files::safe_name(&file_name), size, hash, stored: stored.clone() };
        let record = FileRecord {
            outgoing: true,
            peer: peer.to_bytes(),
            name: offer.name.clone(),
            size,
            hash,
            path: path.display().to_string(),
            received: 0,
            state: FileState::Offered,
            stored,
        };
        self.node.db().write(|tx| tx.table(FILES)?.put(&transfer, &record))?;
        let text = describe(&offer);
        self.send_body(name, transfer, Body::File(offer), text).await
    }

    /// File bytes served to contacts since this node started.
    pub fn served_bytes(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Transfer `transfer` (the id of the message that offered it).
    ///
    /// # Errors
    /// The database.
    pub fn file(&self, transfer: &[u8; 16]) -> Result<Option<FileRecord>> {
        Ok(self.node.db().record::<FileRecord>(FILES, transfer)?)
    }

    /// Answers `peer`'s request for a slice of transfer `transfer`: only the offer's recipient gets one, only
    /// while the file has the size it had when offered (the recipient checks every byte against the hash). The
    /// caller holds one of the [`SERVING`] permits.
    pub(crate) async fn serve_slice(&self, peer: PeerId, transfer: [u8; 16], offset: u64, len: u64) -> Response {
        let record = match self.file(&transfer) {
            Ok(Some(r)) if r.outgoing && r.peer == peer.to_bytes() => r,
            _ => return Response::Error("no such file offered to you".into()),
        };
        let tree = self.node.home().path("files").join(format!("{}.obao", hex::encode(transfer)));
        let read = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let file = std::fs::File::open(&record.path).map_err(|e| format!("the file is gone: {e}"))?;
            if file.metadata().map(|m| m.len()).ok() != Some(record.size) {
                return Err("the file changed since it was offered".into());
            }
            let tree = std::fs::File::open(&tree).map_err(|e| format!("the file's tree is gone: {e}"))?;
            files::extract(&file, &tree, record.size, &record.hash, offset, len).map_err(|e| e.to_string())
        })
        .await;
        match read {
            Ok(Ok(slice)) => {
                self.served.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                Response::FileSlice(slice)
            }
            Ok(Err(e)) => Response::Error(e),
            Err(e) => Response::Error(format!("reading failed: {e}")),
        }
    }

    /// Starts fetching transfer `transfer` from `peer` in the background (once: a second call while it runs does
    /// nothing).
    pub(crate) fn start_download(&self, peer: PeerId, transfer: [u8; 16]) {
        let Some(me) = self.this.upgrade() else { return };
        if !self.downloads.lock().is_ok_and(|mut d| d.insert(transfer)) {
            return;
        }
        tokio::spawn(async move {
            let r = me.download(peer, transfer).await;
            if let Ok(mut d) = me.downloads.lock() {
                d.remove(&transfer);
            }
            if let Err(e) = r {
                tracing::info!(%peer, transfer = %hex::encode(transfer), error = %format!("{e:#}"), "file not received");
            }
        });
    }

    fn set_file(&self, transfer: &[u8; 16], record: &FileRecord) -> Result<()> {
        Ok(self.node.db().write_lazy(|tx| tx.table(FILES)?.put(transfer, record))?)
    }

    async fn fetch_slice(
        &self,
        peer: PeerId,
        transfer: [u8; 16],
        (hash, size): ([u8; 32], u64),
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, Fetch> {
        match self.ask(peer, &Request::FileGet { transfer, offset, len }).await {
            Ok(Response::FileSlice(slice)) => {
                tokio::task::spawn_blocking(move || files::verify(&slice, &hash, size, offset, len))
                    .await
                    .map_err(|e| Fetch::Net(anyhow!("verifying: {e}")))?
                    .map_err(Fetch::Corrupt)
            }
            Ok(Response::Error(e)) if e.starts_with("busy") => Err(Fetch::Net(anyhow!("the sender is busy"))),
            Ok(Response::Error(e)) => Err(Fetch::Refused(e)),
            Ok(other) => Err(Fetch::Refused(format!("unexpected answer {other:?}"))),
            Err(e) => Err(Fetch::Net(e)),
        }
    }

    /// Fetches transfer `transfer` from `peer` into `home/received/`, resuming what an earlier attempt wrote.
    async fn download(&self, peer: PeerId, transfer: [u8; 16]) -> Result<PathBuf> {
        let mut record = self.file(&transfer)?.context("unknown transfer")?;
        if record.outgoing || record.state != FileState::Receiving {
            bail!("transfer is not being received");
        }
        let dir = self.node.home().path("received");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if !record.stored.is_empty() {
            return self.download_stored(peer, transfer, record, &dir).await;
        }
        let part = dir.join(format!(".{}.part", hex::encode(transfer)));
        // resume after the last whole chunk written (every byte written was verified first)
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let mut offset = (have / CHUNK_BYTES * CHUNK_BYTES).min(record.size);
        let mut file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&part)?;
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(offset))?;
        let resumed_from = offset;
        if offset > 0 {
            tracing::info!(transfer = %hex::encode(transfer), offset, "resuming a download");
        }
        let size = record.size;
        let mut last_progress = std::time::Instant::now();
        let mut waiting_since: Option<std::time::Instant> = None;
        let mut backoff = Duration::from_millis(250);
        while offset < size {
            let offsets = (offset..size).step_by(CHUNK_BYTES as usize);
            let mut slices = futures::stream::iter(offsets)
                .map(|o| self.fetch_slice(peer, transfer, (record.hash, size), o, chunk_len(size, o)))
                .buffered(SLICES_IN_FLIGHT);
            let mut failure = None;
            while let Some(r) = slices.next().await {
                match r {
                    Ok(bytes) => {
                        file.write_all(&bytes)?;
                        if let Some(since) = waiting_since.take() {
                            let waited = since.elapsed().as_secs_f64();
                            tracing::info!(transfer = %hex::encode(transfer), offset, waited, "download resumed after the link came back");
                        }
                        offset += bytes.len() as u64;
                        backoff = Duration::from_millis(250);
                        if last_progress.elapsed() > Duration::from_secs(1) {
                            record.received = offset;
                            self.set_file(&transfer, &record)?;
                            last_progress = std::time::Instant::now();
                        }
                    }
                    Err(f) => {
                        failure = Some(f);
                        break;
                    }
                }
            }
            drop(slices);
            match failure {
                None => {}
                Some(Fetch::Corrupt(e)) => {
                    self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(self.fail(transfer, &mut record, offset, format!("refused a corrupt slice: {e}")));
                }
                Some(Fetch::Refused(e)) => {
                    return Err(self.fail(transfer, &mut record, offset, format!("the sender refused: {e}")));
                }
                Some(Fetch::Net(e)) => {
                    let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                    record.received = offset;
                    self.set_file(&transfer, &record)?;
                    if since.elapsed() > RETRY_FOR || self.node.network().is_stopped() {
                        return Err(e.context("the sender is unreachable; the download resumes at the next start"));
                    }
                    tracing::debug!(error = %format!("{e:#}"), ?backoff, "slice not fetched; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        file.sync_all()?;
        drop(file);
        // every byte was verified before it was written; what an earlier run wrote is checked again as a whole
        // (a crash may have left a page of zeros behind a length the file system kept)
        let whole = resumed_from == 0 || hashes_to(&part, record.hash).await?;
        if !whole {
            let _ = std::fs::remove_file(&part);
            return Err(self.fail(transfer, &mut record, 0, "the whole file does not match its hash".into()));
        }
        let target = unique_path(&dir, &record.name);
        std::fs::rename(&part, &target).with_context(|| format!("moving into {}", target.display()))?;
        record.received = size;
        record.path = target.display().to_string();
        record.state = FileState::Received;
        self.node.db().write(|tx| tx.table(FILES)?.put(&transfer, &record))?;
        self.file_event(&peer, &transfer);
        tracing::info!(%peer, file = %target.display(), size, "file received");
        Ok(target)
    }

    /// Fetches a file sent through storage from the sender's suppliers (retrying while they are unreachable, up to
    /// [`RETRY_FOR`]), checks it against the offer's hash, and tells the sender it may forget the upload.
    async fn download_stored(
        &self,
        peer: PeerId,
        transfer: [u8; 16],
        mut record: FileRecord,
        dir: &Path,
    ) -> Result<PathBuf> {
        let vault = self.node.vault().context("cannot fetch a file sent through storage: no storage wing runs")?;
        let scratch = dir.join(format!(".{}.stored", hex::encode(transfer)));
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(500);
        let fetched = loop {
            let _ = std::fs::remove_dir_all(&scratch);
            match vault.fetch_shared(peer, &record.stored, &scratch).await {
                Ok(path) => break path,
                Err(e) if started.elapsed() > RETRY_FOR || self.node.network().is_stopped() => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    return Err(e.context("the sender's suppliers did not give the file; retried at the next start"));
                }
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "stored file not fetched yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        let whole = hashes_to(&fetched, record.hash).await?;
        if !whole {
            let _ = std::fs::remove_dir_all(&scratch);
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(self.fail(transfer, &mut record, 0, "the stored file does not match the offer's hash".into()));
        }
        let target = unique_path(dir, &record.name);
        std::fs::rename(&fetched, &target).with_context(|| format!("moving into {}", target.display()))?;
        let _ = std::fs::remove_dir_all(&scratch);
        record.received = record.size;
        record.path = target.display().to_string();
        record.state = FileState::Received;
        self.node.db().write(|tx| tx.table(FILES)?.put(&transfer, &record))?;
        self.file_event(&peer, &transfer);
        if let Some(me) = self.this.upgrade() {
            tokio::spawn(async move {
                if let Err(e) = me.send_control(peer, Body::Fetched(transfer)).await {
                    tracing::info!(%peer, error = %format!("{e:#}"), "'fetched' not sent");
                }
            });
        }
        tracing::info!(%peer, file = %target.display(), "file received through storage");
        Ok(target)
    }

    /// The recipient of `transfer` fetched it from our suppliers: forget the upload.
    pub(crate) fn fetched(&self, peer: PeerId, transfer: [u8; 16]) {
        let Ok(Some(record)) = self.file(&transfer) else { return };
        if !record.outgoing || record.peer != peer.to_bytes() || record.stored.is_empty() {
            return;
        }
        let Some(vault) = self.node.vault() else { return };
        tokio::spawn(async move {
            match vault.unshare(&hex::encode(transfer)).await {
                Ok(()) => {
                    tracing::info!(transfer = %hex::encode(transfer), "file fetched through storage: upload forgotten")
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "upload not forgotten yet"),
            }
        });
    }

    fn fail(&self, transfer: [u8; 16], record: &mut FileRecord, offset: u64, why: String) -> anyhow::Error {
        record.received = offset;
        record.state = FileState::Failed(why.clone());
        if let Err(e) = self.node.db().write(|tx| tx.table(FILES)?.put(&transfer, &*record)) {
            tracing::warn!(error = %e, "cannot record a failed transfer");
        }
        if let Ok(peer) = PeerId::from_bytes(&record.peer) {
            self.file_event(&peer, &transfer);
        }
        anyhow!(why)
    }

    /// A Message event for the message that offered `transfer` (its file's state changed).
    fn file_event(&self, peer: &PeerId, transfer: &[u8; 16]) {
        let Ok(history) = self.history_of(peer, 10_000) else { return };
        if let Some(entry) = history.iter().rev().find(|e| &e.id == transfer) {
            self.event(peer, entry);
        }
    }
}

/// Whether the file at `path` has BLAKE3 hash `hash` (read on a blocking thread).
async fn hashes_to(path: &Path, hash: [u8; 32]) -> Result<bool> {
    let path = path.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(&path)?)?;
        Ok(*hasher.finalize().as_bytes() == hash)
    })
    .await??)
}

/// `dir/name`, or `dir/name (2)`, `(3)`... if taken.
fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.to_string(), String::new()),
    };
    (2..).map(|i| dir.join(format!("{stem} ({i}){ext}"))).find(|p| !p.exists()).unwrap_or(first)
}

/// Resumes the downloads a stop interrupted (once the node is announced: the senders must be found).
pub(crate) fn resume_downloads(messages: &Arc<Messages>) {
    let weak = Arc::downgrade(messages);
    tokio::spawn(async move {
        let Some(m) = weak.upgrade() else { return };
        m.node.wait_announced().await;
        let mut pending: Vec<(PeerId, [u8; 16])> = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let Ok(rows) = m.node.db().records::<FileRecord>(FILES, after.as_deref(), 256) else { return };
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            for (key, r) in rows {
                if !r.outgoing && r.state == FileState::Receiving {
                    if let (Ok(peer), Ok(id)) = (PeerId::from_bytes(&r.peer), <[u8; 16]>::try_from(key.as_slice())) {
                        pending.push((peer, id));
                    }
                }
            }
        }
        for (peer, id) in pending {
            m.start_download(peer, id);
        }
    });
}
