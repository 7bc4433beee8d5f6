//! Read-your-writes. A query answers only once its read model includes
//! - the caller's own latest write, found by the query itself (no header needed, and
//!   whichever API replica took the write: see [`AuthUser::last_write`]);
//! - for one resource, every write to it, by anyone ([`read_fresh`]);
//! - the write a consistency token names, when one is sent: how a client reads another
//!   user's write as soon as that user's command has answered.
//!
//! Each waits at most [`MAX_WAIT`], then the query answers 503 with `Retry-After`.

use std::future::Future;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use expensewise_infra::event_store::aggregate_head;
use expensewise_infra::GlobalPosition;
use expensewise_projections::ConsistencyError;

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::state::AppState;

/// The longest a query waits for its read model.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// `X-Consistency-Token` header or `?consistency_token=`.
pub struct ConsistencyToken(pub Option<GlobalPosition>);

impl<S: Send + Sync> FromRequestParts<S> for ConsistencyToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_header = parts
            .headers
            .get(super::CONSISTENCY_TOKEN)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "consistency_token")
                .map(|(_, v)| v.to_string())
        });
        match from_header.or(from_query) {
            None => Ok(ConsistencyToken(None)),
            Some(text) => text
                .parse()
                .map(|p| ConsistencyToken(Some(p)))
                .map_err(|_| {
                    ApiError::bad_request("X-Consistency-Token is not a token this API issued")
                }),
        }
    }
}

impl ConsistencyToken {
    /// Waits until read model `projection` includes the caller's own latest write and
    /// the token's write, if any.
    pub async fn wait(
        &self,
        app: &AppState,
        user: &AuthUser,
        projection: &str,
    ) -> Result<(), ApiError> {
        if let Some(token) = self.0 {
            refuse_beyond_head(app, projection, token).await?;
        }
        match self.0.max(user.last_write) {
            Some(write) => wait_for(app, projection, write).await,
            None => Ok(()),
        }
    }
}

/// A token beyond the last stored event names no write of this database (one kept from
/// before a restore, or made up): waiting could never end, so it is refused at once.
/// Looked up only when the read model has not yet passed the token, the rare case.
async fn refuse_beyond_head(
    app: &AppState,
    projection: &str,
    token: GlobalPosition,
) -> Result<(), ApiError> {
    if app.checkpoints.passed(projection, token) {
        return Ok(());
    }
    let head = expensewise_projections::status::head(&app.db)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    match token > head {
        true => Err(ApiError::conflict(format!(
            "X-Consistency-Token {token} names no write stored here: the last is {head}"
        ))),
        false => Ok(()),
    }
}

/// One resource from read model `projection`: `read` answers the read model's copy (if
/// any) and the store's version of the aggregate, `version` the copy's version. When the
/// copy is older (or missing while the store has events), waits until the read model has
/// passed the aggregate's last event, whoever wrote it, and reads again: one resource
/// always reads as its latest command left it.
pub async fn read_fresh<T, F, Fut>(
    app: &AppState,
    projection: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    read: F,
    version: impl Fn(&T) -> u64,
) -> Result<Option<T>, ApiError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(Option<T>, u64), ApiError>>,
{
    let (found, store_version) = read().await?;
    if found.as_ref().map_or(0, &version) >= store_version {
        return Ok(found);
    }
    let head = aggregate_head(&app.db, aggregate_type, aggregate_id)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    if let Some(write) = head {
        wait_for(app, projection, write).await?;
    }
    Ok(read().await?.0)
}

/// Waits until read model `projection` has passed every event stored so far, whoever
/// wrote it: for a command that plans from read models what must not be missed.
pub async fn wait_for_head(app: &AppState, projection: &str) -> Result<(), ApiError> {
    let head = expensewise_projections::status::head(&app.db)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    wait_for(app, projection, head).await
}

async fn wait_for(app: &AppState, projection: &str, write: GlobalPosition) -> Result<(), ApiError> {
    match app
        .checkpoints
        .wait_until(&app.db, projection, write, MAX_WAIT)
        .await
    {
        Ok(()) => Ok(()),
        Err(ConsistencyError::NotYet) => Err(ApiError::unavailable(
            "the read model has not caught up with this write yet; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))),
        Err(ConsistencyError::Database(e)) => Err(ApiError::internal(e.into())),
    }
}
