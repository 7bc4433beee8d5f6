//! Optimistic requests: a command may be decided on what this process last saw — the
//! caller's organization (members and roles), its spend policy, and aggregates it last
//! wrote itself — instead of asking the database first. What such a request appends holds
//! only if the organization, the policy and the aggregate are still at the versions it
//! decided on (the condition is part of the append), so being sure costs no round trip of
//! its own.
//!
//! Whatever no append confirmed (a request that ended without appending, or appended after
//! deciding on an unconfirmed read) is checked when the handler is done
//! ([`EventStore::settle`](super::EventStore::settle)). A request found to have decided on
//! stale state has committed nothing, and is run again from the start outside any scope,
//! where everything is read afresh.
//!
//! The scope is a value the request's code passes to every store call that may use it
//! (`Scope::none()` outside requests): what is decided optimistically is visible where it
//! is decided.

use std::sync::{Arc, Mutex};

use super::{aggregate_version, AggregateCache, EventStore};

/// A version an append must still find: of an aggregate the request was decided on but
/// does not append to (its organization, its organization's policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub aggregate_type: &'static str,
    pub id: String,
    pub version: u64,
}

/// An aggregate a request read from memory.
#[derive(Debug)]
pub struct Read {
    pub aggregate_type: &'static str,
    pub id: String,
    pub sequence: usize,
    /// Drops the remembered copy once it is found out of date.
    pub forget: fn(&EventStore, &str),
}

#[derive(Debug, Default)]
struct State {
    /// The versions of the organization the request was authorized at and of the policy
    /// it was decided under, until an append confirms them.
    guards: Vec<Guard>,
    /// Aggregates read from memory, until an append confirms them.
    reads: Vec<Read>,
    /// Something was appended: from here on nothing is decided optimistically, and the
    /// request can no longer be run again.
    committed: bool,
    /// A decision was found to rest on stale state, before anything was committed.
    stale: bool,
}

/// The scope one request runs in (see the module documentation), or none: a handle,
/// cloned into wherever the request's code needs it.
#[derive(Clone)]
pub struct Scope(Option<Arc<Mutex<State>>>);

/// What is left to check once the handler is done.
#[derive(Debug)]
pub enum Settle {
    /// Everything the request decided on was confirmed (or nothing was optimistic).
    Confirmed,
    /// These versions must still be current for the answer to stand.
    Check {
        guards: Vec<Guard>,
        reads: Vec<Read>,
    },
    /// The request decided on stale state and committed nothing: run it again.
    RunAgain,
}

impl Scope {
    /// An optimistic request's scope.
    pub fn optimistic() -> Self {
        Self(Some(Arc::default()))
    }

    /// No scope: everything is read afresh (workers, the command line, a request run
    /// again).
    pub fn none() -> Self {
        Self(None)
    }

    /// What the finished request leaves to check.
    pub fn settle(self) -> Settle {
        let Some(state) = self.0 else {
            return Settle::Confirmed;
        };
        let state = std::mem::take(&mut *lock(&state));
        if state.committed {
            // The first append held, so the organization, the policy and the aggregate it
            // was decided on were current, and every other aggregate read from memory was
            // confirmed just before it; after it nothing is read from memory.
            return Settle::Confirmed;
        }
        if state.stale {
            return Settle::RunAgain;
        }
        if state.guards.is_empty() && state.reads.is_empty() {
            return Settle::Confirmed;
        }
        Settle::Check {
            guards: state.guards,
            reads: state.reads,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.0.as_ref().map(|s| f(&mut lock(s)))
    }

    /// Whether the request may decide on what this process remembers.
    pub(super) fn active(&self) -> bool {
        self.with(|s| !s.committed && !s.stale).unwrap_or(false)
    }

    /// The aggregate as `cache` remembers it, in an active scope, which its appends then
    /// expect at that version.
    pub(super) fn remembered<A: Clone>(
        &self,
        cache: &AggregateCache<A>,
        aggregate_type: &'static str,
        id: &str,
    ) -> Option<A> {
        if !self.active() {
            return None;
        }
        let (aggregate, version) = cache.get(id)?;
        self.expect(aggregate_type, id, version as u64);
        Some(aggregate)
    }

    /// The request decided on `aggregate_type` `id` at `version`, as remembered.
    fn expect(&self, aggregate_type: &'static str, id: &str, version: u64) {
        self.with(|s| {
            s.guards
                .retain(|g| !(g.aggregate_type == aggregate_type && g.id == id));
            s.guards.push(Guard {
                aggregate_type,
                id: id.to_string(),
                version,
            });
        });
    }

    pub(super) fn record_read(
        &self,
        aggregate_type: &'static str,
        id: &str,
        sequence: usize,
        forget: fn(&EventStore, &str),
    ) {
        self.with(|s| {
            s.reads.push(Read {
                aggregate_type,
                id: id.to_string(),
                sequence,
                forget,
            })
        });
    }

    /// The versions an append must still find, those not confirmed yet.
    pub(super) fn guards(&self) -> Vec<Guard> {
        self.with(|s| s.guards.clone()).unwrap_or_default()
    }

    /// The aggregates other than this one that the request read from memory and no
    /// append has confirmed: the append of this one cannot vouch for them, so they are
    /// checked before it (and taken out of the scope: checked, or the request runs again).
    pub(super) fn take_other_reads(&self, aggregate_type: &str, id: &str) -> Vec<Read> {
        self.with(|s| {
            let (others, own) = std::mem::take(&mut s.reads)
                .into_iter()
                .partition(|r| !(r.aggregate_type == aggregate_type && r.id == id));
            s.reads = own;
            others
        })
        .unwrap_or_default()
    }

    /// An append held: its guards and the read of its aggregate are confirmed.
    pub(super) fn committed(&self, aggregate_type: &str, id: &str) {
        self.with(|s| {
            s.committed = true;
            s.guards.clear();
            s.reads
                .retain(|r| !(r.aggregate_type == aggregate_type && r.id == id));
        });
    }

    /// Marks the request as decided on stale state. False when that can no longer be
    /// undone by running it again (something was committed, or there is no scope).
    pub(super) fn mark_stale(&self) -> bool {
        self.with(|s| {
            if s.committed {
                false
            } else {
                s.stale = true;
                true
            }
        })
        .unwrap_or(false)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventStore {
    /// Whether the answer of a finished optimistic request stands: false when it was
    /// decided on state that has changed since (it committed nothing then, and is to run
    /// again outside any scope).
    pub async fn settle(&self, scope: Scope) -> Result<bool, sqlx::Error> {
        let (guards, reads) = match scope.settle() {
            Settle::Confirmed => return Ok(true),
            Settle::RunAgain => return Ok(false),
            Settle::Check { guards, reads } => (guards, reads),
        };
        if self.guards_changed(&guards).await? {
            return Ok(false);
        }
        self.reads_current(reads).await
    }

    /// Whether any of `guards` no longer holds.
    pub(super) async fn guards_changed(&self, guards: &[Guard]) -> Result<bool, sqlx::Error> {
        for guard in guards {
            if aggregate_version(&self.db, guard.aggregate_type, &guard.id).await? != guard.version
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether every aggregate read from memory is still at the version read; the copy
    /// of one that is not is forgotten.
    pub(super) async fn reads_current(&self, reads: Vec<Read>) -> Result<bool, sqlx::Error> {
        for read in reads {
            let current = aggregate_version(&self.db, read.aggregate_type, &read.id).await?;
            if current != read.sequence as u64 {
                (read.forget)(self, &read.id);
                return Ok(false);
            }
        }
        Ok(true)
    }
}
