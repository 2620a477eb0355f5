//! The storage wing's API routes (behind the runtime's authentication; errors through
//! [`bitdust_node::http::ApiError`]; bodies are [`bitdust_api`] types).
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/api/v1/suppliers` | | [`Suppliers`]: positions, peer ids, contracts, state |
//! | POST | `/api/v1/suppliers/hire` | | hires up to n suppliers; [`Suppliers`] (503 if too few are online) |
//! | POST | `/api/v1/suppliers/{position}/replace` | | [`Replacing`]: asks hire/fire to replace that supplier |
//! | GET | `/api/v1/health` | | [`Health`]: per version, blocks full / degraded / lost, lost files; the queue |
//! | GET | `/api/v1/backups` | | [`Backups`]: backups and their versions |
//! | POST | `/api/v1/backups` | [`BackupRequest`] | [`JobStarted`] |
//! | GET | `/api/v1/backups/{name}/diff?from=A&to=B` | | [`VersionDiff`]: added, removed, changed (404 unknown backup or version) |
//! | GET | `/api/v1/find?pattern=GLOB` | | [`FindResult`]: entries of every version whose name or path matches (400 bad pattern) |
//! | GET | `/api/v1/schedules` | | [`BackupSets`]: the backup sets the daemon runs, last and next runs |
//! | POST | `/api/v1/schedules` | [`ScheduleRequest`] | [`BackupSet`]: a new set, first run now (400 bad path, interval or pattern) |
//! | DELETE | `/api/v1/schedules/{id}` | | [`BackupSet`]: the set removed (404 unknown) |
//! | POST | `/api/v1/check` | [`CheckRequest`] | [`CheckReport`]: catalog copies, indexes, trees, and fragments read back (400 percent out of range) |
//! | POST | `/api/v1/prune` | [`PruneRequest`] | [`PruneReport`]: blocks no kept incremental version uses deleted from the suppliers |
//! | POST | `/api/v1/backups/{name}/forget` | [`ForgetRequest`] | [`ForgetReport`]: versions the policy does not keep removed, their fragments deleted (400 no rule, 404 unknown backup) |
//! | GET | `/api/v1/backups/{name}/files?version=N&dir=PATH` | | [`VersionFiles`]: one folder of a version's tree (404 unknown backup, version or folder) |
//! | POST | `/api/v1/restores` | [`RestoreRequest`] | [`JobStarted`] (404 unknown backup or version, 409 target not empty) |
//! | GET | `/api/v1/store` | | [`StoreUsage`]: what this node stores as a supplier |

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitdust_api::{
    BackupInfo, BackupRequest, BackupSet, BackupSets, Backups, CheckReport, CheckRequest, CustomerUsage, DiffQuery,
    ErrorBody, FilesQuery, FindQuery, FindResult, ForgetReport, ForgetRequest, Health, JobResult, JobStarted,
    PositionHealth, PruneReport, PruneRequest, Replacing, RestoreRequest, ScheduleRequest, StoreUsage, Supplier,
    Suppliers, VersionDiff, VersionFiles,
};
use bitdust_node::http::{ApiError, ApiResult, ErrorKind, JsonObject};
use utoipa::OpenApi;

use crate::service::customer::prepare_target;
use crate::service::Storage;

type S = State<Arc<Storage>>;

/// The routes, bound to `storage`.
pub(crate) fn router(storage: Arc<Storage>) -> Router {
    Router::new()
        .route("/api/v1/suppliers", get(suppliers))
        .route("/api/v1/suppliers/hire", post(hire))
        .route("/api/v1/suppliers/{position}/replace", post(replace))
        .route("/api/v1/health", get(health))
        .route("/api/v1/backups", get(backups).post(start_backup))
        .route("/api/v1/backups/{name}/files", get(version_files))
        .route("/api/v1/backups/{name}/forget", post(forget))
        .route("/api/v1/prune", post(prune))
        .route("/api/v1/backups/{name}/diff", get(diff))
        .route("/api/v1/find", get(find))
        .route("/api/v1/check", post(check))
        .route("/api/v1/schedules", get(schedules).post(add_schedule))
        .route("/api/v1/schedules/{id}", axum::routing::delete(remove_schedule))
        .route("/api/v1/restores", post(start_restore))
        .route("/api/v1/store", get(store))
        .with_state(storage)
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    suppliers,
    hire,
    replace,
    health,
    backups,
    version_files,
    forget,
    prune,
    start_backup,
    start_restore,
    store
))]
struct StorageApi;

/// The storage wing's part of the OpenAPI document.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    StorageApi::openapi()
}

async fn suppliers_of(storage: &Storage) -> Result<Suppliers, ApiError> {
    let slots = storage.suppliers()?;
    let connected = storage.node().network().status().await.map_err(anyhow::Error::from)?.connected_peers;
    let views = storage.connections();
    let list = slots
        .iter()
        .map(|s| {
            let peer_id = s.peer().map(|p| p.to_string()).unwrap_or_default();
            // what maintenance knows, if it is about this supplier (not the one it replaced)
            let c = views.get(&s.position).filter(|c| c.peer.to_string() == peer_id);
            Supplier {
                position: s.position,
                connected: connected.contains(&peer_id),
                peer_id,
                state: c.map(|c| c.state.clone()),
                held_bytes: c.and_then(|c| c.holds).map(|h| h.0),
                held_fragments: c.and_then(|c| c.holds).map(|h| h.1),
                needed_bytes: s.contract.as_ref().map(|c| c.contract.needed_bytes),
                contract_start_unix: s.contract.as_ref().map(|c| c.contract.start_unix),
                hired_unix: s.hired_unix,
            }
        })
        .collect();
    Ok(Suppliers { wanted: storage.config().customer.suppliers, suppliers: list })
}

/// The hired suppliers, by position.
#[utoipa::path(get, path = "/api/v1/suppliers", tag = "storage", responses((status = 200, body = Suppliers)))]
async fn suppliers(State(s): S) -> ApiResult<Suppliers> {
    Ok(Json(suppliers_of(&s).await?))
}

/// Hires suppliers until every position is filled.
#[utoipa::path(
    post, path = "/api/v1/suppliers/hire", tag = "storage",
    responses((status = 200, body = Suppliers), (status = 503, body = ErrorBody, description = "Too few suppliers online"))
)]
async fn hire(State(s): S) -> ApiResult<Suppliers> {
    s.ensure_suppliers().await.map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))?;
    Ok(Json(suppliers_of(&s).await?))
}

/// Removes the versions a keep policy does not keep (restic's `forget`, with its prune: their fragments are
/// deleted from the suppliers); with `dry_run`, only says which.
#[utoipa::path(post, path = "/api/v1/backups/{name}/forget", tag = "storage",
    params(("name" = String, Path, description = "The backup")), request_body = ForgetRequest,
    responses((status = 200, body = ForgetReport), (status = 400, body = ErrorBody, description = "No keep rule"),
        (status = 404, body = ErrorBody, description = "No such backup")))]
async fn forget(
    State(s): S,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    JsonObject(body): JsonObject<ForgetRequest>,
) -> ApiResult<ForgetReport> {
    use crate::service::customer::forget::ForgetError;
    let Path(name) = name?;
    // an unknown backup first (404), whatever else is wrong with the request
    if s.catalog()?.backup(&name).filter(|b| !crate::service::vault::is_vault_backup(&b.name)).is_none() {
        return Err(ApiError::not_found(ForgetError::Unknown(name).to_string()));
    }
    let keep = crate::proto::policy::KeepPolicy {
        last: body.keep_last,
        hourly: body.keep_hourly,
        daily: body.keep_daily,
        weekly: body.keep_weekly,
        monthly: body.keep_monthly,
        yearly: body.keep_yearly,
    };
    match s.forget(&name, &keep, body.dry_run).await {
        Ok(r) => Ok(Json(r)),
        Err(e) => Err(match e.downcast_ref::<ForgetError>() {
            Some(ForgetError::Unknown(_)) => ApiError::not_found(e.to_string()),
            Some(ForgetError::NoPolicy) => ApiError::bad_request(e.to_string()),
            None => ApiError::from(e),
        }),
    }
}

/// What changed between two versions of a backup: added, removed and changed entries (a folder added or removed
/// counts once). Incremental versions skip the folders whose trees are the same.
#[utoipa::path(get, path = "/api/v1/backups/{name}/diff", tag = "storage",
    params(("name" = String, Path, description = "The backup"), DiffQuery),
    responses((status = 200, body = VersionDiff), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such backup or version"),
        (status = 503, body = ErrorBody, description = "A tree could not be read from the suppliers")))]
async fn diff(
    State(s): S,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<axum::extract::Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<VersionDiff> {
    let Path(name) = name?;
    let catalog = s.catalog()?;
    let backup = catalog
        .backup(&name)
        .filter(|b| !crate::service::vault::is_vault_backup(&b.name))
        .ok_or_else(|| ApiError::not_found(format!("no backup named {name:?}")))?;
    let axum::extract::Query(q) = query?;
    for n in [q.from, q.to] {
        if !backup.versions.iter().any(|v| v.number == n) {
            return Err(ApiError::not_found(format!("backup {name:?} has no version {n}")));
        }
    }
    s.diff(&name, q.from, q.to).await.map(Json).map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))
}

/// Every entry of every version of every backup whose name or whole path matches a glob.
#[utoipa::path(get, path = "/api/v1/find", tag = "storage", params(FindQuery),
    responses((status = 200, body = FindResult), (status = 400, body = ErrorBody, description = "A bad pattern"),
        (status = 503, body = ErrorBody, description = "A tree could not be read from the suppliers")))]
async fn find(
    State(s): S,
    query: Result<axum::extract::Query<FindQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<FindResult> {
    let axum::extract::Query(q) = query?;
    if let Err(e) = globset::Glob::new(&q.pattern) {
        return Err(ApiError::bad_request(format!("bad pattern {:?}: {e}", q.pattern)));
    }
    s.find(&q.pattern).await.map(Json).map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))
}

/// Verifies the catalog copies on the suppliers, the index objects and the trees; with `read_data_percent`, fetches
/// every fragment of that share of the blocks and checks it. Problems are in the report (`ok` false), not errors.
#[utoipa::path(post, path = "/api/v1/check", tag = "storage", request_body = CheckRequest,
    responses((status = 200, body = CheckReport), (status = 400, body = ErrorBody, description = "A percent out of range")))]
async fn check(State(s): S, JsonObject(body): JsonObject<CheckRequest>) -> ApiResult<CheckReport> {
    if let Some(p) = body.read_data_percent {
        if !(0.0..=100.0).contains(&p) {
            return Err(ApiError::bad_request(format!("read_data_percent must be from 0 to 100, not {p}")));
        }
    }
    Ok(Json(s.check(body.read_data_percent).await?))
}

/// The backup sets the daemon runs, with their last and next runs.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "storage", responses((status = 200, body = BackupSets)))]
async fn schedules(State(s): S) -> ApiResult<BackupSets> {
    Ok(Json(BackupSets { sets: s.backup_sets()? }))
}

/// Adds a backup set; its first run starts now.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "storage", request_body = ScheduleRequest,
    responses((status = 200, body = BackupSet),
        (status = 400, body = ErrorBody, description = "A relative or missing path, an interval under a minute, a bad pattern")))]
async fn add_schedule(State(s): S, JsonObject(body): JsonObject<ScheduleRequest>) -> ApiResult<BackupSet> {
    use crate::service::customer::schedule::ScheduleError;
    s.add_backup_set(body).map(Json).map_err(|e| match e.downcast_ref::<ScheduleError>() {
        Some(ScheduleError::Bad(m)) => ApiError::bad_request(m.clone()),
        _ => ApiError::from(e),
    })
}

/// Removes a backup set (its versions stay).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "storage",
    params(("id" = u32, Path, description = "The set")),
    responses((status = 200, body = BackupSet), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such set")))]
async fn remove_schedule(
    State(s): S,
    id: Result<Path<u32>, axum::extract::rejection::PathRejection>,
) -> ApiResult<BackupSet> {
    use crate::service::customer::schedule::ScheduleError;
    let Path(id) = id?;
    s.remove_backup_set(id).map(Json).map_err(|e| match e.downcast_ref::<ScheduleError>() {
        Some(ScheduleError::Unknown(_)) => ApiError::not_found(e.to_string()),
        _ => ApiError::from(e),
    })
}

/// Deletes from the suppliers every block no kept incremental version uses (restic's `prune`); with `dry_run`,
/// only says what it would delete. Waits for a running backup.
#[utoipa::path(post, path = "/api/v1/prune", tag = "storage", request_body = PruneRequest,
    responses((status = 200, body = PruneReport), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "A tree or the index could not be read: nothing changed")))]
async fn prune(State(s): S, JsonObject(body): JsonObject<PruneRequest>) -> ApiResult<PruneReport> {
    s.prune(body.dry_run.unwrap_or(false))
        .await
        .map(Json)
        .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))
}

/// One folder of a version's tree, from the catalog (nothing is fetched from the suppliers).
#[utoipa::path(get, path = "/api/v1/backups/{name}/files", tag = "storage",
    params(("name" = String, Path, description = "The backup"), FilesQuery),
    responses((status = 200, body = VersionFiles), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such backup, version or folder"),
        (status = 503, body = ErrorBody, description = "An incremental version's trees could not be read from the suppliers")))]
async fn version_files(
    State(s): S,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<axum::extract::Query<FilesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<VersionFiles> {
    let (Path(name), axum::extract::Query(q)) = (name?, query?);
    let catalog = s.catalog()?;
    let backup = catalog
        .backup(&name)
        .filter(|b| !crate::service::vault::is_vault_backup(&b.name))
        .ok_or_else(|| ApiError::not_found(format!("no backup named {name:?}")))?;
    let version = match q.version {
        Some(n) => backup.versions.iter().find(|v| v.number == n),
        None => backup.versions.last(),
    }
    .ok_or_else(|| ApiError::not_found(format!("{name} has no version {}", q.version.unwrap_or(0))))?;
    let dir = q.dir.trim_matches('/').as_bytes().to_vec();
    if let Some(snapshot) = catalog.snapshot(version) {
        let listed = s
            .list_snapshot_dir(&catalog, snapshot, &dir)
            .await
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("{e:#}")))?
            .ok_or_else(|| ApiError::not_found(format!("no folder {:?} in {name}@{}", q.dir, version.number)))?;
        let mut entries: Vec<bitdust_api::SharedEntry> = listed.iter().map(crate::service::share::api_entry).collect();
        entries.sort_by(|a, b| (a.kind != "dir", &a.path).cmp(&(b.kind != "dir", &b.path)));
        let more = entries.len().saturating_sub(bitdust_api::MAX_LISTED_ENTRIES);
        entries.truncate(bitdust_api::MAX_LISTED_ENTRIES);
        return Ok(Json(VersionFiles {
            backup: name,
            version: version.number,
            dir: String::from_utf8_lossy(&dir).into_owned(),
            entries,
            more,
        }));
    }
    let is_dir = dir.is_empty()
        || version.entries.iter().any(|e| e.path == dir && matches!(e.kind, crate::proto::catalog::EntryKind::Dir));
    if !is_dir {
        return Err(ApiError::not_found(format!("no folder {:?} in {name}@{}", q.dir, version.number)));
    }
    let prefix = if dir.is_empty() { Vec::new() } else { [dir.as_slice(), b"/"].concat() };
    let mut entries: Vec<bitdust_api::SharedEntry> = version
        .entries
        .iter()
        .filter(|e| !e.path.is_empty() && e.path.starts_with(&prefix) && !e.path[prefix.len()..].contains(&b'/'))
        .map(crate::service::share::api_entry)
        .collect();
    entries.sort_by(|a, b| (a.kind != "dir", &a.path).cmp(&(b.kind != "dir", &b.path)));
    let more = entries.len().saturating_sub(bitdust_api::MAX_LISTED_ENTRIES);
    entries.truncate(bitdust_api::MAX_LISTED_ENTRIES);
    Ok(Json(VersionFiles {
        backup: name,
        version: version.number,
        dir: String::from_utf8_lossy(&dir).into_owned(),
        entries,
        more,
    }))
}

/// Backups and their versions.
#[utoipa::path(get, path = "/api/v1/backups", tag = "storage", responses((status = 200, body = Backups)))]
async fn backups(State(s): S) -> ApiResult<Backups> {
    let catalog = s.catalog()?;
    let backups = catalog
        .backups
        .iter()
        .filter(|b| !crate::service::vault::is_vault_backup(&b.name))
        .map(|b| BackupInfo {
            name: b.name.clone(),
            source: String::from_utf8_lossy(&b.source).into_owned(),
            versions: b.versions.iter().map(|v| crate::service::share::version_info(v, catalog.snapshot(v))).collect(),
        })
        .collect();
    Ok(Json(Backups { revision: catalog.revision, backups }))
}

/// Backs up a file or folder (a new version); a job.
#[utoipa::path(
    post, path = "/api/v1/backups", tag = "storage", request_body = BackupRequest,
    responses((status = 200, body = JobStarted), (status = 400, body = ErrorBody, description = "Not an absolute path, or unreadable"))
)]
async fn start_backup(State(s): S, JsonObject(body): JsonObject<BackupRequest>) -> ApiResult<JobStarted> {
    let path = PathBuf::from(&body.path);
    if !path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    std::fs::symlink_metadata(&path)
        .map_err(|e| ApiError::bad_request(format!("cannot back up {}: {e}", path.display())))?;
    let excludes = crate::service::archive::Excludes {
        patterns: body.exclude.clone(),
        caches: body.exclude_caches,
        one_file_system: body.one_file_system,
    };
    // a bad pattern is the request's fault: refused now, not as a failed job
    crate::service::archive::check_patterns(&path, &excludes.patterns)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let storage = s.clone();
    let (job, event_id) = s.node().jobs().spawn("backup", body.path.clone(), move |progress| async move {
        Ok(JobResult::Backup(storage.backup_with(&path, &excludes, progress).await?))
    });
    Ok(Json(JobStarted { job, event_id }))
}

/// Restores a version into a folder; a job.
#[utoipa::path(
    post, path = "/api/v1/restores", tag = "storage", request_body = RestoreRequest,
    responses(
        (status = 200, body = JobStarted),
        (status = 400, body = ErrorBody, description = "Not an absolute path, or not a folder"),
        (status = 404, body = ErrorBody, description = "No such backup or version"),
        (status = 409, body = ErrorBody, description = "The target is not empty (use force)")
    )
)]
async fn start_restore(State(s): S, JsonObject(body): JsonObject<RestoreRequest>) -> ApiResult<JobStarted> {
    let to = PathBuf::from(&body.to);
    if !to.is_absolute() {
        return Err(ApiError::bad_request("target must be absolute"));
    }
    let catalog = s.catalog()?;
    let Some(backup) = catalog.backup(&body.name) else {
        return Err(ApiError::not_found(format!("no backup named {:?}", body.name)));
    };
    if let Some(v) = body.version {
        if !backup.versions.iter().any(|x| x.number == v) {
            return Err(ApiError::not_found(format!("backup {:?} has no version {v}", body.name)));
        }
    }
    if let Some(p) = body.path.as_deref().filter(|p| !p.trim_matches('/').is_empty()) {
        s.check_restore_path(&catalog, backup, body.version, p)
            .await
            .map_err(|e| ApiError::not_found(format!("{e:#}")))?;
    }
    match std::fs::metadata(&to) {
        Ok(m) if m.is_dir() && !body.force && std::fs::read_dir(&to).is_ok_and(|mut d| d.next().is_some()) => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("restore target {} is not empty (use --force to restore into it anyway)", to.display()),
            ));
        }
        _ => prepare_target(&to, body.force).map_err(|e| ApiError::bad_request(format!("{e:#}")))?,
    }
    let target = format!("{}{}", body.name, body.version.map(|v| format!("@{v}")).unwrap_or_default());
    let path = body.path.clone().filter(|p| !p.trim_matches('/').is_empty());
    let storage = s.clone();
    let (job, event_id) = s.node().jobs().spawn("restore", target, move |progress| async move {
        Ok(JobResult::Restore(
            storage.restore_path(&body.name, body.version, path.as_deref(), &to, true, progress).await?,
        ))
    });
    Ok(Json(JobStarted { job, event_id }))
}

/// What this node stores for customers.
#[utoipa::path(get, path = "/api/v1/store", tag = "storage", responses((status = 200, body = StoreUsage)))]
async fn store(State(s): S) -> ApiResult<StoreUsage> {
    let Some(store) = s.store().cloned() else {
        return Ok(Json(StoreUsage { supplier: false, customers: Vec::new() }));
    };
    let usage = tokio::task::spawn_blocking(move || store.usage())
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    let customers = usage
        .into_iter()
        .map(|u| CustomerUsage {
            customer: u.customer,
            position: u.position,
            used_bytes: u.used_bytes,
            fragments: u.fragments,
            needed_bytes: u.needed_bytes,
            contract_ends_unix: u.ends_unix,
        })
        .collect();
    Ok(Json(StoreUsage { supplier: true, customers }))
}

/// Per version: blocks full, degraded or lost, and the files lost; the rebuild queue.
#[utoipa::path(get, path = "/api/v1/health", tag = "storage", responses((status = 200, body = Health)))]
async fn health(State(s): S) -> ApiResult<Health> {
    let queue = s.rebuild_queue()?;
    Ok(Json(Health {
        versions: s.health()?,
        rebuild_queue_blocks: queue.len(),
        rebuild_queue_fragments: queue.iter().map(|q| q.positions.len()).sum(),
        positions: s
            .connections()
            .into_iter()
            .map(|(position, c)| PositionHealth {
                position,
                peer_id: c.peer.to_string(),
                state: c.state,
                healthy: !c.down && c.failing_audits == 0,
                audits_passed: c.audits_passed,
                failing_audits: c.failing_audits,
                last_audit_passed_unix_ms: c.last_audit_passed_ms,
                last_audit_error: c.last_audit_error,
            })
            .collect(),
    }))
}

/// Asks hire/fire to replace the supplier at `position`.
#[utoipa::path(
    post, path = "/api/v1/suppliers/{position}/replace", tag = "storage",
    params(("position" = u16, Path, description = "Position (0-based shard index)", minimum = 0, maximum = 65535)),
    responses(
        (status = 200, body = Replacing),
        (status = 400, body = ErrorBody, description = "Not a position"),
        (status = 404, body = ErrorBody, description = "No supplier at that position")
    )
)]
async fn replace(
    State(s): S,
    position: Result<Path<u16>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Replacing> {
    let Path(position) = position?;
    if !s.suppliers()?.iter().any(|x| x.position == position) {
        return Err(ApiError::not_found(format!("no supplier at position {position}")));
    }
    s.request_replacement(position).await?;
    Ok(Json(Replacing { replacing: position }))
}
