//! Read-your-writes: a query that carries a command's consistency token answers only
//! once its read model includes that command's events.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use expensewise_infra::GlobalPosition;
use expensewise_projections::{wait_until, ConsistencyError};

use crate::error::ApiError;
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
    /// Waits until read model `projection` includes the token's write.
    pub async fn wait(&self, app: &AppState, projection: &str) -> Result<(), ApiError> {
        let Some(token) = self.0 else {
            return Ok(());
        };
        match wait_until(&app.db, projection, token, MAX_WAIT).await {
            Ok(()) => Ok(()),
            Err(ConsistencyError::NotYet) => Err(ApiError::unavailable(
                "the read model has not caught up with this consistency token yet; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))),
            Err(ConsistencyError::Database(e)) => Err(ApiError::internal(e.into())),
        }
    }
}
