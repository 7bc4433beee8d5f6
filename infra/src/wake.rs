//! Waking tailers of the event store promptly: through an in-process signal when this
//! process appended, through PostgreSQL LISTEN/NOTIFY when another one did, and by a
//! slow poll as the last resort (a lost listener connection must not stall anything).

use std::time::Duration;

use tokio::sync::watch;

use crate::event_store::Follow;

pub struct Wake {
    appends: watch::Receiver<u64>,
    elsewhere: watch::Receiver<u64>,
}

impl Wake {
    /// Woken by the appends of this process and the notifications of the tail's listener.
    pub fn new(follow: &Follow) -> Self {
        Self {
            appends: follow.appends.clone(),
            elsewhere: follow.tail.notifications(),
        }
    }

    /// Returns when events may have been appended, or after `poll` at the latest.
    pub async fn wait(&mut self, poll: Duration) {
        tokio::select! {
            _ = changed(&mut self.appends) => {}
            _ = changed(&mut self.elsewhere) => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Returns when `signal` changes; never, once its sender is gone (polling goes on).
async fn changed(signal: &mut watch::Receiver<u64>) {
    if signal.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
