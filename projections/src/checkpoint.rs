//! Read-your-writes: waiting until a projection has read past a write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use expensewise_infra::checkpoints::load;
use expensewise_infra::{Database, GlobalPosition};

#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the read model has not caught up with the given write yet")]
    NotYet,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// How far each read model was last seen to have come. Checkpoints only move forward
/// (a rebuild swaps in a model at least as far as the one it replaces), so a write at
/// or below the furthest place seen is in the read model without asking again: most
/// queries, whose caller has not written in the last moments, cost no look at the
/// checkpoint.
#[derive(Debug, Default)]
pub struct Checkpoints {
    seen: Mutex<HashMap<String, GlobalPosition>>,
}

impl Checkpoints {
    /// Waits until projection `name` has read past `write`, at most `limit`.
    pub async fn wait_until(
        &self,
        db: &Database,
        name: &str,
        write: GlobalPosition,
        limit: Duration,
    ) -> Result<(), ConsistencyError> {
        if self.passed(name, write) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + limit;
        // Most writes are projected within a few milliseconds: look again soon at first,
        // then every 5 ms.
        let mut pause = Duration::from_millis(1);
        loop {
            let at = load(db, name).await?;
            self.raise(name, at);
            if at >= write {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ConsistencyError::NotYet);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Whether read model `name` is known, without asking the database, to have passed
    /// `write`.
    pub fn passed(&self, name: &str, write: GlobalPosition) -> bool {
        self.seen(name) >= write
    }

    fn seen(&self, name: &str) -> GlobalPosition {
        self.lock().get(name).copied().unwrap_or_default()
    }

    fn raise(&self, name: &str, at: GlobalPosition) {
        let mut seen = self.lock();
        match seen.get_mut(name) {
            Some(known) => *known = (*known).max(at),
            None => {
                seen.insert(name.to_string(), at);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GlobalPosition>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}
