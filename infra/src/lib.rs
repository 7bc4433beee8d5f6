//! Adapters between the domain and the outside world: the event stores (PostgreSQL or
//! embedded SQLite), the vault of personal data, the idempotency ledger, configuration
//! and telemetry.

pub mod audit_log;
mod aws;
pub mod checkpoints;
pub mod config;
pub mod consumer;
pub mod credentials;
pub mod db;
pub mod dead_letters;
pub mod event_store;
pub mod exchange_rates;
pub mod idempotency;
pub mod mail;
pub mod metrics;
pub mod nats;
pub mod object_store;
pub mod replica;
pub mod sso;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vault;
pub mod wake;
pub mod webhooks;

pub use config::{Config, ConfigError};
pub use db::Database;
pub use event_store::{EventStore, GlobalPosition, RecordedEvent};
pub use vault::Vault;
