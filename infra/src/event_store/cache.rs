//! Aggregates remembered in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::Aggregate;

use super::{EventStore, Scope, StoreFor};

/// Aggregates as this process last wrote (or, for organizations, loaded) them, with their
/// sequence. Bounded: beyond its size it starts over.
pub struct AggregateCache<A> {
    entries: Mutex<HashMap<String, (A, usize)>>,
}

/// Aggregates kept in memory at most, per type.
const CACHE_SIZE: usize = 10_000;

impl<A: Clone> AggregateCache<A> {
    pub(super) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (A, usize)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self, id: &str) -> Option<(A, usize)> {
        self.entries().get(id).cloned()
    }

    pub(super) fn put(&self, id: &str, aggregate: A, sequence: usize) {
        let mut entries = self.entries();
        if entries.len() >= CACHE_SIZE {
            entries.clear();
        }
        entries.insert(id.to_string(), (aggregate, sequence));
    }

    pub(super) fn forget(&self, id: &str) {
        self.entries().remove(id);
    }
}

impl EventStore {
    /// The aggregate as this process remembers it, for an optimistic request (the append
    /// checks the sequence as it writes: in its statement on PostgreSQL, under the write
    /// lock on SQLite).
    pub(super) fn remembered<A>(
        &self,
        scope: &Scope,
        aggregate_id: &str,
    ) -> Option<EventStoreAggregateContext<A>>
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if !scope.active() {
            return None;
        }
        let (aggregate, sequence) = self.cache()?.get(aggregate_id)?;
        Some(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        })
    }

    pub(super) fn forget<A>(&self, aggregate_id: &str)
    where
        Self: StoreFor<A>,
        A: Aggregate + Clone,
    {
        if let Some(cache) = self.cache() {
            cache.forget(aggregate_id);
        }
    }
}
