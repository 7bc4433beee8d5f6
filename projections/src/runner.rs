//! Running projections: read events after the checkpoint, apply them, advance the
//! checkpoint — all of one batch in one transaction.
//!
//! Events come from one of two sources behind the same loop: the event store itself
//! (the embedded default, and any installation without NATS), or a durable JetStream
//! pull consumer. Either way the checkpoint is a global position, and events at or
//! before it are skipped, so redelivered messages change nothing.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use expensewise_infra::checkpoints as checkpoint;
use expensewise_infra::consumer;
use expensewise_infra::db::Tx;
use expensewise_infra::event_store::{Follow, Tail};
use expensewise_infra::nats::{self, EventMessage};
use expensewise_infra::telemetry::{self, traceparent};
use expensewise_infra::wake::Wake;
use expensewise_infra::{Database, GlobalPosition, RecordedEvent, Vault};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events read per transaction.
const BATCH: usize = 500;
/// How often to look for events written by other processes when nothing woke us.
const POLL: Duration = Duration::from_millis(100);
/// Pause after a batch before fetching the next, so that busy periods make big batches.
const LINGER: Duration = Duration::from_millis(5);
/// Pause after a failure before reading again from the stored checkpoint.
const RETRY: Duration = Duration::from_secs(1);

/// A read model: what to do with each event, inside the batch's transaction.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Stable name: the checkpoint's key.
    fn name(&self) -> &'static str;

    /// The table it writes.
    fn table(&self) -> &str;

    /// The aggregates whose events it reads. It is handed only theirs, so that the
    /// personal fields of the others are not opened (copied and decrypted) for it.
    fn aggregate_types(&self) -> &'static [&'static str];

    /// Applies a batch of events, in order. Events it does not care about are ignored;
    /// events it already applied change nothing.
    async fn apply(&self, tx: &mut Tx, events: &[RecordedEvent]) -> anyhow::Result<()>;
}

/// Where a projector reads events from.
#[derive(Clone)]
pub enum Source {
    /// The event store, in its global order.
    Store,
    /// The JetStream event stream, through a durable consumer per projection.
    JetStream(Box<jetstream::Context>),
}

pub struct Projector {
    follow: Follow,
    source: Source,
}

impl Projector {
    /// `follow` is how this process follows its store (`EventStore::follow`): the tail
    /// its projections share, woken by its appends.
    pub fn new(follow: Follow, source: Source) -> Self {
        Self { follow, source }
    }

    /// Runs `projection` until `shutdown` becomes true.
    pub fn spawn(
        &self,
        projection: Arc<dyn Projection>,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(run(
            self.follow.clone(),
            projection,
            self.source.clone(),
            shutdown,
        ))
    }
}

