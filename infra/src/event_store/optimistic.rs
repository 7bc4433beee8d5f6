//! Optimistic requests: a command may be decided on what this process last saw — the
//! caller's organization (members and roles) and aggregates it last wrote itself — instead
//! of asking the database first. What such a request appends holds only if the
//! organization and the aggregate are still at the versions it decided on (the condition is
//! part of the append statement), so being sure costs no round trip of its own.
//!
//! Whatever no append confirmed (a request that ended without appending, or appended after
//! deciding on an unconfirmed read) is checked when the handler is done
//! ([`EventStore::settle`](super::EventStore::settle)). A request found to have decided on
//! stale state has committed nothing, and is run again from the start outside any scope,
//! where everything is read afresh.

use std::future::Future;
use std::sync::{Arc, Mutex};

use expensewise_domain::organization::AGGREGATE_TYPE as ORGANIZATION_TYPE;

use super::{aggregate_version, EventStore};

tokio::task_local! {
    static SCOPE: Arc<Mutex<State>>;
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
    /// The organization's version the request was authorized at, until an append
    /// confirms it.
    organization: Option<(String, u64)>,
    /// Aggregates read from memory, until an append confirms them.
    reads: Vec<Read>,
    /// Something was appended: from here on nothing is decided optimistically, and the
    /// request can no longer be run again.
    committed: bool,
    /// A decision was found to rest on stale state, before anything was committed.
    stale: bool,
}

/// The scope one request runs in; see the module documentation.
#[derive(Default)]
pub struct Scope(Arc<Mutex<State>>);

/// What is left to check once the handler is done.
#[derive(Debug)]
pub enum Settle {
    /// Everything the request decided on was confirmed (or nothing was optimistic).
    Confirmed,
    /// These versions must still be current for the answer to stand.
    Check {
        organization: Option<(String, u64)>,
        reads: Vec<Read>,
    },
    /// The request decided on stale state and committed nothing: run it again.
    RunAgain,
}

impl Scope {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `request` (a handler) inside this scope.
    pub async fn run<F: Future>(&self, request: F) -> F::Output {
        SCOPE.scope(self.0.clone(), request).await
    }

    /// What the finished request leaves to check.
    pub fn settle(self) -> Settle {
        let state = std::mem::take(&mut *lock(&self.0));
        if state.committed {
            // The first append held, so the organization and the aggregate it was decided
            // on were current; after it nothing is read from memory. (Handlers append to
            // the aggregate they read: a read of another one would go unchecked here.)
            return Settle::Confirmed;
        }
        if state.stale {
            return Settle::RunAgain;
        }
        if state.organization.is_none() && state.reads.is_empty() {
            return Settle::Confirmed;
        }
        Settle::Check {
            organization: state.organization,
            reads: state.reads,
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    SCOPE.try_with(|s| f(&mut lock(s))).ok()
}

/// Whether the running request may decide on what this process remembers.
pub(super) fn active() -> bool {
    with(|s| !s.committed && !s.stale).unwrap_or(false)
}

pub(super) fn expect_organization(id: &str, version: u64) {
    with(|s| s.organization = Some((id.to_string(), version)));
}

pub(super) fn record_read(
    aggregate_type: &'static str,
    id: &str,
    sequence: usize,
    forget: fn(&EventStore, &str),
) {
    with(|s| {
        s.reads.push(Read {
            aggregate_type,
            id: id.to_string(),
            sequence,
            forget,
        })
    });
}

/// The organization version an append must still find, if one is unconfirmed.
pub(super) fn organization_guard() -> Option<(String, u64)> {
    with(|s| s.organization.clone()).flatten()
}

/// An append held: its organization guard and the read of its aggregate are confirmed.
pub(super) fn committed(aggregate_type: &str, id: &str) {
    with(|s| {
        s.committed = true;
        s.organization = None;
        s.reads
            .retain(|r| !(r.aggregate_type == aggregate_type && r.id == id));
    });
}

/// Marks the request as decided on stale state. False when that can no longer be undone
/// by running it again (something was committed, or there is no scope).
pub(super) fn mark_stale() -> bool {
    with(|s| {
        if s.committed {
            false
        } else {
            s.stale = true;
            true
        }
    })
    .unwrap_or(false)
}

impl EventStore {
    /// Whether the answer of a finished optimistic request stands: false when it was
    /// decided on state that has changed since (it committed nothing then, and is to run
    /// again outside any scope).
    pub async fn settle(&self, scope: Scope) -> Result<bool, sqlx::Error> {
        let (organization, reads) = match scope.settle() {
            Settle::Confirmed => return Ok(true),
            Settle::RunAgain => return Ok(false),
            Settle::Check {
                organization,
                reads,
            } => (organization, reads),
        };
        if let Some((id, version)) = organization {
            if aggregate_version(&self.db, ORGANIZATION_TYPE, &id).await? != version {
                return Ok(false);
            }
        }
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
