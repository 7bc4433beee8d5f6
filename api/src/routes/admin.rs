//! Operations: read-model status and rebuilds.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use expensewise_domain::Role;
use expensewise_projections::{rebuild, status};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::state::AppState;

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
    let rebuilding = app
        .rebuilding
        .lock()
        .map(|set| set.clone())
        .unwrap_or_default();
    let views = status::status(&app.db)
        .await?
        .into_iter()
        .map(|s| ProjectionView {
            name: s.name.to_string(),
            position: s.position.to_string(),
            head_position: s.head.to_string(),
            lag: s.lag,
            status: if rebuilding.contains(s.name) {
                ProjectionState::Rebuilding
            } else if s.lag == 0 {
                ProjectionState::CaughtUp
            } else {
                ProjectionState::CatchingUp
            },
        })
        .collect();
    Ok(Json(views))
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
    let model = status::find(&name).ok_or_else(|| ApiError::not_found("no such read model"))?;
    {
        let mut running = app
            .rebuilding
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the rebuild registry is poisoned")))?;
        if !running.insert(model.name) {
            return Err(ApiError::conflict(
                "a rebuild of this read model is already running",
            ));
        }
    }
    let task_app = app.clone();
    tokio::spawn(async move {
        let result = rebuild::rebuild(
            &task_app.db,
            task_app.store.vault(),
            model.live.as_ref(),
            model.shadow.as_ref(),
            true,
            &|_| {},
        )
        .await;
        match result {
            Ok(report) => tracing::info!(
                projection = model.name,
                events = report.events,
                events_per_second = report.events_per_second(),
                identical = report.identical(),
                "read model rebuilt and swapped in"
            ),
            Err(e) => tracing::error!(
                projection = model.name,
                error = format!("{e:#}"),
                "rebuild failed"
            ),
        }
        if let Ok(mut running) = task_app.rebuilding.lock() {
            running.remove(model.name);
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(RebuildAccepted {
            name: model.name.to_string(),
            status: ProjectionState::Rebuilding,
        }),
    ))
}
