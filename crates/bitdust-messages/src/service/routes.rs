//! The messages wing's API routes (behind the runtime's authentication; errors through
//! [`bitdust_node::http::ApiError`]; bodies are [`bitdust_api`] types).
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/api/v1/contacts` | | [`Contacts`] |
//! | POST | `/api/v1/contacts` | [`AddContact`] | [`ContactInfo`] (404 nobody found, 409 a contact already or a key change) |
//! | DELETE | `/api/v1/contacts/{name}` | | [`ContactInfo`] removed (404 unknown) |
//! | GET | `/api/v1/contacts/{name}/verify` | | [`SafetyNumber`], after looking the contact up again |
//! | POST | `/api/v1/contacts/{name}/verify` | | [`SafetyNumber`]: the numbers were compared; marks it verified |
//! | POST | `/api/v1/messages` | [`SendMessage`] | [`MessageInfo`]: `delivered`, or `sent` if the contact did not take it; a text or a file |
//! | GET | `/api/v1/messages/{name}?limit=N` | | [`Conversation`]: the last N messages, oldest first |
//! | POST | `/api/v1/uploads?name=NAME` | the file's bytes | [`Upload`]: kept under `home/uploads/`, to send as a file (at most [`MAX_UPLOAD_BYTES`]) |
//! | GET | `/api/v1/files/{id}` | | the file of message `id` (sent, or received whole) as an `attachment` download |
//! | POST | `/api/v1/messages/{name}/read` | | [`MarkedRead`]: received messages shown; a read receipt goes back |
//! | GET | `/api/v1/inbox` | | [`Inbox`]: every conversation with its last message, the most recent first |
//! | POST | `/api/v1/history/sync` | | [`HistorySync`]: contacts and conversations stored on the suppliers now (503 none) |
//! | GET | `/api/v1/groups` | | [`Groups`]: every group held, current and left |
//! | POST | `/api/v1/groups` | [`CreateGroup`] | [`GroupInfo`]: a new group, this node its admin (409 the name is taken) |
//! | GET | `/api/v1/groups/{name}` | | [`GroupInfo`]: its members (404 unknown; 409 ambiguous: use the id) |
//! | POST | `/api/v1/groups/{name}/members` | [`AddMember`] | [`GroupInfo`]: a contact added (the admin only: 409) |
//! | DELETE | `/api/v1/groups/{name}/members/{member}` | | [`GroupInfo`]: a member removed; every key is replaced |
//! | POST | `/api/v1/groups/{name}/leave` | | [`GroupInfo`]: left (the admin removes us) |
//! | POST | `/api/v1/groups/{name}/messages` | [`SendGroupMessage`] | [`GroupSentInfo`]: sent to each member |
//! | GET | `/api/v1/groups/{name}/messages?limit=N` | | [`GroupConversation`]: the last N messages, oldest first |
//! | GET | `/api/v1/shares` | | [`Shares`]: what this node shares, with whom |
//! | POST | `/api/v1/shares` | [`ShareRequest`] | [`ShareInfo`]: a backup shared with a contact, a group or `public` (404 no such backup or contact) |
//! | GET | `/api/v1/search?q=WORDS` | | [`SearchResults`]: public shares matching the words, best first |
//! | POST | `/api/v1/shares/{id}/revoke` | [`RevokeRequest`] | [`RevokeReport`]: the suppliers refuse the grants from now on |
//! | GET | `/api/v1/shared` | | [`SharedList`]: what others share with this node |
//! | GET | `/api/v1/shared/{owner}/{backup}?version=N` | | [`SharedListing`]: versions and files, from the owner's suppliers (503 refused) |
//! | POST | `/api/v1/shared/restore` | [`SharedRestoreRequest`] | [`RestoreReport`] (503 refused or unreachable) |
//! | POST | `/api/v1/shared/write` | [`SharedWriteRequest`] | [`SharedWriteReport`]: a new version sent to the owner (409 read-only or refused) |

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use bitdust_api::{
    AddContact, AddMember, ContactInfo, Contacts, Conversation, CreateGroup, ErrorBody, FileInfo, GroupConversation,
    GroupInfo, GroupMemberInfo, GroupMessageInfo, GroupSentInfo, Groups, HistoryQuery, HistorySync, Inbox, InboxEntry,
    MarkedRead, MessageInfo, RestoreReport, RevokeReport, RevokeRequest, SafetyNumber, SearchQuery, SearchResults,
    SendGroupMessage, SendMessage, ShareInfo, ShareRequest, SharedList, SharedListing, SharedQuery,
    SharedRestoreRequest, SharedWriteReport, SharedWriteRequest, Shares, Upload, UploadQuery,
};
use bitdust_core::keys::short_peer_id;
use bitdust_node::http::{ApiError, ApiResult, ErrorKind, JsonObject};
use utoipa::OpenApi;

use crate::proto::contacts::{Contact, ContactError};
use crate::service::conversations::Entry;
use crate::service::files::FileState;
use crate::service::Messages;

type S = State<Arc<Messages>>;

/// The routes, bound to `messages`.
pub(crate) fn router(messages: Arc<Messages>) -> Router {
    Router::new()
        .route("/api/v1/contacts", get(contacts).post(add))
        .route("/api/v1/contacts/{name}", axum::routing::delete(remove))
        .route("/api/v1/contacts/{name}/verify", get(safety).post(verify))
        .route("/api/v1/messages", axum::routing::post(send))
        .route("/api/v1/messages/{name}", get(history))
        .route("/api/v1/messages/{name}/read", axum::routing::post(read))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/uploads", axum::routing::post(upload).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/api/v1/files/{id}", get(download))
        .route("/api/v1/history/sync", axum::routing::post(sync))
        .route("/api/v1/groups", get(groups).post(create_group))
        .route("/api/v1/groups/{name}", get(group))
        .route("/api/v1/groups/{name}/members", axum::routing::post(add_member))
        .route("/api/v1/groups/{name}/members/{member}", axum::routing::delete(remove_member))
        .route("/api/v1/groups/{name}/leave", axum::routing::post(leave_group))
        .route("/api/v1/groups/{name}/messages", get(group_history).post(group_send))
        .route("/api/v1/shares", get(shares).post(share))
        .route("/api/v1/search", get(search))
        .route("/api/v1/shares/{id}/revoke", axum::routing::post(revoke))
        .route("/api/v1/shared", get(shared))
        .route("/api/v1/shared/restore", axum::routing::post(restore_shared))
        .route("/api/v1/shared/write", axum::routing::post(write_shared))
        .route("/api/v1/shared/{owner}/{backup}", get(shared_listing))
        .with_state(messages)
}

/// Largest file taken by `POST /api/v1/uploads`, in bytes (4 GiB: larger ones are sent by path, `msg send --file`).
pub const MAX_UPLOAD_BYTES: u64 = 4 << 30;

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    contacts,
    add,
    remove,
    safety,
    verify,
    send,
    history,
    read,
    inbox,
    upload,
    download,
    sync,
    groups,
    create_group,
    group,
    add_member,
    remove_member,
    leave_group,
    group_send,
    group_history,
    shares,
    share,
    search,
    revoke,
    shared,
    shared_listing,
    restore_shared,
    write_shared
))]
struct MessagesApi;

/// The messages wing's part of the OpenAPI document.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    MessagesApi::openapi()
}

/// A contact as the API shows it (with what `m` knows of its presence).
fn info_with(m: &Messages, c: &Contact) -> ContactInfo {
    let presence = c.peer().ok().and_then(|p| m.presence_of(&p));
    ContactInfo {
        online: presence.map(|p| p.online),
        last_seen_unix: presence.map(|p| p.last_seen_unix).filter(|t| *t > 0),
        ..info(c)
    }
}

/// A contact as the API shows it.
fn info(c: &Contact) -> ContactInfo {
    let peer = c.peer().ok();
    ContactInfo {
        online: None,
        last_seen_unix: None,
        name: c.name.clone(),
        peer_id: peer.map(|p| p.to_string()).unwrap_or_default(),
        global_id: format!("{}@{}", c.nickname, peer.map(|p| short_peer_id(&p)).unwrap_or_default()),
        nickname: c.nickname.clone(),
        verified: c.verified,
        added_unix: c.added_unix,
        key_change: c.key_change.as_ref().map(ToString::to_string),
    }
}

/// The API error for a wing error: the address book's own errors by kind, the rest as the runtime maps them.
/// A file that cannot be read is bad input (400); the rest as for text.
fn file_error(e: anyhow::Error) -> ApiError {
    let unreadable =
        e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some()) || e.to_string().starts_with("cannot send");
    if unreadable && e.downcast_ref::<ContactError>().is_none() {
        return ApiError::bad_request(format!("{e:#}"));
    }
    error(e)
}

fn error(e: anyhow::Error) -> ApiError {
    use crate::service::conversations::SendError;
    use crate::service::groups::GroupRefusal;
    use crate::service::shares::ShareRefusal;
    use bitdust_node::vault::ShareError;
    if let Some(s) = e.downcast_ref::<ShareRefusal>() {
        let kind = match s {
            ShareRefusal::Unknown(_) => ErrorKind::NotFound,
            ShareRefusal::NoStorage => ErrorKind::Unavailable,
            ShareRefusal::BadQuery(_) => ErrorKind::BadRequest,
            ShareRefusal::Conflict(_) => ErrorKind::Conflict,
        };
        return ApiError::new(kind, e.to_string());
    }
    if let Some(s) = e.chain().find_map(|c| c.downcast_ref::<ShareError>()) {
        let kind = match s {
            ShareError::NotFound(_) => ErrorKind::NotFound,
            ShareError::BadRequest(_) => ErrorKind::BadRequest,
            ShareError::Unavailable(_) => ErrorKind::Unavailable,
        };
        return ApiError::new(kind, format!("{e:#}"));
    }
    if let Some(g) = e.downcast_ref::<GroupRefusal>() {
        let kind = match g {
            GroupRefusal::Unknown(_) | GroupRefusal::NoSuchMember(..) => ErrorKind::NotFound,
            GroupRefusal::Ambiguous(_)
            | GroupRefusal::Exists(_)
            | GroupRefusal::Admin(_)
            | GroupRefusal::NotMember(_) => ErrorKind::Conflict,
        };
        return ApiError::new(kind, e.to_string());
    }
    if let Some(g) = e.downcast_ref::<crate::proto::groups::GroupError>() {
        return ApiError::bad_request(g.to_string());
    }
    match e.downcast_ref::<SendError>() {
        Some(SendError::KeyChanged(..)) => return ApiError::new(ErrorKind::Conflict, e.to_string()),
        Some(SendError::Unreachable(..)) => return ApiError::new(ErrorKind::Unavailable, e.to_string()),
        None => {}
    }
    let kind = match e.downcast_ref::<ContactError>() {
        Some(ContactError::Unknown(_) | ContactError::NotFound(_)) => ErrorKind::NotFound,
        Some(
            ContactError::NameTaken(_)
            | ContactError::AlreadyContact { .. }
            | ContactError::Yourself(_)
            | ContactError::OtherIdentity { .. }
            | ContactError::NicknameMoved { .. },
        ) => ErrorKind::Conflict,
        Some(ContactError::BadName(_) | ContactError::BadAddress(_)) => ErrorKind::BadRequest,
        None => return ApiError::from(e),
    };
    ApiError::new(kind, e.to_string())
}

/// The address book.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "messages", responses((status = 200, body = Contacts)))]
async fn contacts(State(m): S) -> ApiResult<Contacts> {
    let book = m.contacts().map_err(error)?;
    Ok(Json(Contacts { contacts: book.contacts.iter().map(|c| info_with(&m, c)).collect() }))
}

/// Adds a contact found by nickname (its signed claim), global id or peer id.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "messages", request_body = AddContact,
    responses((status = 200, body = ContactInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn add(State(m): S, JsonObject(body): JsonObject<AddContact>) -> ApiResult<ContactInfo> {
    let c = m.add_contact(&body.who, body.name.as_deref()).await.map_err(error)?;
    Ok(Json(info(&c)))
}

/// Removes a contact.
#[utoipa::path(delete, path = "/api/v1/contacts/{name}", tag = "messages",
    params(("name" = String, Path, description = "The contact's name")),
    responses((status = 200, body = ContactInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<ContactInfo> {
    let Path(name) = name?;
    let c = m.remove_contact(&name).await.map_err(error)?;
    Ok(Json(info(&c)))
}

/// The safety number to compare with the contact, after looking it up again (a changed key is flagged).
#[utoipa::path(get, path = "/api/v1/contacts/{name}/verify", tag = "messages",
    params(("name" = String, Path, description = "The contact's name")),
    responses((status = 200, body = SafetyNumber), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn safety(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<SafetyNumber> {
    let Path(name) = name?;
    let (c, safety_number) = m.verify_contact(&name, false).await.map_err(error)?;
    Ok(Json(SafetyNumber { contact: info(&c), safety_number }))
}

/// Confirms the safety number was compared: the contact is verified (a new encryption key it carries accepted).
#[utoipa::path(post, path = "/api/v1/contacts/{name}/verify", tag = "messages",
    params(("name" = String, Path, description = "The contact's name")),
    responses((status = 200, body = SafetyNumber), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn verify(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<SafetyNumber> {
    let Path(name) = name?;
    let (c, safety_number) = m.verify_contact(&name, true).await.map_err(error)?;
    Ok(Json(SafetyNumber { contact: info(&c), safety_number }))
}

fn message(m: &Messages, e: &Entry) -> MessageInfo {
    let file = if e.text.starts_with(crate::service::files::FILE_MARK) {
        m.file(&e.id).ok().flatten().map(|f| FileInfo {
            name: f.name,
            size: f.size,
            state: f.state.as_str().to_string(),
            received_bytes: if f.outgoing { 0 } else { f.received },
            path: f.path,
            error: match f.state {
                FileState::Failed(why) => Some(why),
                _ => None,
            },
        })
    } else {
        None
    };
    MessageInfo {
        outgoing: e.outgoing,
        id: hex::encode(e.id),
        seq: e.seq,
        sent_unix_ms: e.sent_unix_ms,
        at_unix_ms: e.at_unix_ms,
        text: e.text.clone(),
        state: e.state.as_str().to_string(),
        mailboxes: e.mailboxes,
        file,
    }
}

/// Sends a text to a contact, end-to-end encrypted.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendMessage,
    responses((status = 200, body = MessageInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn send(State(m): S, JsonObject(body): JsonObject<SendMessage>) -> ApiResult<MessageInfo> {
    // an unknown contact first (404), whatever else is wrong with the request
    m.contacts().map_err(error)?.named(&body.to).map_err(|e| error(e.into()))?;
    if body.text.len() > crate::proto::wire::MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(format!(
            "message of {} bytes is over the {}-byte limit",
            body.text.len(),
            crate::proto::wire::MAX_TEXT_BYTES
        )));
    }
    let e = match &body.file {
        Some(path) if !body.text.is_empty() => {
            return Err(ApiError::bad_request(format!("a message is a text or a file, not both ({path})")))
        }
        Some(path) if !std::path::Path::new(path).is_absolute() => {
            return Err(ApiError::bad_request(format!("file path {path:?} is not absolute")))
        }
        Some(path) => m.send_file(&body.to, std::path::Path::new(path), body.via_storage).await.map_err(file_error)?,
        None => m.send_text(&body.to, &body.text).await.map_err(error)?,
    };
    Ok(Json(message(&m, &e)))
}

/// The conversation with a contact: the last `limit` messages, oldest first.
#[utoipa::path(get, path = "/api/v1/messages/{name}", tag = "messages",
    params(("name" = String, Path, description = "The contact's name"), HistoryQuery),
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn history(
    State(m): S,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Conversation> {
    let (Path(name), Query(q)) = (name?, query?);
    let limit = history_limit(q.limit)?;
    let messages = m.history(&name, limit).map_err(error)?;
    Ok(Json(Conversation { contact: name, messages: messages.iter().map(|e| message(&m, e)).collect() }))
}

/// Keeps the request's body as a file under `home/uploads/<random>/<name>` (the name made safe: [`upload_name`]) (written to a temporary name first, so
/// a cut upload leaves no file), for `POST /api/v1/messages` to send: how the web UI sends a file the user picked.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "messages", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    responses((status = 200, body = Upload), (status = 400, body = ErrorBody, description = "A bad query or a cut upload"),
        (status = 413, body = ErrorBody, description = "Over MAX_UPLOAD_BYTES (the upload is removed)"),
        (status = 415, body = ErrorBody, description = "Not application/octet-stream"),
))]
async fn upload(
    State(m): S,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Upload> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let Query(q) = query?;
    let octets = headers.get(axum::http::header::CONTENT_TYPE).is_some_and(|t| t == "application/octet-stream");
    if !octets {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "send the file's bytes as application/octet-stream",
        ));
    }
    if q.name.is_empty() || q.name.chars().count() > 255 {
        return Err(ApiError::bad_request("a file name of 1 to 255 characters"));
    }
    let name = upload_name(&q.name);
    let dir = m.node.home().path("uploads").join(hex::encode(rand::random::<[u8; 8]>()));
    let io = |e: std::io::Error| ApiError::from(anyhow::Error::from(e).context("storing the upload"));
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    // every way out but success removes the folder: a cut, refused or failed upload leaves nothing
    let stored = async {
        let part = dir.join(".part");
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut size = 0u64;
        // the body is streamed, so DefaultBodyLimit does not apply: the limit is counted here
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the upload was cut: {e}")))?;
            size += chunk.len() as u64;
            if size > MAX_UPLOAD_BYTES {
                return Err(ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("over the {MAX_UPLOAD_BYTES}-byte upload limit (send larger files by path)"),
                ));
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        drop(file);
        let path = dir.join(&name);
        tokio::fs::rename(&part, &path).await.map_err(io)?;
        Ok(Upload { path: path.display().to_string(), size })
    }
    .await;
    match stored {
        Ok(u) => Ok(Json(u)),
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err(e)
        }
    }
}

/// `name` made safe as one file name: no `/`, `\\` or NUL (each becomes `_`), no leading `.`, at most 200 bytes
/// (cut at a character boundary); empty becomes `file`.
fn upload_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if matches!(c, '/' | '\\' | '\0') { '_' } else { c }).collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    while out.len() > 200 {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("file");
    }
    out
}

/// The file of message `id`, sent or received whole, as a download (`Content-Disposition: attachment`, served as
/// bytes and sandboxed: a file from another user is never rendered in the web UI's origin).
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "messages",
    params(("id" = String, Path, description = "The message's id (hex)")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody, description = "No such file, or not received yet")))]
async fn download(State(m): S, id: Result<Path<String>, PathRejection>) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let Path(id) = id?;
    // not an id at all: no such file either
    let transfer: [u8; 16] = hex::decode(&id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::not_found(format!("no file of message {id:?} (ids are 32 hex digits)")))?;
    let record = m
        .file(&transfer)
        .map_err(error)?
        .filter(|r| r.outgoing || r.state == FileState::Received)
        .ok_or_else(|| ApiError::not_found(format!("no file of message {id} on this node")))?;
    let file = tokio::fs::File::open(&record.path)
        .await
        .map_err(|e| ApiError::not_found(format!("the file of message {id} is gone: {e}")))?;
    let len = file.metadata().await.map_err(|e| ApiError::from(anyhow::Error::from(e)))?.len();
    let stream = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    // the name as a quoted string of safe characters only; the rest become '_'
    let safe: String =
        record.name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' }).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\"")),
            (header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Every conversation with its last message, the most recent first.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "messages", responses((status = 200, body = Inbox)))]
async fn inbox(State(m): S) -> ApiResult<Inbox> {
    let book = m.contacts().map_err(error)?;
    let conversations = m
        .conversations()
        .map_err(error)?
        .into_iter()
        .map(|(peer, messages, last)| {
            let contact = book.by_peer(&peer.to_bytes());
            InboxEntry {
                contact: contact.map_or_else(|| peer.to_string(), |c| c.name.clone()),
                is_contact: contact.is_some(),
                messages,
                last: last.as_ref().map(|e| message(&m, e)),
            }
        })
        .collect();
    Ok(Json(Inbox { conversations }))
}

/// Stores what changed in contacts and conversations on the user's suppliers now (otherwise done every 30 s), so
/// that a new device restored from the key has everything.
#[utoipa::path(
    post, path = "/api/v1/history/sync", tag = "messages",
    responses((status = 200, body = HistorySync), (status = 503, body = ErrorBody, description = "No suppliers to store it on"))
)]
async fn sync(State(m): S) -> ApiResult<HistorySync> {
    let stored = m.sync_history().await.map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))?;
    Ok(Json(HistorySync { stored }))
}

/// Marks the messages received from a contact as read (they were shown) and sends it a read receipt.
#[utoipa::path(post, path = "/api/v1/messages/{name}/read", tag = "messages",
    params(("name" = String, Path, description = "The contact's name")),
    responses((status = 200, body = MarkedRead), (status = 404, body = ErrorBody)))]
async fn read(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<MarkedRead> {
    let Path(name) = name?;
    let marked = m.mark_read(&name).await.map_err(error)?;
    Ok(Json(MarkedRead { marked: marked as u64 }))
}

/// A group as the API shows it (members named as in our address book).
fn group_info(m: &Messages, g: &crate::service::groups::GroupRecord) -> GroupInfo {
    let book = m.contacts().unwrap_or_default();
    let r = &g.roster.roster;
    let me = m.node().peer_id().to_bytes();
    GroupInfo {
        id: hex::encode(r.group),
        name: r.name.clone(),
        revision: r.revision,
        active: g.active,
        members: r
            .members
            .iter()
            .map(|member| GroupMemberInfo {
                peer_id: bitdust_core::PeerId::from_bytes(&member.peer).map(|p| p.to_string()).unwrap_or_default(),
                contact: book.by_peer(&member.peer).map(|c| c.name.clone()),
                admin: member.peer == r.admin,
                me: member.peer == me,
            })
            .collect(),
    }
}

/// A group message as the API shows it.
fn group_message(m: &Messages, e: &crate::service::groups::GroupEntry) -> GroupMessageInfo {
    let book = m.contacts().unwrap_or_default();
    GroupMessageInfo {
        id: hex::encode(e.id),
        outgoing: e.from == m.node().peer_id().to_bytes(),
        from: bitdust_core::PeerId::from_bytes(&e.from).map(|p| p.to_string()).unwrap_or_default(),
        from_contact: book.by_peer(&e.from).map(|c| c.name.clone()),
        sent_unix_ms: e.sent_unix_ms,
        at_unix_ms: e.at_unix_ms,
        text: e.text.clone(),
    }
}

/// Every group held, current and left.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", responses((status = 200, body = Groups)))]
async fn groups(State(m): S) -> ApiResult<Groups> {
    let all = m.groups().map_err(error)?;
    Ok(Json(Groups { groups: all.iter().map(|g| group_info(&m, g)).collect() }))
}

/// Creates a group with this node as its admin and only member.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 200, body = GroupInfo), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_group(State(m): S, JsonObject(body): JsonObject<CreateGroup>) -> ApiResult<GroupInfo> {
    m.group_create(&body.name).await.map_err(error)?;
    Ok(Json(group_info(&m, &m.group(&body.name).map_err(error)?)))
}

/// A group and its members.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, description = "The group's name or id")),
    responses((status = 200, body = GroupInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn group(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<GroupInfo> {
    let Path(name) = name?;
    Ok(Json(group_info(&m, &m.group(&name).map_err(error)?)))
}

/// Adds a contact to a group (the admin only); the members are told, the newcomer reads from now on (with `history`,
/// the earlier messages too).
#[utoipa::path(post, path = "/api/v1/groups/{name}/members", tag = "groups", request_body = AddMember,
    params(("name" = String, Path, description = "The group's name or id")),
    responses((status = 200, body = GroupInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn add_member(
    State(m): S,
    name: Result<Path<String>, PathRejection>,
    JsonObject(body): JsonObject<AddMember>,
) -> ApiResult<GroupInfo> {
    let Path(name) = name?;
    let roster = m.group_add(&name, &body.contact, body.history).await.map_err(error)?;
    Ok(Json(group_info(&m, &m.group(&hex::encode(roster.group)).map_err(error)?)))
}

/// Removes a member (the admin only): every member replaces its key, the removed one cannot read what follows.
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{member}", tag = "groups",
    params(("name" = String, Path, description = "The group's name or id"),
        ("member" = String, Path, description = "A contact's name or a peer id")),
    responses((status = 200, body = GroupInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_member(State(m): S, path: Result<Path<(String, String)>, PathRejection>) -> ApiResult<GroupInfo> {
    let Path((name, member)) = path?;
    let roster = m.group_remove(&name, &member).await.map_err(error)?;
    Ok(Json(group_info(&m, &m.group(&hex::encode(roster.group)).map_err(error)?)))
}

/// Leaves a group (the admin then removes us; the history stays here).
#[utoipa::path(post, path = "/api/v1/groups/{name}/leave", tag = "groups",
    params(("name" = String, Path, description = "The group's name or id")),
    responses((status = 200, body = GroupInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn leave_group(State(m): S, name: Result<Path<String>, PathRejection>) -> ApiResult<GroupInfo> {
    let Path(name) = name?;
    let id = hex::encode(m.group(&name).map_err(error)?.roster.roster.group);
    m.group_leave(&id).await.map_err(error)?;
    Ok(Json(group_info(&m, &m.group(&id).map_err(error)?)))
}

/// Sends a text to a group: one encryption, then to each member directly or to its mailboxes.
#[utoipa::path(post, path = "/api/v1/groups/{name}/messages", tag = "groups", request_body = SendGroupMessage,
    params(("name" = String, Path, description = "The group's name or id")),
    responses((status = 200, body = GroupSentInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn group_send(
    State(m): S,
    name: Result<Path<String>, PathRejection>,
    JsonObject(body): JsonObject<SendGroupMessage>,
) -> ApiResult<GroupSentInfo> {
    let Path(name) = name?;
    // an unknown group first (404), whatever else is wrong with the request
    m.group(&name).map_err(error)?;
    if body.text.len() > crate::proto::wire::MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(format!(
            "message of {} bytes is over the {}-byte limit",
            body.text.len(),
            crate::proto::wire::MAX_TEXT_BYTES
        )));
    }
    let sent = m.group_send(&name, &body.text).await.map_err(error)?;
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    Ok(Json(GroupSentInfo {
        message: group_message(&m, &sent.entry),
        delivered: n(sent.delivered),
        stored: n(sent.stored),
        missed: n(sent.missed),
    }))
}

/// A group's history: the last `limit` messages, oldest first.
#[utoipa::path(get, path = "/api/v1/groups/{name}/messages", tag = "groups",
    params(("name" = String, Path, description = "The group's name or id"), HistoryQuery),
    responses((status = 200, body = GroupConversation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn group_history(
    State(m): S,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<GroupConversation> {
    let (Path(name), Query(q)) = (name?, query?);
    let limit = history_limit(q.limit)?;
    let record = m.group(&name).map_err(error)?;
    let messages = m.group_history(&name, limit).map_err(error)?;
    Ok(Json(GroupConversation {
        group: group_info(&m, &record),
        messages: messages.iter().map(|e| group_message(&m, e)).collect(),
    }))
}

/// The `limit` of a history query: 100 by default, at most 10,000.
fn history_limit(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(100) {
        n @ 0..=10_000 => Ok(n as usize),
        n => Err(ApiError::bad_request(format!("limit {n} is over 10,000"))),
    }
}

/// What this node shares, and with whom (newest first).
#[utoipa::path(get, path = "/api/v1/shares", tag = "sharing", responses((status = 200, body = Shares)))]
async fn shares(State(m): S) -> ApiResult<Shares> {
    Ok(Json(Shares { shares: m.shares().map_err(error)? }))
}

/// Shares a backup (every version it has now, or one) with a contact, a group (`group:NAME`) or anyone (`public`,
/// with a title, description and keywords that search finds): a manifest goes to this node's suppliers, its key to
/// each grantee (409 write access with one version, a path, or to the public). With a `path`, a copy of that
/// file or folder of the version is shared, holding nothing else.
#[utoipa::path(post, path = "/api/v1/shares", tag = "sharing", request_body = ShareRequest,
    responses((status = 200, body = ShareInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn share(State(m): S, JsonObject(body): JsonObject<ShareRequest>) -> ApiResult<ShareInfo> {
    let mut body = body;
    if let Some(path) = body.path.take() {
        if body.write {
            let refusal = crate::service::shares::ShareRefusal::Conflict("a share of a path is read-only".into());
            return Err(error(refusal.into()));
        }
        body.backup = format!("{}/{path}", body.backup);
    }
    if body.with == "public" {
        if body.write {
            return Err(error(
                crate::service::shares::ShareRefusal::Conflict("a public share is read-only".into()).into(),
            ));
        }
        let text = |t: &Option<String>| t.clone().unwrap_or_default();
        let (title, description, keywords) = (text(&body.title), text(&body.description), text(&body.keywords));
        let shared = m.share_public(&body.backup, body.version, &title, &description, &keywords).await;
        return Ok(Json(shared.map_err(error)?));
    }
    Ok(Json(m.share(&body.backup, body.version, &body.with, body.write).await.map_err(error)?))
}

/// Adds a file or folder as a new version of a share that lets this node write: stored on this node's suppliers, its
/// key sent to the owner, who fetches it (409 the share is read-only or the owner refused).
#[utoipa::path(post, path = "/api/v1/shared/write", tag = "sharing", request_body = SharedWriteRequest,
    responses((status = 200, body = SharedWriteReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn write_shared(State(m): S, JsonObject(body): JsonObject<SharedWriteRequest>) -> ApiResult<SharedWriteReport> {
    let started = std::time::Instant::now();
    if !m.may_write(&body.owner, &body.backup).map_err(error)? {
        let what = format!("{}:{} is shared with you read-only", body.owner, body.backup);
        return Err(ApiError::new(ErrorKind::Conflict, what));
    }
    let path = std::path::PathBuf::from(&body.path);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!("{} is not an absolute path", body.path)));
    }
    m.contribute(&body.owner, &body.backup, &path)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Conflict, format!("{e:#}")))?;
    Ok(Json(SharedWriteReport { owner: body.owner, backup: body.backup, seconds: started.elapsed().as_secs_f64() }))
}

/// Searches the network's public shares: the publishers of each word (DHT providers), then their signed listings.
#[utoipa::path(get, path = "/api/v1/search", tag = "sharing", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody)))]
async fn search(State(m): S, query: Result<Query<SearchQuery>, QueryRejection>) -> ApiResult<SearchResults> {
    let Query(q) = query?;
    Ok(Json(m.search(&q.q).await.map_err(error)?))
}

/// Revokes a share from everyone, or from one grantee: this node's suppliers refuse its grants from now on.
#[utoipa::path(post, path = "/api/v1/shares/{id}/revoke", tag = "sharing", request_body = RevokeRequest,
    params(("id" = String, Path, description = "The share's id (hex)")),
    responses((status = 200, body = RevokeReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn revoke(
    State(m): S,
    id: Result<Path<String>, PathRejection>,
    JsonObject(body): JsonObject<RevokeRequest>,
) -> ApiResult<RevokeReport> {
    let Path(id) = id?;
    let started = std::time::Instant::now();
    let (share, revoked, suppliers_confirmed, suppliers) = m.revoke(&id, body.from.as_deref()).await.map_err(error)?;
    Ok(Json(RevokeReport { share, revoked, suppliers_confirmed, suppliers, seconds: started.elapsed().as_secs_f64() }))
}

/// What others share with this node (newest first).
#[utoipa::path(get, path = "/api/v1/shared", tag = "sharing", responses((status = 200, body = SharedList)))]
async fn shared(State(m): S) -> ApiResult<SharedList> {
    Ok(Json(SharedList { shared: m.shared().map_err(error)? }))
}

/// A shared backup's versions and the files of one, from the owner's suppliers.
#[utoipa::path(get, path = "/api/v1/shared/{owner}/{backup}", tag = "sharing",
    params(("owner" = String, Path, description = "The owner: a contact's name or a peer id"),
        ("backup" = String, Path, description = "The backup's name (or the share's id)"), SharedQuery),
    responses((status = 200, body = SharedListing), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn shared_listing(
    State(m): S,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<SharedQuery>, QueryRejection>,
) -> ApiResult<SharedListing> {
    let (Path((owner, backup)), Query(q)) = (path?, query?);
    Ok(Json(m.shared_listing(&owner, &backup, q.version).await.map_err(error)?))
}

/// Restores a shared backup's version into a folder, from the owner's suppliers.
#[utoipa::path(post, path = "/api/v1/shared/restore", tag = "sharing", request_body = SharedRestoreRequest,
    responses((status = 200, body = RestoreReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn restore_shared(State(m): S, JsonObject(body): JsonObject<SharedRestoreRequest>) -> ApiResult<RestoreReport> {
    let to = std::path::PathBuf::from(&body.to);
    Ok(Json(m.restore_shared(&body.owner, &body.backup, body.version, &to, body.force).await.map_err(error)?))
}

#[cfg(test)]
mod upload_tests {
    use super::upload_name;

    /// A name from the browser never leaves its folder, hides itself, or grows past what a file system takes.
    #[test]
    fn upload_names_stay_one_plain_component() {
        assert_eq!(upload_name("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(upload_name(".bashrc"), "_bashrc");
        assert_eq!(upload_name("a\\b\0c"), "a_b_c");
        assert_eq!(upload_name(""), "file");
        assert_eq!(upload_name("photo.jpg"), "photo.jpg");
        let long = upload_name(&"é".repeat(255));
        assert!(long.len() <= 200 && long.chars().all(|c| c == 'é'));
    }
}
