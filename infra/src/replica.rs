//! A PostgreSQL streaming replica that queries read their read models from, and how far
//! behind the primary it is.
//!
//! The lag is measured in time, from positions in the write-ahead log: every
//! [`LOOK_EVERY`] the primary's current position is noted with the moment, and the
//! replica's replayed position is compared with those notes. The replica holds everything
//! the primary held at the latest noted moment whose position it has replayed, so it is
//! at most that long behind. An idle primary writes nothing: a replica that has replayed
//! all of it is 0 s behind, however long ago that was.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::ReadReplicaConfig;
use crate::Database;

/// How often the replica's lag is measured.
pub const LOOK_EVERY: Duration = Duration::from_millis(200);

/// A query waits at most this for a connection to the replica, then reads the primary.
const ACQUIRE: Duration = Duration::from_secs(2);

/// Notes kept while the replica stays behind; past this, every other one is dropped, so
/// the measure coarsens instead of growing without end.
const MAX_NOTES: usize = 4096;

/// How the replica stood when last looked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Standing {
    /// Not looked at yet.
    Unknown,
    /// Replaying the primary's log, at most this far behind.
    Behind(Duration),
    /// A connection or a query failed.
    Unreachable,
    /// It answers, but replays no primary's log: promoted, or never a replica. What it
    /// holds may have parted from the primary, so it is not read.
    NotReplaying,
}

pub struct ReadReplica {
    db: Database,
    max_lag: Duration,
    state: Mutex<State>,
}

struct State {
    standing: Standing,
    /// When the primary's log was where: oldest first, the first being the latest the
    /// replica is known to have replayed.
    notes: VecDeque<(Instant, u64)>,
}