async fn run(
    follow: Follow,
    projection: Arc<dyn Projection>,
    source: Source,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let db = follow.database();
    let mut wake = Wake::new(&follow);
    let mut consumer: Option<PullConsumer> = None;
    // The checkpoint as this loop last wrote it; read again only after a failure (another
    // instance may have moved it, which the next batch would notice anyway).
    let mut known: Option<GlobalPosition> = None;
    // Whether the last step failed (and its error was recorded).
    let mut failing = false;
    while !*shutdown.borrow() {
        let step = async {
            let from = match known {
                Some(position) => position,
                None => checkpoint::load(db, name).await?,
            };
            match &source {
                Source::Store => apply_store_batch(&follow, projection.as_ref(), from).await,
                Source::JetStream(js) => {
                    let consumer = match &consumer {
                        Some(c) => c.clone(),
                        None => {
                            let c = durable_consumer(js, name).await?;
                            consumer = Some(c.clone());
                            c
                        }
                    };
                    apply_messages(&follow, js, projection.as_ref(), &consumer, from).await
                }
            }
        };
        let outcome = step.await;
        if failing && outcome.is_ok() {
            failing = false;
            if let Err(e) = crate::status::set_error(db, name, None).await {
                tracing::warn!(projection = name, error = %e, "could not clear the projection's error");
            }
        }
        match outcome {
            Ok(Some((position, events))) => {
                known = Some(position);
                // Several events at once mean a steady stream of commands: waiting a
                // moment lets the next batch gather many for one transaction instead of
                // one each. A lone event (a quiet system) is followed at once.
                if events > 1 {
                    tokio::select! {
                        _ = tokio::time::sleep(LINGER) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
            Ok(None) => {
                if let Source::Store = source {
                    tokio::select! {
                        _ = wake.wait(POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
            Err(e) if e.is::<CheckpointMoved>() => {
                tracing::debug!(
                    projection = name,
                    "checkpoint moved elsewhere; reading it again"
                );
                known = None;
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(projection = name, error, "projection failed; retrying");
                // For operators, beside the model's lag; when the database itself is what
                // fails, the log has it.
                failing = true;
                if let Err(e) = crate::status::set_error(db, name, Some(&error)).await {
                    tracing::debug!(projection = name, error = %e, "could not record the projection's error");
                }
                consumer = None;
                known = None;
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Applies the events after `from` from the store; returns the new checkpoint, or
/// `None` when there was nothing to do.
pub async fn apply_batch(
    db: &Database,
    vault: &Vault,
    projection: &dyn Projection,
    from: GlobalPosition,
) -> anyhow::Result<Option<GlobalPosition>> {
    let follow = Follow {
        tail: Tail::new(db.clone()),
        appends: watch::channel(0).1,
        vault: vault.clone(),
    };
    Ok(apply_store_batch(&follow, projection, from)
        .await?
        .map(|(p, _)| p))
}

/// [`apply_batch`] through a process's tail, also telling how many events the batch had.
async fn apply_store_batch(
    follow: &Follow,
    projection: &dyn Projection,
    from: GlobalPosition,
) -> anyhow::Result<Option<(GlobalPosition, usize)>> {
    let events = follow.tail.read_after(from, BATCH).await?;
    let count = events.len();
    Ok(apply_events(follow, projection, from, events)
        .await?
        .map(|p| (p, count)))
}

/// Applies `events` (those after `from`) and moves the checkpoint, in one transaction. A
/// checkpoint moved meanwhile by another instance rolls it all back.
async fn apply_events(
    follow: &Follow,
    projection: &dyn Projection,
    from: GlobalPosition,
    events: Vec<RecordedEvent>,
) -> anyhow::Result<Option<GlobalPosition>> {
    let events: Vec<RecordedEvent> = events.into_iter().filter(|e| e.global > from).collect();
    // How long the oldest event of the batch waited for this projection.
    metrics::gauge!("expensewise_projection_lag_seconds", "projection" => projection.name())
        .set(nats::lag_seconds(events.first()));
    let Some(last) = events.last().map(|e| e.global) else {
        return Ok(None);
    };
    let count = events.len() as u64;
    let events = read_by(projection, events);
    // Exported traces show each event reaching each projection that reads it; the spans
    // close when the batch is committed (or given up).
    let _spans: Vec<tracing::Span> = if telemetry::exporting() {
        events
            .iter()
            .map(|e| {
                let span = tracing::info_span!("projection", projection = projection.name(),
                    event_type = %e.event_type, aggregate_id = %e.aggregate_id,
                    trace_id = tracing::field::Empty);
                telemetry::continue_trace(&span, traceparent(e));
                span
            })
            .collect()
    } else {
        Vec::new()
    };
    // Opened before the transaction begins: a data key not yet in memory is read
    // without holding it.
    let events = follow.vault.reveal_all(events).await?;
    let mut tx = follow.database().begin_derived().await?;
    if checkpoint::lock(&mut tx, projection.name()).await? != from {
        return Err(CheckpointMoved.into());
    }
    projection.apply(&mut tx, &events).await?;
    if checkpoint::advance(&mut tx, projection.name(), from, last).await? {
        tx.commit().await?;
        metrics::counter!("expensewise_projection_events_total", "projection" => projection.name())
            .increment(count);
        Ok(Some(last))
    } else {
        Err(CheckpointMoved.into())
    }
}

/// The events of `events` that `projection` reads, in order.
pub(crate) fn read_by(
    projection: &dyn Projection,
    events: Vec<RecordedEvent>,
) -> Vec<RecordedEvent> {
    let types = projection.aggregate_types();
    events
        .into_iter()
        .filter(|e| types.contains(&e.aggregate_type.as_str()))
        .collect()
}

/// Another instance (or a rebuild's swap) moved the checkpoint since this one read it:
/// nothing was applied, and the projector reads the checkpoint again.
#[derive(Debug, thiserror::Error)]
#[error("the checkpoint was moved by another instance")]
struct CheckpointMoved;

/// Applies what the messages announce, taking the events themselves from the store.
///
/// A broker can lose messages it acknowledged (a crash before its disk write), and a
/// consumer that died holding messages gets them redelivered late, after newer ones. Either
/// would leave a hole a checkpoint then covers for good. So the messages only say how far
/// to go; the events up to there are read from the store, in its global order, and
/// every hole is filled.
async fn fill_from_store(
    follow: &Follow,
    projection: &dyn Projection,
    from: GlobalPosition,
    announced: Vec<RecordedEvent>,
) -> anyhow::Result<Option<GlobalPosition>> {
    let Some(upto) = announced
        .iter()
        .map(|e| e.global)
        .filter(|g| *g > from)
        .max()
    else {
        return Ok(None);
    };
    let mut position = from;
    while position < upto {
        let events: Vec<RecordedEvent> = follow
            .tail
            .read_after(position, BATCH)
            .await?
            .into_iter()
            .filter(|e| e.global <= upto)
            .collect();
        let fresh = announced
            .iter()
            .filter(|e| e.global > position && e.global <= upto)
            .count();
        if events.len() > fresh {
            tracing::info!(
                projection = projection.name(),
                missing = events.len() - fresh,
                "filled events the broker did not deliver from the event store"
            );
        }
        match apply_events(follow, projection, position, events).await? {
            Some(next) => position = next,
            None => {
                anyhow::bail!("announced events up to {upto} are not readable in the store yet")
            }
        }
    }
    Ok(Some(position))
}

/// At most one batch is outstanding per consumer; ordering and completeness come from
/// the store (see [`fill_from_store`]), not from the broker.
async fn durable_consumer(js: &jetstream::Context, name: &str) -> anyhow::Result<PullConsumer> {
    let stream = nats::ensure_stream(js).await?;
    consumer::ensure_dead_letter_stream(js).await?;
    let durable = format!("projection-{name}");
    stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: BATCH as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the JetStream consumer {durable}: {e}"))
}

/// Applies one fetched batch of messages. They are acknowledged only after their effect
/// (and the checkpoint) committed; on any failure they are handed back for redelivery.
async fn apply_messages(
    follow: &Follow,
    js: &jetstream::Context,
    projection: &dyn Projection,
    pull: &PullConsumer,
    from: GlobalPosition,
) -> anyhow::Result<Option<(GlobalPosition, usize)>> {
    let mut batch = pull
        .fetch()
        .max_messages(BATCH)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("fetching from JetStream: {e}"))?;
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.map_err(|e| anyhow::anyhow!("receiving from JetStream: {e}"))?);
    }
    if messages.is_empty() {
        metrics::gauge!("expensewise_projection_lag_seconds", "projection" => projection.name())
            .set(0.0);
        return Ok(None);
    }
    // A message that is not an event can never be applied: it is set aside as a dead
    // letter rather than blocking the consumer. (Events come from the store anyway.)
    let mut events = Vec::with_capacity(messages.len());
    let mut kept = Vec::with_capacity(messages.len());
    for message in messages {
        match serde_json::from_slice::<EventMessage>(&message.payload)
            .map_err(anyhow::Error::from)
            .and_then(EventMessage::into_event)
        {
            Ok(event) => {
                events.push(event);
                kept.push(message);
            }
            Err(e) => {
                let worker = format!("projection-{}", projection.name());
                let reason = format!("the message is not an event: {e:#}");
                consumer::dead_letter(js, &worker, &message, &reason).await?;
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| anyhow::anyhow!("acknowledging a message: {e}"))?;
            }
        }
    }
    let messages = kept;
    let count = messages.len();
    let outcome = fill_from_store(follow, projection, from, events).await;
    match outcome {
        Ok(applied) => {
            for message in &messages {
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("acknowledging a message: {e}"))?;
            }
            Ok(Some((applied.unwrap_or(from), count)))
        }
        Err(e) => {
            for message in &messages {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            Err(e)
        }
    }
}
