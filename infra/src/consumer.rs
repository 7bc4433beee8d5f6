//! Workers that react to events (OCR, e-mail, …): one handler trait, two ways to feed it.
//!
//! - **JetStream**: a durable pull consumer per worker, filtered to the event types it
//!   handles, with explicit acks. Replicas of a worker share the durable consumer, so each
//!   event goes to one of them. A failed event is redelivered with growing delays; after
//!   [`Delivery::max_deliver`] attempts it is published to the dead-letter subject
//!   `expensewise.dead.<worker>` (kept on its own stream) and the worker moves on. When
//!   JetStream gives a message up itself (its last delivery went to a worker that died
//!   holding it), its advisory is turned into that dead letter instead.
//! - **Event store** (the embedded default, or no NATS): an in-process tail from the
//!   worker's checkpoint, retrying the same way.
//!
//! Either way what a worker gives up on is also recorded in the `dead_letters` table
//! (`crate::dead_letters`), where admins and operators retry or discard it: the worker
//! looks for the retries asked of it about every second, idle or busy.
//!
//! Either way delivery is at least once: a worker killed after its effect but before the
//! ack (or checkpoint) sees the event again, so handlers are idempotent.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, stream, AckKind};
use async_trait::async_trait;
use futures::{FutureExt as _, StreamExt};
use tokio::sync::watch;

use crate::checkpoints;
use crate::db::Database;
use crate::dead_letters;
use crate::event_store::{event_at, Follow, RecordedEvent};
use crate::nats::{self, EventMessage, SUBJECT_PREFIX};
use crate::vault::Vault;
use crate::wake::Wake;

/// The stream dead letters are kept on.
pub const DEAD_LETTER_STREAM: &str = "EXPENSEWISE_DEAD_LETTERS";
pub const DEAD_LETTER_PREFIX: &str = "expensewise.dead";
/// Header of a dead letter: why the worker gave up.
pub const ERROR_HEADER: &str = "Expensewise-Error";

pub fn dead_letter_subject(worker: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}.{worker}")
}

/// Reacts to events of the types it names.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Stable name: the durable consumer's and the checkpoint's.
    fn name(&self) -> &'static str;

    /// `(aggregate type, event type)` pairs it handles.
    fn handles(&self) -> &'static [(&'static str, &'static str)];

    /// Does the work for one event. An error means "try again later"; the worker gives
    /// up on the event after [`Delivery::max_deliver`] attempts.
    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()>;
}

/// How hard a worker tries before it gives an event up.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub max_deliver: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long JetStream waits for an answer before delivering a message again: a
    /// worker that dies holding a message gives it up this soon; a live one keeps it
    /// with progress acknowledgements however long it works.
    pub ack_wait: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_deliver: 5,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            ack_wait: Duration::from_secs(30),
        }
    }
}

impl Delivery {
    fn retry_after(&self, failures: u32) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        doubled.min(self.max_retry)
    }
}

/// Where a worker's events come from.
#[derive(Clone)]
pub enum Feed {
    /// The event store, through this process's tail.
    Store(Follow),
    /// JetStream, whose messages hold events as stored: the vault opens them.
    JetStream(Box<jetstream::Context>, Vault),
}

