//! Read models: the tables queries are answered from, the projectors that build them
//! from the events, and the queries themselves.
//!
//! A projector reads events in the store's global order and writes each batch's rows and
//! its checkpoint in one transaction, so a crash neither loses nor repeats an event's
//! effect. Read models are disposable: they can be rebuilt from the events at any time.

pub mod checkpoint;
pub mod expenses;
pub mod rebuild;
pub mod receipts;
pub mod runner;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use checkpoint::{Checkpoints, ConsistencyError};
pub use runner::{Projection, Projector};
