//! The audit log: every event of the organization, straight from the event store, and
//! the proofs that it is whole (docs/audit-log.md): signed checkpoints, inclusion of an
//! event, consistency of two checkpoints.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::SecondsFormat;
use chrono::{DateTime, Utc};
use expensewise_domain::merkle::Hash;
use expensewise_domain::Role;
use expensewise_infra::audit_log::{self, StoredCheckpoint};
use expensewise_infra::event_store::{read_filtered, AuditFilter};
use expensewise_infra::{Database, GlobalPosition, Vault};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::EventView;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::state::AppState;
use uuid::Uuid;

pub const NDJSON: &str = "application/x-ndjson";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Events per database round trip while streaming.
const STREAM_PAGE: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only events after this global position (`txid.position`, the `next_after` of
    /// the previous page).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100). Ignored when streaming NDJSON.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// Recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this time.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; `null` when there was no more.
    pub next_after: Option<String>,
}

/// One NDJSON line per event, the format of `GET /v1/audit/events` streams and of
/// `expensewise audit export`.
pub fn ndjson_line(view: &EventView) -> Vec<u8> {
    let mut line = serde_json::to_vec(view).unwrap_or_default();
    line.push(b'\n');
    line
}

/// All matching events after `after`, page by page, as NDJSON.
pub fn ndjson_stream(
    db: Database,
    vault: Vault,
    filter: AuditFilter,
    after: GlobalPosition,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::try_unfold(Some(after), move |cursor| {
        let (db, vault, filter) = (db.clone(), vault.clone(), filter.clone());
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let events = read_filtered(&db, &filter, cursor, STREAM_PAGE)
                .await
                .map_err(std::io::Error::other)?;
            let next = (events.len() as i64 == STREAM_PAGE)
                .then(|| events.last().map(|e| e.global))
                .flatten();
            if events.is_empty() {
                return Ok(None);
            }
            let views = EventView::for_clients(&db, &vault, events)
                .await
                .map_err(std::io::Error::other)?;
            let chunk: Vec<u8> = views.iter().flat_map(ndjson_line).collect();
            Ok(Some((chunk, next)))
        }
    })
}

/// The organization's events in global order (auditors and admins)
///
/// Read from the event store, not a read model: an event shows as soon as every
/// transaction begun before it on the database server has ended (the global order's rule).
/// The caller's own latest write is waited for (at most 5 s, then 503 with `Retry-After`).
#[utoipa::path(
    get, path = "/v1/audit/events", tag = "audit",
    params(AuditParams, ("Accept" = Option<String>, Header, description = "`application/x-ndjson` streams every matching event, one per line")),
    responses(
        (status = 200, description = "A page of events; with NDJSON, every matching event as one EventView per line",
         content((AuditPage = "application/json"), (String = "application/x-ndjson"))),
        (status = 403, description = "Auditors and admins only"),
        (status = 422, description = "Invalid query"),
        (status = 503, description = "The caller's own latest write is not readable yet; retry after `Retry-After`"),
    ),
    security(("bearer" = []))
)]
pub async fn audit_events(
    State(app): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    if !matches!(user.actor.role, Role::Auditor | Role::Admin) {
        return Err(ApiError::forbidden(
            "only auditors and admins read the audit log",
        ));
    }
    let after = match params.after.as_deref() {
        None => GlobalPosition::default(),
        Some(a) => a.parse().map_err(|_| {
            ApiError::invalid_field("after", "is not a global position like 1234.56")
        })?,
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    super::consistency::wait_for_global_order(&app, &user).await?;
    let filter = AuditFilter {
        organization_id: Some(user.actor.organization_id.to_string()),
        aggregate_type: params.aggregate_type,
        aggregate_id: params.aggregate_id,
        event_type: params.event_type,
        from: params.from,
        to: params.to,
    };
    let wants_ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    if wants_ndjson {
        let body = Body::from_stream(ndjson_stream(
            app.db.clone(),
            app.store.vault().clone(),
            filter,
            after,
        ));
        return Ok((
            [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
            body,
        )
            .into_response());
    }
    let events = read_filtered(&app.db, &filter, after, limit)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.global.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        events: EventView::opened(&app, events).await?,
        next_after,
    })
    .into_response())
}

fn auditor(user: &AuthUser) -> ApiResult<()> {
    match user.actor.role {
        Role::Auditor | Role::Admin => Ok(()),
        _ => Err(ApiError::forbidden(
            "only auditors and admins read the audit log",
        )),
    }
}

fn b64(hash: &Hash) -> String {
    B64.encode(hash)
}

fn text_plain(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The audit log's public key
///
/// The Ed25519 key that signs every checkpoint, as C2SP signed-note verifiers take it:
/// `<name>+<key id>+<base64 key>`. Auditors keep it apart from the product and verify
/// checkpoints and bundles with it (docs/audit-log.md).
#[utoipa::path(
    get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, description = "The verifier key", content_type = "text/plain", body = String)),
)]
pub async fn public_key(State(app): State<AppState>) -> Response {
    text_plain(format!("{}\n", app.audit_signer.verifier_key()))
}

