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

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use bitdust_api::{AddContact, ContactInfo, Contacts, ErrorBody, SafetyNumber};
use bitdust_core::keys::short_peer_id;
use bitdust_node::http::{ApiError, ApiResult, ErrorKind};
use utoipa::OpenApi;

use crate::proto::contacts::{Contact, ContactError};
use crate::service::Messages;

type S = State<Arc<Messages>>;

/// The routes, bound to `messages`.
pub(crate) fn router(messages: Arc<Messages>) -> Router {
    Router::new()
        .route("/api/v1/contacts", get(contacts).post(add))
        .route("/api/v1/contacts/{name}", axum::routing::delete(remove))
        .route("/api/v1/contacts/{name}/verify", get(safety).post(verify))
        .with_state(messages)
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(contacts, add, remove, safety, verify))]
struct MessagesApi;

/// The messages wing's part of the OpenAPI document.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    MessagesApi::openapi()
}

/// A contact as the API shows it.
fn info(c: &Contact) -> ContactInfo {
    let peer = c.peer().ok();
    ContactInfo {
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
fn error(e: anyhow::Error) -> ApiError {
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
    Ok(Json(Contacts { contacts: book.contacts.iter().map(info).collect() }))
}

/// Adds a contact found by nickname (its signed claim), global id or peer id.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "messages", request_body = AddContact,
    responses((status = 200, body = ContactInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn add(State(m): S, body: Result<Json<AddContact>, JsonRejection>) -> ApiResult<ContactInfo> {
    let Json(body) = body?;
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
