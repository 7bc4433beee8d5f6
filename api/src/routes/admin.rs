//! Operations: read-model status and rebuilds, and the dead letters of workers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use expensewise_domain::Role;
use expensewise_projections::{rebuild, status};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::state::{AppState, RebuildRun};

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionState {
    /// Every stored event is applied.
    CaughtUp,
    /// Events are waiting to be applied.
    CatchingUp,
    /// A rebuild is running; the old model keeps serving until it swaps.
    Rebuilding,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionView {
    pub name: String,
    /// The last applied event's global position (`txid.position`).
    pub position: String,
    /// The newest event's global position.
    pub head_position: String,
    /// Events not applied yet.
    pub lag: i64,
    pub status: ProjectionState,
    /// The latest rebuild this server ran (or runs), if any since it started.
    pub last_rebuild: Option<RebuildView>,
    /// While its projector keeps failing: its last error.
    pub last_error: Option<String>,
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a rebuild found when it compared the rebuilt model with the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebuildVerdict {
    /// Still running.
    Running,
    /// The checksums of both models matched.
    Identical,
    /// They differed: the rebuilt one (from the events) replaced the live one.
    Different,
    /// The live model was too far behind to be compared.
    NotCompared,
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildView {
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Events applied so far.
    pub applied: u64,
    /// Events in the store when it started.
    pub total: u64,
    pub verdict: RebuildVerdict,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The checksum of the rebuilt model.
    pub checksum: Option<String>,
    pub error: Option<String>,
}

impl RebuildView {
    pub fn new(run: &RebuildRun) -> Self {
        let outcome = run.outcome();
        let (verdict, checksum, error, applied) = match outcome.as_ref().map(|o| &o.result) {
            None => (RebuildVerdict::Running, None, None, run.applied()),
            Some(Ok(report)) => (
                match &report.live_checksum {
                    None => RebuildVerdict::NotCompared,
                    Some(_) if report.identical() => RebuildVerdict::Identical,
                    Some(_) => RebuildVerdict::Different,
                },
                Some(report.rebuilt_checksum.clone()),
                None,
                report.events,
            ),
            Some(Err(e)) => (RebuildVerdict::Failed, None, Some(e.clone()), run.applied()),
        };
        RebuildView {
            started_at: run.started_at,
            applied,
            total: run.total.max(applied),
            verdict,
            finished_at: outcome.map(|o| o.finished_at),
            checksum,
            error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildAccepted {
    pub name: String,
    pub status: ProjectionState,
}

fn require_admin(user: &AuthUser) -> ApiResult<()> {
    if user.actor.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins operate read models"))
    }
}

/// Where each read model stands
#[utoipa::path(
    get, path = "/v1/admin/projections", tag = "operations",
    responses(
        (status = 200, description = "Every read model", body = Vec<ProjectionView>),
        (status = 403, description = "Admins only"),
    ),
    security(("bearer" = []))
)]
pub async fn list_projections(
    State(app): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<ProjectionView>>> {
    require_admin(&user)?;
    Ok(Json(projections(&app).await?))
}

/// Every read model's standing, and its latest rebuild here.
pub async fn projections(app: &AppState) -> ApiResult<Vec<ProjectionView>> {
    Ok(status::status(&app.db)
        .await?
        .into_iter()
        .map(|s| {
            let last_rebuild = app
                .rebuilds
                .latest(s.name)
                .map(|run| RebuildView::new(&run));
            ProjectionView {
                name: s.name.to_string(),
                position: s.position.to_string(),
                head_position: s.head.to_string(),
                lag: s.lag,
                status: if last_rebuild
                    .as_ref()
                    .is_some_and(|r| r.verdict == RebuildVerdict::Running)
                {
                    ProjectionState::Rebuilding
                } else if s.lag == 0 {
                    ProjectionState::CaughtUp
                } else {
                    ProjectionState::CatchingUp
                },
                last_rebuild,
                last_error: s.last_error.as_ref().map(|(e, _)| e.clone()),
                last_error_at: s.last_error.map(|(_, at)| at),
            }
        })
        .collect())
}

/// Rebuild a read model from the events, beside the live one
#[utoipa::path(
    post, path = "/v1/admin/projections/{name}/rebuild", tag = "operations",
    params(("name" = String, Path, description = "The read model, e.g. `expenses`")),
    responses(
        (status = 202, description = "The rebuild started; the old model serves until the new one has caught up", body = RebuildAccepted),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such read model"),
        (status = 409, description = "A rebuild of it is already running"),
    ),
    security(("bearer" = []))
)]
pub async fn rebuild_projection(
    State(app): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<RebuildAccepted>)> {
    require_admin(&user)?;
    let model = start_rebuild(&app, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RebuildAccepted {
            name: model.to_string(),
            status: ProjectionState::Rebuilding,
        }),
    ))
}

/// Starts rebuilding the read model `name` in the background; its progress and verdict
/// are in [`projections`].
pub async fn start_rebuild(app: &AppState, name: &str) -> ApiResult<&'static str> {
    let model = status::find(name).ok_or_else(|| ApiError::not_found("no such read model"))?;
    let total = status::events_after(&app.db, Default::default())
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let run = app
        .rebuilds
        .start(model.name, u64::try_from(total).unwrap_or_default())
        .ok_or_else(|| ApiError::conflict("a rebuild of this read model is already running"))?;
    let task_app = app.clone();
    let name = model.name;
    tokio::spawn(async move {
        let result = rebuild::rebuild(
            &task_app.db,
            task_app.store.vault(),
            model.live.as_ref(),
            model.shadow.as_ref(),
            true,
            &|applied| run.progress(applied),
        )
        .await;
        match &result {
            Ok(report) => tracing::info!(
                projection = name,
                events = report.events,
                events_per_second = report.events_per_second(),
                identical = report.identical(),
                "read model rebuilt and swapped in"
            ),
            Err(e) => tracing::error!(
                projection = name,
                error = format!("{e:#}"),
                "rebuild failed"
            ),
        }
        run.finish(result.map_err(|e| format!("{e:#}")));
    });
    Ok(name)
}