/// The newest signed checkpoint
///
/// A C2SP tlog-checkpoint (origin, tree size, base64 root hash) in a signed note.
#[utoipa::path(
    get, path = "/v1/audit/checkpoint", tag = "audit",
    responses(
        (status = 200, description = "The signed checkpoint", content_type = "text/plain", body = String),
        (status = 403, description = "Auditors and admins only"),
        (status = 404, description = "No checkpoint has been signed yet"),
    ),
    security(("bearer" = []))
)]
pub async fn checkpoint(State(app): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    auditor(&user)?;
    let latest = audit_log::latest_checkpoint(&app.db)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))?;
    Ok(text_plain(latest.note))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// The tree to prove the event in: the size of a signed checkpoint (default: the
    /// newest).
    pub tree_size: Option<u64>,
}

/// An event as it is hashed into its leaf: the canonical JSON (RFC 8785) of this object
/// is the leaf's bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeafView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// As stored: personal fields sealed.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// RFC 3339, UTC, six fractional digits.
    pub recorded_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub event_id: Uuid,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// What the leaf hashes.
    pub leaf: LeafView,
    /// SHA-256(0x00 ‖ leaf bytes), base64.
    pub leaf_hash: String,
    /// The RFC 9162 inclusion path, base64 hashes from the leaf up.
    pub proof: Vec<String>,
    /// The signed checkpoint of `tree_size` leaves.
    pub checkpoint: String,
}

/// A signed checkpoint of exactly `size` leaves, or the newest when `size` is not given.
async fn signed_tree(app: &AppState, size: Option<u64>) -> ApiResult<StoredCheckpoint> {
    let found = match size {
        Some(size) => audit_log::checkpoint_of_size(&app.db, size).await,
        None => audit_log::latest_checkpoint(&app.db).await,
    }
    .map_err(ApiError::internal)?;
    found.ok_or_else(|| match size {
        Some(size) => ApiError::not_found(format!("no checkpoint signs a tree of {size} leaves")),
        None => ApiError::not_found("no checkpoint has been signed yet"),
    })
}