impl ReadReplica {
    /// Opens a pool for the replica without connecting: a replica that is down when the
    /// process starts only sends its reads to the primary until it is back.
    pub fn open(config: &ReadReplicaConfig, max_connections: u32) -> anyhow::Result<Self> {
        Ok(Self {
            db: Database::connect_lazily(&config.url, max_connections, ACQUIRE)?,
            max_lag: config.max_lag,
            state: Mutex::new(State {
                standing: Standing::Unknown,
                notes: VecDeque::new(),
            }),
        })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    pub fn standing(&self) -> Standing {
        self.lock().standing
    }

    /// Whether queries may read the replica now: it was reachable, replaying, and at most
    /// `max_lag` behind when last looked at.
    pub fn usable(&self) -> bool {
        self.readable(self.standing())
    }

    fn readable(&self, standing: Standing) -> bool {
        matches!(standing, Standing::Behind(lag) if lag <= self.max_lag)
    }

    /// A query on the replica failed: no more are sent there until the next look finds
    /// it answering.
    pub fn failed(&self) {
        self.set(Standing::Unreachable);
    }

    /// Measures the lag once. The primary is asked first: a replica that has replayed
    /// what the primary had a moment before is not behind at all.
    pub async fn look(&self, primary: &Database) {
        let Some(written) = primary_position(primary).await else {
            return;
        };
        let now = Instant::now();
        let standing = match replayed_position(&self.db).await {
            Err(e) => {
                if self.standing() != Standing::Unreachable {
                    tracing::warn!(error = %e, "read replica unreachable: queries read the primary");
                }
                Standing::Unreachable
            }
            Ok(None) => Standing::NotReplaying,
            Ok(Some(replayed)) => {
                let mut state = self.lock();
                state.notes.push_back((now, written));
                lag(&mut state.notes, replayed, now).map_or(Standing::Unknown, Standing::Behind)
            }
        };
        self.set(standing);
    }

    /// Looks every [`LOOK_EVERY`], for as long as the process runs.
    pub async fn watch(self: Arc<Self>, primary: Database) {
        let mut every = tokio::time::interval(LOOK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.look(&primary).await;
        }
    }

    fn set(&self, standing: Standing) {
        let was = std::mem::replace(&mut self.lock().standing, standing);
        let lag = match standing {
            Standing::Behind(lag) => lag.as_secs_f64(),
            Standing::Unknown | Standing::Unreachable | Standing::NotReplaying => f64::INFINITY,
        };
        metrics::gauge!("expensewise_read_replica_lag_seconds").set(lag);
        let (was_readable, readable) = (self.readable(was), self.readable(standing));
        metrics::gauge!("expensewise_read_replica_usable").set(f64::from(u8::from(readable)));
        if was_readable && !readable {
            tracing::warn!(?standing, max_lag = ?self.max_lag, "read replica too far behind: queries read the primary");
        } else if !was_readable && readable {
            tracing::info!(?standing, "read replica caught up: queries read it again");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far behind a replica that has replayed the log up to `replayed` is, given when
/// the primary's log was where (`notes`, oldest first); `None` until it has passed one
/// of them. Drops the notes no longer needed.
fn lag(notes: &mut VecDeque<(Instant, u64)>, replayed: u64, now: Instant) -> Option<Duration> {
    // The latest note the replica has passed; everything before it is passed too.
    let passed = notes
        .iter()
        .rposition(|&(_, position)| position <= replayed)?;
    notes.drain(..passed);
    if notes.len() > MAX_NOTES {
        let mut index = 0;
        notes.retain(|_| {
            index += 1;
            index == 1 || index % 2 == 0
        });
    }
    Some(match notes.len() {
        // It passed the latest: nothing the primary had is missing.
        1 => Duration::ZERO,
        _ => now.duration_since(notes[0].0),
    })
}

async fn primary_position(primary: &Database) -> Option<u64> {
    let Database::Postgres(pool) = primary else {
        return None;
    };
    match sqlx::query_scalar::<_, i64>("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
        .fetch_one(pool)
        .await
    {
        Ok(position) => u64::try_from(position).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "read replica: the primary's log position is unknown");
            None
        }
    }
}

/// The replica's replayed log position; `None` when it replays none.
async fn replayed_position(replica: &Database) -> Result<Option<u64>, sqlx::Error> {
    let Database::Postgres(pool) = replica else {
        return Ok(None);
    };
    let (replaying, position): (bool, Option<i64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(pool)
    .await?;
    Ok(position
        .filter(|_| replaying)
        .and_then(|p| u64::try_from(p).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_age_of_the_latest_primary_position_replayed() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut notes = VecDeque::new();

        // Before it has passed any position noted, how far behind it is is unknown.
        notes.push_back((at(0), 100));
        assert_eq!(lag(&mut notes, 90, at(0)), None);
        assert_eq!(lag(&mut notes, 100, at(0)), Some(Duration::ZERO));
        // The primary wrote; the replica has not replayed it yet.
        notes.push_back((at(200), 150));
        assert_eq!(
            lag(&mut notes, 100, at(200)),
            Some(Duration::from_millis(200))
        );
        notes.push_back((at(400), 180));
        assert_eq!(
            lag(&mut notes, 120, at(400)),
            Some(Duration::from_millis(400))
        );
        // It replayed up to the second note, not the third.
        notes.push_back((at(600), 180));
        assert_eq!(
            lag(&mut notes, 150, at(600)),
            Some(Duration::from_millis(400))
        );
        assert_eq!(notes.front(), Some(&(at(200), 150)));
        // All of it: caught up, and an idle primary keeps it so.
        assert_eq!(lag(&mut notes, 180, at(800)), Some(Duration::ZERO));
        notes.push_back((at(5000), 180));
        assert_eq!(lag(&mut notes, 180, at(5000)), Some(Duration::ZERO));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn a_replica_stuck_for_long_is_measured_from_its_last_known_position() {
        let start = Instant::now();
        let mut notes = VecDeque::new();
        notes.push_back((start, 10));
        let mut last = Duration::ZERO;
        for i in 1..=3 * MAX_NOTES as u64 {
            let now = start + Duration::from_millis(200 * i);
            notes.push_back((now, 10 + i));
            let behind = lag(&mut notes, 10, now).unwrap();
            assert!(
                behind > last,
                "the lag only grows while nothing is replayed"
            );
            assert_eq!(behind, now - start);
            last = behind;
        }
        assert!(notes.len() <= MAX_NOTES + 1);
        assert_eq!(notes.front(), Some(&(start, 10)));
    }
}