/// Runs `handler` until `shutdown` turns true. Infrastructure failures (the database or
/// NATS unreachable) are retried; only events are ever given up on.
pub async fn run(
    feed: Feed,
    handler: Arc<dyn Handler>,
    delivery: Delivery,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = handler.name();
    while !*shutdown.borrow() {
        let outcome = match &feed {
            Feed::Store(follow) => {
                tail_store(follow, handler.as_ref(), delivery, &mut shutdown).await
            }
            Feed::JetStream(js, vault) => {
                pull_messages(js, vault, handler.as_ref(), delivery, &mut shutdown).await
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(
                worker = name,
                error = format!("{e:#}"),
                "worker interrupted; resuming"
            );
            tokio::select! {
                _ = tokio::time::sleep(delivery.first_retry) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn checkpoint_name(handler: &dyn Handler) -> String {
    format!("worker.{}", handler.name())
}

async fn tail_store(
    follow: &Follow,
    handler: &dyn Handler,
    delivery: Delivery,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let db = follow.database();
    let checkpoint = checkpoint_name(handler);
    let mut wake = Wake::new(follow);
    // A handled event's checkpoint is stored at once; events the worker ignores move it
    // in memory, stored when `checkpoints::Stored` finds it worth a write, and at
    // shutdown: after a crash the worker reads at most that much again and ignores it
    // again, and under load ignoring costs no write per batch.
    let mut stored = checkpoints::Stored::load(db, checkpoint).await?;
    let mut position = stored.at();
    let mut retries = RetryWatch::default();
    while !*shutdown.borrow() {
        retries.look(db, &follow.vault, handler).await?;
        let events = follow.tail.read_after(position, 100).await?;
        if events.is_empty() {
            stored.idle(db, position).await?;
            tokio::select! {
                _ = wake.wait(checkpoints::Stored::IDLE) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for event in events {
            if *shutdown.borrow() {
                break;
            }
            position = event.global;
            let wanted = handler
                .handles()
                .iter()
                .any(|(a, t)| *a == event.aggregate_type && *t == event.event_type);
            if !wanted {
                continue;
            }
            let event = follow.vault.reveal(event).await?;
            if let Err(reason) = attempt(handler, &event, delivery, shutdown).await {
                record_dead_letter(db, handler.name(), &event, &reason).await?;
            }
            stored.advance(db, position).await?;
        }
        stored.busy(db, position).await?;
    }
    stored.advance(db, position).await
}

/// Tries `event` up to the delivery limit, waiting longer after each failure. Returns
/// the last error when it gives up (or shutdown interrupts the waits).
async fn attempt(
    handler: &dyn Handler,
    event: &RecordedEvent,
    delivery: Delivery,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut failures = 0;
    loop {
        match traced(handler, event).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                failures += 1;
                let reason = format!("{e:#}");
                tracing::warn!(worker = handler.name(), event_type = %event.event_type,
                    aggregate_id = %event.aggregate_id, attempt = failures, error = %reason,
                    "handling an event failed");
                if failures >= delivery.max_deliver || *shutdown.borrow() {
                    return Err(reason);
                }
                metrics::counter!("expensewise_consumer_redeliveries_total", "worker" => handler.name())
                    .increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(delivery.retry_after(failures)) => {}
                    _ = shutdown.changed() => return Err(reason),
                }
            }
        }
    }
}

async fn record_dead_letter(
    db: &Database,
    worker: &str,
    event: &RecordedEvent,
    reason: &str,
) -> anyhow::Result<()> {
    let id = nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    tracing::error!(worker, event_id = %id, error = reason, "gave up on an event: dead letter");
    metrics::counter!("expensewise_dead_letters_total", "worker" => worker.to_string())
        .increment(1);
    dead_letters::record(db, worker, event, reason).await
}

/// When a worker last looked for the retries asked of it: about once a second, whether
/// it is idle or busy (then not once per event).
#[derive(Default)]
struct RetryWatch {
    looked: Option<tokio::time::Instant>,
}

impl RetryWatch {
    const EVERY: Duration = Duration::from_secs(1);

    async fn look(
        &mut self,
        db: &Database,
        vault: &Vault,
        handler: &dyn Handler,
    ) -> anyhow::Result<()> {
        if self.looked.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return Ok(());
        }
        self.looked = Some(tokio::time::Instant::now());
        retry_asked(db, vault, handler).await
    }
}

/// Tries once more each event an admin or operator asked this worker to retry: the
/// dead letter is settled when it works, and open again (with the new error) when not.
async fn retry_asked(db: &Database, vault: &Vault, handler: &dyn Handler) -> anyhow::Result<()> {
    for letter in dead_letters::retries(db, handler.name()).await? {
        let stored = event_at(
            db,
            &letter.aggregate_type,
            &letter.aggregate_id,
            letter.sequence,
        )
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the event {} of a dead letter is not in the store",
                letter.event_id
            )
        })?;
        let event = vault.reveal(stored.upcast()).await?;
        match traced(handler, &event).await {
            Ok(()) => {
                tracing::info!(worker = handler.name(), event_id = %letter.event_id,
                    "a retried dead letter was handled");
                dead_letters::retried(db, handler.name(), letter.event_id).await?;
            }
            Err(e) => record_dead_letter(db, handler.name(), &event, &format!("{e:#}")).await?,
        }
    }
    Ok(())
}

/// The dead-letter stream, created if absent.
pub async fn ensure_dead_letter_stream(js: &jetstream::Context) -> anyhow::Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: DEAD_LETTER_STREAM.to_string(),
        subjects: vec![format!("{DEAD_LETTER_PREFIX}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the JetStream stream {DEAD_LETTER_STREAM}: {e}"))
}