/// Proof that an event is in the log
///
/// The event as hashed, and its inclusion path to the root of a signed checkpoint: an
/// auditor checks it with nothing of ours (docs/audit-log.md, "Proofs"). Other
/// organizations' events are not found; their leaves appear only as hashes.
#[utoipa::path(
    get, path = "/v1/audit/events/{id}/proof", tag = "audit",
    params(("id" = Uuid, Path, description = "The event id"), ProofParams),
    responses(
        (status = 200, description = "The event as hashed, and its path to the signed root", body = InclusionProof),
        (status = 403, description = "Auditors and admins only"),
        (status = 404, description = "No such event of the organization in that tree (an event is in the log within moments of its commit)"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn event_proof(
    State(app): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<Uuid>,
    Query(params): Query<ProofParams>,
) -> ApiResult<Json<InclusionProof>> {
    auditor(&user)?;
    let not_found = || ApiError::not_found(format!("event {event_id} is not in the log"));
    let leaf = audit_log::leaf_of(&app.db, event_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|l| l.organization_id.as_deref() == Some(&user.actor.organization_id.to_string()))
        .ok_or_else(not_found)?;
    let tree = signed_tree(&app, params.tree_size).await?;
    if leaf.index >= tree.tree_size {
        return Err(ApiError::not_found(format!(
            "event {event_id} is not in the tree of {} leaves",
            tree.tree_size
        )));
    }
    let filter = AuditFilter {
        organization_id: Some(user.actor.organization_id.to_string()),
        aggregate_type: Some(leaf.event.aggregate_type.clone()),
        aggregate_id: Some(leaf.event.aggregate_id.clone()),
        ..AuditFilter::default()
    };
    // A stream's events are few; the one wanted is read with them.
    let event = read_filtered(&app.db, &filter, GlobalPosition::default(), i64::MAX)
        .await
        .map_err(|e| ApiError::internal(e.into()))?
        .into_iter()
        .find(|e| e.sequence == leaf.event.sequence)
        .ok_or_else(not_found)?;
    let proof = audit_log::inclusion_proof(&app.db, leaf.index, tree.tree_size)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(InclusionProof {
        event_id,
        leaf_index: leaf.index,
        tree_size: tree.tree_size,
        leaf_hash: b64(&leaf.hash),
        proof: proof.iter().map(b64).collect(),
        checkpoint: tree.note,
        leaf: LeafView {
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: std::sync::Arc::unwrap_or_clone(event.payload),
            metadata: std::sync::Arc::unwrap_or_clone(event.metadata),
            recorded_at: event
                .recorded_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree's size (a signed checkpoint's).
    #[param(minimum = 1)]
    pub from: u64,
    /// The newer tree's size (a signed checkpoint's; default: the newest).
    #[param(minimum = 1)]
    pub to: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// The RFC 9162 consistency proof, base64 hashes (empty when the trees are equal).
    pub proof: Vec<String>,
    /// The signed checkpoints of both trees.
    pub from_checkpoint: String,
    pub to_checkpoint: String,
}

/// Proof that the log only grew
///
/// That the tree of `from` leaves is a prefix of the tree of `to` leaves: nothing
/// signed before was changed, dropped or reordered since.
#[utoipa::path(
    get, path = "/v1/audit/consistency", tag = "audit",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof, and both signed checkpoints", body = ConsistencyProof),
        (status = 403, description = "Auditors and admins only"),
        (status = 404, description = "No checkpoint signs a tree of that size"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn consistency(
    State(app): State<AppState>,
    user: AuthUser,
    Query(params): Query<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyProof>> {
    auditor(&user)?;
    let new = signed_tree(&app, params.to).await?;
    let old = signed_tree(&app, Some(params.from)).await?;
    if old.tree_size > new.tree_size {
        return Err(ApiError::invalid_field(
            "from",
            format!("must be at most the newer tree's size, {}", new.tree_size),
        ));
    }
    let proof = match old.tree_size == new.tree_size {
        true => Vec::new(),
        false => audit_log::consistency_proof(&app.db, old.tree_size, new.tree_size)
            .await
            .map_err(ApiError::internal)?,
    };
    Ok(Json(ConsistencyProof {
        from: old.tree_size,
        to: new.tree_size,
        proof: proof.iter().map(b64).collect(),
        from_checkpoint: old.note,
        to_checkpoint: new.note,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `ndjson` (default: every event, one per line), `csv` or `gdpdu` (a ZIP of the
    /// export's files: docs/audit-log.md, "Exports").
    #[param(pattern = "^(ndjson|csv|gdpdu)$")]
    pub format: Option<String>,
    /// Events recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events recorded before this time; the expenses as they stood then.
    pub to: Option<DateTime<Utc>>,
}

/// The organization's history to take away (auditors and admins)
///
/// NDJSON streams the events; `csv` and `gdpdu` answer a ZIP: the events of the period
/// and the expenses as they stood at its end (RFC 4180 CSV, or GDPdU with `index.xml`),
/// a GDPdU export with the audit log bundle and a SHA-256 manifest.
#[utoipa::path(
    get, path = "/v1/audit/export", tag = "audit",
    params(ExportParams),
    responses(
        (status = 200, description = "The export",
         content((String = "application/x-ndjson"), (super::receipts::FileBytes = "application/zip"))),
        (status = 403, description = "Auditors and admins only"),
        (status = 422, description = "Invalid query"),
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(app): State<AppState>,
    user: AuthUser,
    Query(params): Query<ExportParams>,
) -> ApiResult<Response> {
    auditor(&user)?;
    let organization = user.actor.organization_id;
    let format = match params.format.as_deref().unwrap_or("ndjson") {
        "ndjson" => None,
        other => Some(
            crate::export::Format::parse(other)
                .ok_or_else(|| ApiError::invalid_field("format", "is ndjson, csv or gdpdu"))?,
        ),
    };
    let Some(format) = format else {
        let filter = AuditFilter {
            organization_id: Some(organization.to_string()),
            from: params.from,
            to: params.to,
            ..AuditFilter::default()
        };
        let body = Body::from_stream(ndjson_stream(
            app.db.clone(),
            app.store.vault().clone(),
            filter,
            GlobalPosition::default(),
        ));
        return Ok((
            [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
            body,
        )
            .into_response());
    };
    let dir = tempfile::tempdir().map_err(|e| ApiError::internal(e.into()))?;
    let notes: Vec<String> = audit_log::all_checkpoints(&app.db)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|c| c.note)
        .collect();
    let scope = crate::export::Scope {
        organization,
        from: params.from,
        to: params.to,
    };
    crate::export::write(
        &app.db,
        app.store.vault(),
        dir.path(),
        format,
        &scope,
        &app.audit_signer.verifier_key(),
        &notes,
    )
    .await
    .map_err(ApiError::internal)?;
    let zipped = tokio::task::spawn_blocking(move || crate::export::zip_dir(dir.path()))
        .await
        .map_err(|e| ApiError::internal(e.into()))?
        .map_err(ApiError::internal)?;
    let name = match format {
        crate::export::Format::Csv => "csv",
        crate::export::Format::Gdpdu => "gdpdu",
    };
    let disposition = format!("attachment; filename=\"expensewise-{organization}-{name}.zip\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|e| ApiError::internal(e.into()))?,
            ),
        ],
        zipped,
    )
        .into_response())
}
