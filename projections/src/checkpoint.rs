//! Read-your-writes: waiting until a projection has read past a command's events.

use std::time::Duration;

use expensewise_infra::checkpoints::load;
use expensewise_infra::{Database, GlobalPosition};

#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the read model has not caught up with the given consistency token yet")]
    NotYet,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Waits until projection `name` has read past `token`, at most `limit`.
pub async fn wait_until(
    db: &Database,
    name: &str,
    token: GlobalPosition,
    limit: Duration,
) -> Result<(), ConsistencyError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if load(db, name).await? >= token {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConsistencyError::NotYet);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