/// The worker's durable consumer, created, or updated to this configuration.
pub async fn durable(
    js: &jetstream::Context,
    handler: &dyn Handler,
    delivery: Delivery,
) -> anyhow::Result<PullConsumer> {
    let stream = nats::ensure_stream(js).await?;
    ensure_dead_letter_stream(js).await?;
    let durable = format!("worker-{}", handler.name());
    // Created, or updated to this config: a new version of a worker may handle more
    // event types than the consumer it finds was made for.
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            filter_subjects: handler
                .handles()
                .iter()
                .map(|(a, t)| format!("{SUBJECT_PREFIX}.{a}.{t}"))
                .collect(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: delivery.ack_wait,
            // One delivery beyond the limit: the one that finds the attempts used up
            // (by failures, or by workers that died handling it) and dead-letters it.
            max_deliver: i64::from(delivery.max_deliver) + 1,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the JetStream consumer {durable}: {e}"))
}

enum Outcome {
    Done,
    Retry(String),
    GiveUp(String),
}

async fn pull_messages(
    js: &jetstream::Context,
    vault: &Vault,
    handler: &dyn Handler,
    delivery: Delivery,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = durable(js, handler, delivery).await?;
    // One replica of the worker hears of each message JetStream gives up on.
    let mut given_up = js
        .client()
        .queue_subscribe(
            max_deliveries_subject(handler.name()),
            format!("worker-{}", handler.name()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to JetStream's advisories: {e}"))?;
    let events = nats::ensure_stream(js).await?;
    let db = vault.database();
    let mut retries = RetryWatch::default();
    while !*shutdown.borrow() {
        while let Some(Some(advisory)) = given_up.next().now_or_never() {
            dead_letter_given_up(js, db, &events, handler.name(), &advisory.payload).await?;
        }
        retries.look(db, vault, handler).await?;
        // One at a time: replicas share the consumer, and messages waiting in one
        // replica's batch would idle while the others could work — and run out their
        // acknowledgement time.
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("fetching from JetStream: {e}"))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("receiving from JetStream: {e}"))?;
            let delivered = message
                .info()
                .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
                .unwrap_or(1);
            let event = serde_json::from_slice::<EventMessage>(&message.payload)
                .map_err(anyhow::Error::from)
                .and_then(EventMessage::into_event);
            let outcome = match &event {
                Err(e) => Outcome::GiveUp(format!("the message is not an event: {e:#}")),
                Ok(_) if delivered > delivery.max_deliver => Outcome::GiveUp(format!(
                    "{} deliveries without an acknowledgement",
                    delivery.max_deliver
                )),
                Ok(event) => {
                    match reveal_and_handle(
                        vault,
                        handler,
                        event.clone(),
                        &message,
                        delivery.ack_wait,
                    )
                    .await
                    {
                        Ok(()) => Outcome::Done,
                        Err(e) if delivered >= delivery.max_deliver => {
                            Outcome::GiveUp(format!("{e:#}"))
                        }
                        Err(e) => Outcome::Retry(format!("{e:#}")),
                    }
                }
            };
            let ack = match outcome {
                Outcome::Done => message.ack_with(AckKind::Ack).await,
                Outcome::GiveUp(reason) => {
                    dead_letter(js, handler.name(), &message, &reason).await?;
                    if let Ok(event) = &event {
                        dead_letters::record(db, handler.name(), event, &reason).await?;
                    }
                    message.ack_with(AckKind::Term).await
                }
                Outcome::Retry(reason) => {
                    metrics::counter!("expensewise_consumer_redeliveries_total", "worker" => handler.name())
                        .increment(1);
                    tracing::warn!(worker = handler.name(), attempt = delivered, error = %reason,
                        "handling an event failed; it will be redelivered");
                    message
                        .ack_with(AckKind::Nak(Some(delivery.retry_after(delivered))))
                        .await
                }
            };
            ack.map_err(|e| anyhow::anyhow!("acknowledging a message: {e}"))?;
        }
    }
    Ok(())
}

/// Opens the event's personal fields (a failure there, like the handler's, is tried
/// again) and handles it.
async fn reveal_and_handle(
    vault: &Vault,
    handler: &dyn Handler,
    event: RecordedEvent,
    message: &jetstream::Message,
    ack_wait: Duration,
) -> anyhow::Result<()> {
    let event = vault.reveal(event).await?;
    handle_in_progress(handler, &event, message, ack_wait).await
}

/// Handles the event in a span that continues the trace the event was written in.
async fn traced(handler: &dyn Handler, event: &RecordedEvent) -> anyhow::Result<()> {
    use tracing::Instrument;
    let span = tracing::info_span!("worker", worker = handler.name(),
        event_type = %event.event_type, aggregate_id = %event.aggregate_id,
        trace_id = tracing::field::Empty);
    crate::telemetry::continue_trace(&span, crate::telemetry::traceparent(event));
    handler.handle(event).instrument(span).await
}

