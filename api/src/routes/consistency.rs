//! Read-your-writes. A query answers only once its read model includes
//! - the caller's own latest write, found by the query itself (no header needed, and
//!   whichever API replica took the write: see [`AuthUser::last_write`]);
//! - for one resource, every write to it, by anyone ([`ConsistencyToken::read_fresh`]);
//! - the write a consistency token names, when one is sent: how a client reads another
//!   user's write as soon as that user's command has answered.
//!
//! Each waits at most [`MAX_WAIT`], then the query answers 503 with `Retry-After`.
//!
//! With a read replica (`DATABASE_READ_URL`), queries read it while it is at most
//! `READ_REPLICA_MAX_LAG` behind. A write is waited for in the replica's own copy of the
//! read model's checkpoint: the checkpoint moves in the transaction that projects the
//! write, so the replica has the write in its read model exactly when it has replayed
//! the log past that commit. A replica that does not get there within
//! `READ_REPLICA_MAX_LAG`, lags, or fails is passed over for the primary.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use expensewise_infra::event_store::aggregate_head;
use expensewise_infra::replica::ReadReplica;
use expensewise_infra::{Database, GlobalPosition};
use expensewise_projections::{Checkpoints, ConsistencyError};

use crate::error::{ApiError, ApiResult};
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
    /// The write a query of read model `projection` must include: the caller's own
    /// latest and the token's, if any.
    async fn write(
        &self,
        app: &AppState,
        user: &AuthUser,
        projection: &str,
    ) -> ApiResult<Option<GlobalPosition>> {
        if let Some(token) = self.0 {
            refuse_beyond_head(app, projection, token).await?;
        }
        Ok(self.0.max(user.last_write))
    }

    /// Waits until read model `projection` on the primary includes the caller's own
    /// latest write and the token's, if any: for reads that are not made from the read
    /// model's tables alone.
    pub async fn wait(
        &self,
        app: &AppState,
        user: &AuthUser,
        projection: &str,
    ) -> Result<(), ApiError> {
        match self.write(app, user, projection).await? {
            Some(write) => wait_for(app, projection, write).await,
            None => Ok(()),
        }
    }

    /// Runs `query` on a database (the replica or the primary) whose read model
    /// `projection` includes the caller's own latest write and the token's, if any.
    pub async fn read<T, E, F, Fut>(
        &self,
        app: &AppState,
        user: &AuthUser,
        projection: &str,
        query: F,
    ) -> ApiResult<T>
    where
        F: Fn(Database) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<anyhow::Error>,
    {
        let write = self.write(app, user, projection).await?;
        read_after(app, projection, write, query).await
    }

    /// One resource from read model `projection`: `read` answers the read model's copy
    /// (if any) and the store's version of the aggregate, `version` the copy's version.
    /// The copy includes the caller's own latest write, the token's, and every event of
    /// the aggregate, whoever wrote it: one resource always reads as its latest command
    /// left it.
    pub async fn read_fresh<T, E, F, Fut>(
        &self,
        app: &AppState,
        user: &AuthUser,
        projection: &str,
        (aggregate_type, aggregate_id): (&str, &str),
        read: F,
        version: impl Fn(&T) -> u64,
    ) -> ApiResult<Option<T>>
    where
        F: Fn(Database) -> Fut,
        Fut: Future<Output = Result<(Option<T>, u64), E>>,
        E: Into<anyhow::Error>,
    {
        let write = self.write(app, user, projection).await?;
        let aggregate_head = || async {
            aggregate_head(&app.db, aggregate_type, aggregate_id)
                .await
                .map_err(|e| ApiError::internal(e.into()))
        };
        if app.replica.is_some() {
            // A replica's copy and its version of the aggregate may both be behind: what
            // the aggregate's latest event is, only the primary knows.
            let write = write.max(aggregate_head().await?);
            return Ok(read_after(app, projection, write, read).await?.0);
        }
        if let Some(write) = write {
            wait_for(app, projection, write).await?;
        }
        let internal = |e: E| ApiError::internal(e.into());
        let (found, store_version) = read(app.db.clone()).await.map_err(internal)?;
        if found.as_ref().map_or(0, &version) >= store_version {
            return Ok(found);
        }
        if let Some(write) = aggregate_head().await? {
            wait_for(app, projection, write).await?;
        }
        Ok(read(app.db.clone()).await.map_err(internal)?.0)
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
    let head = head(app).await?;
    match token > head {
        true => Err(ApiError::conflict(format!(
            "X-Consistency-Token {token} names no write stored here: the last is {head}"
        ))),
        false => Ok(()),
    }
}

