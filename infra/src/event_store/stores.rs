//! One cqrs-es store per aggregate type, and which of them snapshot and remember.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::Aggregate;
use expensewise_domain::accounting::Accounting;
use expensewise_domain::policy::Policy;
use expensewise_domain::webhook::Webhooks;
use expensewise_domain::{EmailClaim, Expense, Organization, Receipt};

use super::cache::AggregateCache;
use super::{AnyEventRepository, EventStore};

pub(super) type Store<A> = PersistedEventStore<AnyEventRepository, A>;

/// Events between two snapshots of an organization.
pub const ORGANIZATION_SNAPSHOT_EVERY: usize = 20;
/// Events between two snapshots of an expense: most expenses have fewer than twenty events
/// and never get one; long-lived ones load a snapshot and at most 19 events. (Every 50
/// made edits of a 1,000-event expense 47 % as fast as creates; every 20, 77 %.)
pub const EXPENSE_SNAPSHOT_EVERY: usize = 20;

/// Gives the event store for one aggregate type.
pub trait StoreFor<A: Aggregate> {
    /// Events between two snapshots, for a snapshotted aggregate type.
    const SNAPSHOT_EVERY: Option<usize>;
    fn store(&self) -> &Store<A>;
    /// Where aggregates of this type are remembered, if they are.
    fn cache(&self) -> Option<&AggregateCache<A>>;
    /// Whose personal data the aggregate's events hold, where it is one person's.
    fn subject(aggregate: &A) -> Option<uuid::Uuid>;
}

/// Whether appending `count` events after `sequence` reaches the next snapshot: cqrs-es's
/// rule (a snapshot at every multiple of the snapshot size), kept by our appends on both
/// databases, which write the snapshot themselves.
pub(super) fn snapshot_due<A: Aggregate, S: StoreFor<A>>(sequence: usize, count: usize) -> bool {
    S::SNAPSHOT_EVERY.is_some_and(|every| count >= every - sequence % every)
}

macro_rules! store_for {
    ($aggregate:ty, $field:ident, $snapshot_every:expr $(, remembered in $cache:ident)?) => {
        impl StoreFor<$aggregate> for EventStore {
            const SNAPSHOT_EVERY: Option<usize> = $snapshot_every;
            fn store(&self) -> &Store<$aggregate> {
                &self.$field
            }
            fn cache(&self) -> Option<&AggregateCache<$aggregate>> {
                None $(.or(Some(&self.$cache)))?
            }
            fn subject(aggregate: &$aggregate) -> Option<uuid::Uuid> {
                expensewise_domain::personal::DataSubject::data_subject(aggregate)
            }
        }
    };
}

store_for!(
    Organization,
    organizations,
    Some(ORGANIZATION_SNAPSHOT_EVERY),
    remembered in organization_cache
);
store_for!(EmailClaim, email_claims, None);
store_for!(
    Expense,
    expenses,
    Some(EXPENSE_SNAPSHOT_EVERY),
    remembered in expense_cache
);
store_for!(Receipt, receipts, None);
store_for!(Policy, policies, None, remembered in policy_cache);
store_for!(Webhooks, webhooks, None);
store_for!(Accounting, accounting, None);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::EventStore;

    /// cqrs-es snapshots when an append reaches a multiple of the snapshot size; our
    /// appends must snapshot at exactly those appends.
    #[test]
    fn a_snapshot_is_due_when_an_append_reaches_a_multiple_of_its_size() {
        for sequence in 0..100 {
            for count in 1..50 {
                let reaches =
                    (sequence + 1..=sequence + count).any(|s| s % EXPENSE_SNAPSHOT_EVERY == 0);
                assert_eq!(
                    snapshot_due::<Expense, EventStore>(sequence, count),
                    reaches,
                    "{count} events after {sequence}"
                );
                assert!(!snapshot_due::<Receipt, EventStore>(sequence, count));
            }
        }
    }
}