/// Handles the event, telling JetStream every third of `ack_wait` that the work goes on.
async fn handle_in_progress(
    handler: &dyn Handler,
    event: &RecordedEvent,
    message: &jetstream::Message,
    ack_wait: Duration,
) -> anyhow::Result<()> {
    let handling = traced(handler, event);
    tokio::pin!(handling);
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + ack_wait / 3, ack_wait / 3);
    loop {
        tokio::select! {
            result = &mut handling => return result,
            _ = progress.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!(error = %e, "could not extend a message's acknowledgement time");
                }
            }
        }
    }
}

/// Publishes the message as it came, with the reason, to the worker's dead-letter subject,
/// and waits until JetStream has stored it.
pub async fn dead_letter(
    js: &jetstream::Context,
    worker: &str,
    message: &jetstream::Message,
    reason: &str,
) -> anyhow::Result<()> {
    let headers = message.headers.clone().unwrap_or_default();
    publish_dead_letter(
        js,
        worker,
        &message.subject,
        headers,
        message.payload.clone(),
        reason,
    )
    .await
}

/// The subject of JetStream's advisories about messages of `worker`'s consumer that
/// reached their most deliveries.
pub fn max_deliveries_subject(worker: &str) -> String {
    format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.worker-{worker}",
        nats::STREAM
    )
}

/// Turns JetStream's advisory that it gave a message up into the dead letter: the
/// message as stored, with why. The dead-letter stream drops a second copy (the same
/// `Nats-Msg-Id`) should a worker have written it too.
async fn dead_letter_given_up(
    js: &jetstream::Context,
    db: &Database,
    events: &stream::Stream,
    worker: &str,
    advisory: &[u8],
) -> anyhow::Result<()> {
    let advisory: serde_json::Value = serde_json::from_slice(advisory)
        .map_err(|e| anyhow::anyhow!("JetStream's advisory does not read: {e}"))?;
    let Some(sequence) = advisory["stream_seq"].as_u64() else {
        tracing::warn!(worker, %advisory, "an advisory without a stream sequence");
        return Ok(());
    };
    let message = match events.get_raw_message(sequence).await {
        Ok(message) => message,
        Err(e) => {
            // Gone from the stream (its limits): the event stays in the store, and the
            // error names it.
            tracing::error!(worker, sequence, error = %e,
                "JetStream gave up on a message that is no longer in its stream");
            return Ok(());
        }
    };
    let reason = format!(
        "{} deliveries without an answer: the workers holding it stopped",
        advisory["deliveries"].as_u64().unwrap_or_default()
    );
    let event = serde_json::from_slice::<EventMessage>(&message.payload)
        .map_err(anyhow::Error::from)
        .and_then(EventMessage::into_event);
    publish_dead_letter(
        js,
        worker,
        &message.subject,
        message.headers,
        message.payload,
        &reason,
    )
    .await?;
    match event {
        Ok(event) => dead_letters::record(db, worker, &event, &reason).await,
        Err(_) => Ok(()),
    }
}

async fn publish_dead_letter(
    js: &jetstream::Context,
    worker: &str,
    subject: &str,
    stored: async_nats::HeaderMap,
    payload: bytes::Bytes,
    reason: &str,
) -> anyhow::Result<()> {
    // What the relay asked of the event stream when it published the event (where that
    // stream had to end, which atomic batch it came in) is kept with the message; asked
    // again of the dead-letter stream it would be refused. The message's id stays: it
    // drops a second copy.
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in stored.iter() {
        let name: &str = name.as_ref();
        if name.starts_with("Nats-Expected-") || name.starts_with("Nats-Batch-") {
            continue;
        }
        for value in values {
            headers.append(name, value.clone());
        }
    }
    // Header values cannot span lines.
    headers.insert(ERROR_HEADER, reason.replace(['\r', '\n'], " ").as_str());
    headers.insert("Expensewise-Original-Subject", subject);
    tracing::error!(
        worker,
        subject,
        error = reason,
        "gave up on an event: dead letter"
    );
    metrics::counter!("expensewise_dead_letters_total", "worker" => worker.to_string())
        .increment(1);
    js.publish_with_headers(dead_letter_subject(worker), headers, payload)
        .await
        .map_err(|e| anyhow::anyhow!("publishing a dead letter: {e}"))?
        .await
        .map_err(|e| anyhow::anyhow!("JetStream did not store a dead letter: {e}"))?;
    Ok(())
}
