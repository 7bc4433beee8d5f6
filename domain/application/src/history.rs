//! The history as it was: an expense as of a time of recording or a place in the global
//! order (time travel), and what each edit changed. Both fold the stored events with the
//! aggregate's own `apply`, so the past reads exactly as the aggregate saw it then.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate as _;
use expensewise_domain::expense::{Expense, ExpenseEvent, FieldChange, AGGREGATE_TYPE};
use expensewise_domain::Actor;
use expensewise_infra::event_store::aggregate_events;
use expensewise_infra::{Database, EventStore, GlobalPosition, RecordedEvent, Vault};
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

/// A moment of the history: when events were recorded, or a place in the store's global
/// order (a consistency token or audit cursor, `txid.position`). The business date of an
/// expense (`spent_on`) is another thing, and not this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Recorded(DateTime<Utc>),
    Position(GlobalPosition),
}

impl AsOf {
    /// `txid.position`, or an RFC 3339 time.
    pub fn parse(text: &str) -> Option<AsOf> {
        if let Ok(position) = text.parse::<GlobalPosition>() {
            return Some(AsOf::Position(position));
        }
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| AsOf::Recorded(t.with_timezone(&Utc)))
    }

    /// Whether `event` had happened by then.
    pub fn includes(&self, event: &RecordedEvent) -> bool {
        match self {
            AsOf::Recorded(t) => event.recorded_at <= *t,
            AsOf::Position(p) => event.global <= *p,
        }
    }
}

/// Folds an expense's events, in order, yielding the expense after each.
fn fold(events: &[RecordedEvent]) -> anyhow::Result<Vec<Expense>> {
    let mut expense = Expense::default();
    let mut after = Vec::with_capacity(events.len());
    for event in events {
        let payload: ExpenseEvent =
            serde_json::from_value(serde_json::Value::clone(&event.clone().upcast().payload))?;
        expense.apply(payload);
        after.push(expense.clone());
    }
    Ok(after)
}

/// An expense's events (personal fields opened) up to `as_of` (all without it), and the
/// expense they fold into; only for whoever may see the expense: its organization's
/// approvers, auditors and admins, and its owner. An expense that did not exist yet is
/// not found.
pub async fn expense_as_of(
    store: &EventStore,
    actor: &Actor,
    id: Uuid,
    as_of: Option<AsOf>,
) -> UseCaseResult<(Expense, Vec<RecordedEvent>)> {
    let stored = aggregate_events(store.database(), AGGREGATE_TYPE, &id.to_string())
        .await
        .map_err(anyhow::Error::from)?;
    let events: Vec<RecordedEvent> = stored
        .into_iter()
        .filter(|e| as_of.is_none_or(|a| a.includes(e)))
        .collect();
    let events = store.vault().open_all(events).await?;
    let expense = fold(&events)?.pop().unwrap_or_default();
    // Deleted expenses keep their history: auditors need to see what was removed.
    let state = expense
        .state
        .as_ref()
        .filter(|s| s.organization_id == actor.organization_id)
        .ok_or_else(|| match as_of {
            Some(_) => UseCaseError::not_found("no such expense then"),
            None => UseCaseError::not_found("no such expense"),
        })?;
    if state.owner_id != actor.user_id && !actor.role.sees_all_expenses() {
        return Err(UseCaseError::forbidden(
            "employees see only their own expenses",
        ));
    }
    Ok((expense, events))
}

/// What each edit among `events` (opened) changed, by aggregate id and sequence. The
/// streams `events` hold only part of are read from `db` and opened with `vault`.
pub async fn edit_changes(
    db: &Database,
    vault: &Vault,
    events: &[RecordedEvent],
) -> anyhow::Result<HashMap<(String, i64), Vec<FieldChange>>> {
    let mut streams: HashMap<&str, Vec<&RecordedEvent>> = HashMap::new();
    for event in events {
        if event.aggregate_type == AGGREGATE_TYPE {
            streams.entry(&event.aggregate_id).or_default().push(event);
        }
    }
    let mut changes = HashMap::new();
    for (id, given) in streams {
        if !given
            .iter()
            .any(|e| e.event_type == expensewise_domain::expense::EXPENSE_UPDATED)
        {
            continue;
        }
        let whole = given
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i as i64 + 1);
        let stream = match whole {
            true => given.into_iter().cloned().collect(),
            false => {
                let stored = aggregate_events(db, AGGREGATE_TYPE, id).await?;
                vault.open_all(stored).await?
            }
        };
        let after = fold(&stream)?;
        for (i, event) in stream.iter().enumerate() {
            if event.event_type != expensewise_domain::expense::EXPENSE_UPDATED || i == 0 {
                continue;
            }
            if let (Some(before), Some(now)) = (&after[i - 1].state, &after[i].state) {
                changes.insert(
                    (event.aggregate_id.clone(), event.sequence),
                    now.changes_since(before),
                );
            }
        }
    }
    Ok(changes)
}
