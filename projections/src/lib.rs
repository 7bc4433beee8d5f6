//! Read models: the tables queries are answered from, the projectors that build them
//! from events (each writing its checkpoint in the same transaction as its rows), and
//! their rebuild. The event-flow issue fills this crate; until then every query of the
//! API reads aggregates straight from the event store.