/// The last event stored, by anyone.
pub async fn head(app: &AppState) -> ApiResult<GlobalPosition> {
    expensewise_projections::status::head(&app.db)
        .await
        .map_err(|e| ApiError::internal(e.into()))
}

/// Waits until read model `projection` has passed every event stored so far, whoever
/// wrote it: for a command that plans from read models what must not be missed.
pub async fn wait_for_head(app: &AppState, projection: &str) -> Result<(), ApiError> {
    let head = head(app).await?;
    wait_for(app, projection, head).await
}

/// Waits until the caller's own latest write is readable in the global order, for reads
/// of the event store itself (the audit log): a transaction begun before it elsewhere on
/// the database server holds it back until that transaction ends.
pub async fn wait_for_global_order(app: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    let Some(write) = user.last_write else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    loop {
        let readable = expensewise_infra::event_store::readable(&app.db, write)
            .await
            .map_err(|e| ApiError::internal(e.into()))?;
        if readable {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::not_yet(
                "the event store's order has not reached this write yet; retry shortly",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `query` on a database whose read model `projection` has passed `write`: the
/// replica when it gets there in time, else the primary.
pub async fn read_after<T, E, F, Fut>(
    app: &AppState,
    projection: &str,
    write: Option<GlobalPosition>,
    query: F,
) -> ApiResult<T>
where
    F: Fn(Database) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    if let Some(replica) = &app.replica {
        let passed_over = match replica.ready_for(projection, write).await {
            Ok(db) => match query(db).await {
                Ok(found) => {
                    metrics::counter!("expensewise_read_queries_total", "database" => "replica")
                        .increment(1);
                    return Ok(found);
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{:#}", e.into()),
                        "a query failed on the read replica: reading the primary"
                    );
                    replica.source.failed();
                    "failed"
                }
            },
            Err(reason) => reason,
        };
        metrics::counter!("expensewise_read_replica_passed_over_total", "reason" => passed_over)
            .increment(1);
    }
    if let Some(write) = write {
        wait_for(app, projection, write).await?;
    }
    let found = query(app.db.clone())
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    metrics::counter!("expensewise_read_queries_total", "database" => "primary").increment(1);
    Ok(found)
}

async fn wait_for(app: &AppState, projection: &str, write: GlobalPosition) -> Result<(), ApiError> {
    match app
        .checkpoints
        .wait_until(&app.db, projection, write, MAX_WAIT)
        .await
    {
        Ok(()) => Ok(()),
        Err(ConsistencyError::NotYet) => Err(ApiError::not_yet(
            "the read model has not caught up with this write yet; retry shortly",
        )),
        Err(ConsistencyError::Database(e)) => Err(ApiError::internal(e.into())),
    }
}

/// The read replica queries read from, with how far each of its read models was last
/// seen to have come.
pub struct ReplicaReads {
    pub source: Arc<ReadReplica>,
    checkpoints: Checkpoints,
}

impl ReplicaReads {
    pub fn new(source: ReadReplica) -> Self {
        Self {
            source: Arc::new(source),
            checkpoints: Checkpoints::default(),
        }
    }

    /// The replica, once its read model `projection` has passed `write`; else why not.
    async fn ready_for(
        &self,
        projection: &str,
        write: Option<GlobalPosition>,
    ) -> Result<Database, &'static str> {
        if !self.source.usable() {
            return Err("lagging");
        }
        let db = self.source.database();
        if let Some(write) = write {
            // Within its allowed lag, the replica has a write that far back: waiting
            // longer would be slower than asking the primary.
            let limit = self.source.max_lag();
            match self
                .checkpoints
                .wait_until(db, projection, write, limit)
                .await
            {
                Ok(()) => {}
                Err(ConsistencyError::NotYet) => return Err("not_yet"),
                Err(ConsistencyError::Database(e)) => {
                    tracing::warn!(error = %e, "the read replica's checkpoints are unreadable: reading the primary");
                    self.source.failed();
                    return Err("failed");
                }
            }
        }
        Ok(db.clone())
    }
}
