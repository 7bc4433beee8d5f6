//! `expensewise dead-letters`: an operator lists, inspects, retries and discards the
//! events workers gave up on, in every organization (admins have the same for theirs
//! under `/v1/admin/dead-letters` and in the console). Each retry and discard is
//! recorded as an event of the event's organization, with no actor.

use clap::Subcommand;
use expensewise_application::dead_letters as use_case;
use expensewise_application::UseCaseError;
use expensewise_domain::organization::DeadLetterSettlement;
use expensewise_infra::dead_letters::{self, DeadLetter, Filter, Status};
use expensewise_infra::event_store::event_at;
use expensewise_infra::{Config, Database, EventStore, Vault};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Dead letters, the latest failure first: one line each (worker, event id, status,
    /// attempts, event type, failed at, error).
    List {
        /// open (the default), retrying, retried, discarded, or all.
        #[arg(long, default_value = "open", value_parser = ["open", "retrying", "retried", "discarded", "all"])]
        status: String,
        #[arg(long)]
        worker: Option<String>,
        /// Only this organization's.
        #[arg(long)]
        organization: Option<Uuid>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter and its event, as JSON.
    Show { worker: String, event_id: Uuid },
    /// Have the worker try the event once more (the worker of `serve` or `worker …`
    /// does, within about a second).
    Retry { worker: String, event_id: Uuid },
    /// Set the event aside for good.
    Discard {
        worker: String,
        event_id: Uuid,
        /// Why (recorded in the organization's history).
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(config: Config, action: DeadLettersCommand) -> anyhow::Result<()> {
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let store = EventStore::new(db.clone(), vault);
    let outcome = act(&store, action).await;
    db.close().await;
    outcome
}

async fn act(store: &EventStore, action: DeadLettersCommand) -> anyhow::Result<()> {
    match action {
        DeadLettersCommand::List {
            status,
            worker,
            organization,
            limit,
            json,
        } => {
            let filter = Filter {
                organization_id: organization,
                status: Status::parse(&status),
                worker,
            };
            let letters = dead_letters::list(store.database(), &filter, limit).await?;
            for letter in &letters {
                if json {
                    println!("{}", summary(letter));
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        letter.worker,
                        letter.event_id,
                        letter.status.as_str(),
                        letter.attempts,
                        letter.event_type,
                        letter.failed_at.to_rfc3339(),
                        letter.error.replace(['\t', '\n'], " ")
                    );
                }
            }
            if !json {
                eprintln!("{} dead letter(s)", letters.len());
            }
            Ok(())
        }
        DeadLettersCommand::Show { worker, event_id } => {
            let letter = use_case::visible(store, None, &worker, event_id)
                .await
                .map_err(explain)?;
            let event = event_at(
                store.database(),
                &letter.aggregate_type,
                &letter.aggregate_id,
                letter.sequence,
            )
            .await?;
            let event = match event {
                Some(event) => {
                    let opened = store.vault().open_all(vec![event.upcast()]).await?;
                    opened.into_iter().next().map(|e| {
                        json!({"event_type": e.event_type, "event_version": e.event_version,
                               "recorded_at": e.recorded_at, "payload": e.payload,
                               "metadata": e.metadata})
                    })
                }
                None => None,
            };
            let mut shown = summary(&letter);
            shown["event"] = event.unwrap_or(serde_json::Value::Null);
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(())
        }
        DeadLettersCommand::Retry { worker, event_id } => {
            settle(store, &worker, event_id, DeadLetterSettlement::Retry).await
        }
        DeadLettersCommand::Discard {
            worker,
            event_id,
            reason,
        } => {
            let reason = use_case::discard_reason(&reason).map_err(explain)?;
            settle(
                store,
                &worker,
                event_id,
                DeadLetterSettlement::Discard { reason },
            )
            .await
        }
    }
}

async fn settle(
    store: &EventStore,
    worker: &str,
    event_id: Uuid,
    settlement: DeadLetterSettlement,
) -> anyhow::Result<()> {
    let metadata = expensewise_application::operator_metadata(Uuid::nil(), Uuid::new_v4());
    let (letter, _) = use_case::settle(store, None, &metadata, worker, event_id, settlement)
        .await
        .map_err(explain)?;
    println!("{}", summary(&letter));
    Ok(())
}

fn summary(letter: &DeadLetter) -> serde_json::Value {
    json!({
        "worker": letter.worker,
        "event_id": letter.event_id,
        "organization_id": letter.organization_id,
        "global_position": letter.global_position,
        "aggregate_type": letter.aggregate_type,
        "aggregate_id": letter.aggregate_id,
        "sequence": letter.sequence,
        "event_type": letter.event_type,
        "error": letter.error,
        "failed_at": letter.failed_at,
        "status": letter.status.as_str(),
        "attempts": letter.attempts,
        "settled_at": letter.settled_at,
        "discard_reason": letter.discard_reason,
    })
}

/// A use case's "no" as one line for the operator: what the API would say of it.
fn explain(e: UseCaseError) -> anyhow::Error {
    match e {
        UseCaseError::Rejected(rejection) => {
            anyhow::anyhow!("{}", crate::error::ApiError::from(rejection).detail())
        }
        other => anyhow::Error::new(other),
    }
}
