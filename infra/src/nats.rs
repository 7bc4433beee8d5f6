//! NATS JetStream: the stream events are fanned out on, and the relay that publishes
//! committed events to it in the store's global order.
//!
//! Every event is published with its id as `Nats-Msg-Id`, so publishing it again (after
//! a crash between publish and checkpoint) is dropped by the server's duplicate window,
//! and consumers that see it anyway skip it by its global position.

use std::sync::Arc;

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::Database;
use crate::event_store::{Follow, GlobalPosition, RecordedEvent};

/// The stream every event goes to.
pub const STREAM: &str = "EXPENSEWISE_EVENTS";
/// Subjects are `expensewise.events.<aggregate type>.<event type>`.
pub const SUBJECT_PREFIX: &str = "expensewise.events";
/// How long JetStream remembers message ids to drop re-publications.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8f0e_54c3_19a7_4d2b_b6e1_73c0_2a9d_5e44);

/// The id of an event: stable, derived from where it is in its aggregate's stream.
pub fn event_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{aggregate_type}/{aggregate_id}/{sequence}").as_bytes(),
    )
}

pub fn subject(event: &RecordedEvent) -> String {
    format!(
        "{SUBJECT_PREFIX}.{}.{}",
        event.aggregate_type, event.event_type
    )
}

/// An event as it travels on NATS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMessage {
    pub event_id: Uuid,
    /// The global position, `txid.position`.
    pub global_position: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub metadata: Value,
    pub payload: Value,
}

impl EventMessage {
    pub fn new(event: &RecordedEvent) -> Self {
        Self {
            event_id: event_id(&event.aggregate_type, &event.aggregate_id, event.sequence),
            global_position: event.global.to_string(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            recorded_at: event.recorded_at,
            metadata: Value::clone(&event.metadata),
            payload: Value::clone(&event.payload),
        }
    }

    pub fn into_event(self) -> anyhow::Result<RecordedEvent> {
        Ok(RecordedEvent {
            global: self
                .global_position
                .parse()
                .map_err(|e| anyhow::anyhow!("message {}: {e}", self.event_id))?,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: Arc::new(self.payload),
            metadata: Arc::new(self.metadata),
            recorded_at: self.recorded_at,
        })
    }
}

fn headers(event: &RecordedEvent, id: Uuid) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.to_string().as_str());
    headers.insert("Ew-Event-Type", event.event_type.as_str());
    headers.insert("Ew-Event-Version", event.event_version.as_str());
    headers.insert("Ew-Aggregate-Type", event.aggregate_type.as_str());
    headers.insert("Ew-Aggregate-Id", event.aggregate_id.as_str());
    headers.insert("Ew-Sequence", event.sequence.to_string().as_str());
    headers.insert("Ew-Global-Position", event.global.to_string().as_str());
    for (key, header) in [
        ("organization_id", "Ew-Organization-Id"),
        ("correlation_id", "Ew-Correlation-Id"),
        ("causation_id", "Ew-Causation-Id"),
        ("traceparent", "traceparent"),
    ] {
        if let Some(value) = event.metadata.get(key).and_then(Value::as_str) {
            headers.insert(header, value);
        }
    }
    headers
}

pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("expensewise")
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
    Ok(jetstream::new(client))
}

/// Creates the event stream when it does not exist (file storage, kept until removed),
/// allowing atomic batches (NATS 2.12 and later; older servers ignore it).
pub async fn ensure_stream(js: &jetstream::Context) -> anyhow::Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        allow_atomic_publish: true,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the JetStream stream {STREAM}: {e}"))
}

/// Whether the stream takes atomic batches. A stream made before they existed (or by an
/// operator) is asked to allow them; where the server or its owner says no, the relay
/// publishes one message at a time.
async fn allows_atomic_batches(js: &jetstream::Context, stream: &stream::Stream) -> bool {
    let config = &stream.cached_info().config;
    if config.allow_atomic_publish {
        return true;
    }
    let wanted = stream::Config {
        allow_atomic_publish: true,
        ..config.clone()
    };
    match js.update_stream(wanted).await {
        Ok(info) => info.config.allow_atomic_publish,
        Err(e) => {
            tracing::info!(error = %e, "relay: the stream does not take atomic batches; publishing one event at a time");
            false
        }
    }
}

/// An event as the relay sends it: its id, its headers, its body.
fn message(event: &RecordedEvent) -> anyhow::Result<(Uuid, HeaderMap, Vec<u8>)> {
    let id = event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    let body = serde_json::to_vec(&EventMessage::new(event))?;
    Ok((id, headers(event, id), body))
}

/// Where the stream must end for a message to be stored after it: its last sequence,
/// and — when that last message is one the relay sent and has not seen stored — that
/// message's subject. The sequence alone could be met by chance: were a read refused and
/// as many messages from elsewhere stored meanwhile, the next read would find the stream
/// at the sequence it expects. The subject's last sequence (an event of ours, at exactly
/// that place) cannot.
#[derive(Debug, Clone)]
struct Expected {
    last: u64,
    subject: Option<String>,
}

impl Expected {
    fn insert_into(&self, headers: &mut HeaderMap) {
        let last = self.last.to_string();
        headers.insert("Nats-Expected-Last-Sequence", last.as_str());
        if let Some(subject) = &self.subject {
            headers.insert("Nats-Expected-Last-Subject-Sequence", last.as_str());
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence-Subject",
                subject.as_str(),
            );
        }
    }

    /// What the message after `event` expects, `event` being stored after this.
    fn after(&self, event: &RecordedEvent) -> Self {
        Self {
            last: self.last + 1,
            subject: Some(subject(event)),
        }
    }
}

/// Sends `events` as one atomic batch (ADR-50): the server stores all of them or none,
/// with one write to disk where one per event would be made otherwise (with
/// `sync_interval: always`, an fsync each). Only the last message is answered: the
/// future of that answer is returned. With `expected`, the server refuses the batch
/// unless the stream ends so before it.
async fn send_batch(
    js: &jetstream::Context,
    events: &[RecordedEvent],
    expected: Option<&Expected>,
) -> anyhow::Result<Stored> {
    let client = js.client();
    let batch = Uuid::new_v4().simple().to_string();
    let Some((last, rest)) = events.split_last() else {
        return Ok(Box::pin(std::future::ready(Ok(()))));
    };
    let message = |event: &RecordedEvent, number: usize| -> anyhow::Result<_> {
        let (_, mut headers, body) = message(event)?;
        headers.insert("Nats-Batch-Id", batch.as_str());
        headers.insert("Nats-Batch-Sequence", number.to_string().as_str());
        if let (1, Some(expected)) = (number, expected) {
            expected.insert_into(&mut headers);
        }
        Ok((headers, body))
    };
    for (number, event) in rest.iter().enumerate() {
        let (headers, body) = message(event, number + 1)?;
        client
            .publish_with_headers(subject(event), headers, body.into())
            .await?;
    }
    let (mut headers, body) = message(last, events.len())?;
    headers.insert("Nats-Batch-Commit", "1");
    let ack = js
        .publish_with_headers(subject(last), headers, body.into())
        .await?;
    Ok(Box::pin(async move {
        ack.await
            .map(drop)
            .map_err(|e| anyhow::anyhow!("JetStream did not store batch {batch}: {e}"))
    }))
}

/// Sends `events` one message each. With `expected`, the first expects the stream to end
/// as it says and each next one right after the one before: a message refused makes the
/// server refuse every one sent after it, so nothing is stored out of order.
async fn send_each(
    js: &jetstream::Context,
    events: &[RecordedEvent],
    expected: Option<&Expected>,
) -> anyhow::Result<Vec<(Uuid, PublishAckFuture)>> {
    let mut acks = Vec::with_capacity(events.len());
    let mut expected = expected.cloned();
    for event in events {
        let (id, mut headers, body) = message(event)?;
        if let Some(expecting) = &expected {
            expecting.insert_into(&mut headers);
            expected = Some(expecting.after(event));
        }
        let ack = js
            .publish_with_headers(subject(event), headers, body.into())
            .await
            .map_err(|e| anyhow::anyhow!("publishing event {id}: {e}"))?;
        acks.push((id, ack));
    }
    Ok(acks)
}

/// Waits for the server to store every message sent; returns how many it had already
/// (duplicates).
async fn all_stored(acks: Vec<(Uuid, PublishAckFuture)>) -> anyhow::Result<usize> {
    let mut duplicates = 0;
    for (id, ack) in acks {
        let ack = ack
            .await
            .map_err(|e| anyhow::anyhow!("JetStream did not store event {id}: {e}"))?;
        duplicates += usize::from(ack.duplicate);
    }
    Ok(duplicates)
}

/// The fewest events the relay publishes as an atomic batch. Committing a batch costs the
/// server a few milliseconds of its own (measured with NATS 2.15: about 4 ms for one
/// message, 6 ms for twenty, 9 ms for a hundred, where one message alone takes 0.6 ms
/// with its fsync): a few events go sooner one by one.
const ATOMIC_FROM: usize = 16;

/// How the relay publishes a read of events and waits for it to be stored: as one atomic
/// batch while the stream takes them, and one message at a time otherwise. A batch is
/// refused whole when it holds an event the stream has (the relay publishes again what
/// it may have published before a crash); that batch goes one by one instead, and the
/// server drops what it has by id. When a refused batch held nothing the stream had,
/// batches are not what the stream takes: the relay stops trying them. Returns how many
/// events the stream had already.
async fn publish_read(
    js: &jetstream::Context,
    events: &[RecordedEvent],
    atomic: &mut bool,
) -> anyhow::Result<usize> {
    if *atomic && events.len() >= ATOMIC_FROM {
        match async { send_batch(js, events, None).await?.await }.await {
            Ok(()) => return Ok(0),
            Err(e) => {
                let duplicates = publish(js, events).await?;
                if duplicates == 0 {
                    tracing::info!(
                        error = format!("{e:#}"),
                        "relay: atomic batches refused; publishing one event at a time"
                    );
                    *atomic = false;
                }
                return Ok(duplicates);
            }
        }
    }
    publish(js, events).await
}

/// Publishes `events` and waits for the server to store every one. Returns how many the
/// server had already (duplicates).
pub async fn publish(js: &jetstream::Context, events: &[RecordedEvent]) -> anyhow::Result<usize> {
    all_stored(send_each(js, events, None).await?).await
}

/// Where the relay stands, under the checkpoint name `relay`.
pub const RELAY: &str = "relay";

const RELAY_BATCH: usize = 500;
const POLL: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest the relay goes without storing its checkpoint while it keeps publishing.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// Pause after a read of several events, so that busy periods make big batches.
const LINGER: Duration = Duration::from_millis(2);
/// How many reads the relay may have sent without knowing them stored. While the server
/// writes one to disk, the next is read and on its way; with this many waiting, the
/// relay waits too, and what is appended meanwhile makes one bigger read.
const IN_FLIGHT: usize = 4;
/// The advisory lock that makes one relay active among many (PostgreSQL).
const RELAY_LOCK: i64 = 0x0045_5752_454c_4159;

/// The answer that a read sent to the stream is stored.
type Stored = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// A read sent and not yet known stored: its last event, how many events, its answer.
struct InFlight {
    last: GlobalPosition,
    count: usize,
    stored: Stored,
}

/// The relay once it knows where the stream ends: it sends each read expecting the
/// stream to end as the reads before it leave it (see [`Expected`]), so it need not wait
/// for one read to be stored before sending the next. Should one be refused, or lost,
/// every read after it is refused too (their expectation no longer holds), and none is
/// stored out of order.
struct Pipeline {
    /// How the stream ends once everything sent is stored.
    expected: Expected,
    in_flight: VecDeque<InFlight>,
}

/// The active relay's state.
struct Relay {
    follow: Follow,
    js: jetstream::Context,
    stream_ready: bool,
    atomic: bool,
    /// Everything up to here is stored in the stream; `None`: not known, start from the
    /// stored checkpoint.
    acked: Option<GlobalPosition>,
    /// Everything up to here has been sent.
    sent: GlobalPosition,
    /// The checkpoint as stored, and when. It is written at most every CHECKPOINT_EVERY
    /// (and whenever the relay has caught up): after a crash the relay publishes again at
    /// most that much, which JetStream drops as duplicates by message id.
    stored: GlobalPosition,
    stored_at: tokio::time::Instant,
    /// `None` until a read has gone out with no duplicate in it (after a start, or after
    /// a refusal): until then each read is published and waited for.
    pipeline: Option<Pipeline>,
}

impl Relay {
    fn database(&self) -> &Database {
        self.follow.database()
    }

    /// Forgets what was in flight: the next step publishes again, and waits, from what is
    /// known stored (`acked`), or from the checkpoint when that is not known either.
    fn resynchronize(&mut self, acked: Option<GlobalPosition>) {
        self.pipeline = None;
        self.acked = acked;
        if let Some(acked) = acked {
            self.sent = acked;
        }
    }

    /// Publishes what is new, or waits for something to happen: new events, a read
    /// stored, `shutdown`.
    async fn step(
        &mut self,
        wake: &mut crate::wake::Wake,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        if !self.stream_ready {
            let stream = ensure_stream(&self.js).await?;
            self.atomic = allows_atomic_batches(&self.js, &stream).await;
            self.stream_ready = true;
        }
        if self.acked.is_none() {
            self.stored = crate::checkpoints::load(self.database(), RELAY).await?;
            self.resynchronize(Some(self.stored));
        }
        let Some(pipeline) = self.pipeline.as_mut() else {
            return self.publish_and_wait(wake, shutdown).await;
        };
        if pipeline.in_flight.len() < IN_FLIGHT {
            let events = self.follow.tail.read_after(self.sent, RELAY_BATCH).await?;
            metrics::gauge!("expensewise_relay_lag_seconds").set(lag_seconds(events.first()));
            if let Some(last) = events.last().map(|e| e.global) {
                let expected = &pipeline.expected;
                let stored = if self.atomic && events.len() >= ATOMIC_FROM {
                    send_batch(&self.js, &events, Some(expected)).await?
                } else {
                    let acks = send_each(&self.js, &events, Some(expected)).await?;
                    Box::pin(async move { all_stored(acks).await.map(drop) })
                };
                pipeline.expected = Expected {
                    last: expected.last + events.len() as u64,
                    subject: events.last().map(subject),
                };
                pipeline.in_flight.push_back(InFlight {
                    last,
                    count: events.len(),
                    stored,
                });
                self.sent = last;
                // As in the projectors: under a stream of commands, gather bigger reads.
                if events.len() > 1 {
                    tokio::select! {
                        _ = tokio::time::sleep(LINGER) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                return Ok(());
            }
        }
        let full = pipeline.in_flight.len() >= IN_FLIGHT;
        let Some(oldest) = pipeline.in_flight.front_mut() else {
            self.checkpoint(true).await?;
            tokio::select! {
                _ = wake.wait(POLL) => {}
                _ = shutdown.changed() => {}
            }
            return Ok(());
        };
        let outcome = if full {
            (&mut oldest.stored).await
        } else {
            tokio::select! {
                outcome = &mut oldest.stored => outcome,
                _ = wake.wait(POLL) => return Ok(()),
                _ = shutdown.changed() => return Ok(()),
            }
        };
        let Some(done) = pipeline.in_flight.pop_front() else {
            return Ok(());
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("expensewise_relay_published_total").increment(done.count as u64);
                self.acked = Some(done.last);
                let caught_up = pipeline.in_flight.is_empty();
                self.checkpoint(caught_up).await
            }
            // Refused (something else reached the stream, it was replaced, a read was
            // lost), or not answered: what followed is refused too, or may have been
            // stored. Publishing again from what is known stored settles both: the
            // server drops what it has by id.
            Err(e) => {
                tracing::info!(
                    error = format!("{e:#}"),
                    "relay: a read was not stored; publishing again from the last one stored"
                );
                let acked = self.acked;
                self.resynchronize(acked);
                Ok(())
            }
        }
    }

    /// One read published and waited for, as after a start: from here on, duplicates are
    /// possible (the relay published them before it stopped), which the server drops by
    /// id only when each is sent on its own. A read stored with none, or nothing left to
    /// read, means that the stream holds everything up to `acked` and nothing after: the
    /// relay starts sending without waiting from where the stream then ends.
    async fn publish_and_wait(
        &mut self,
        wake: &mut crate::wake::Wake,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let events = self.follow.tail.read_after(self.sent, RELAY_BATCH).await?;
        // How long the oldest unpublished event has waited: grows while NATS is down.
        metrics::gauge!("expensewise_relay_lag_seconds").set(lag_seconds(events.first()));
        let mut duplicates = 0;
        if let Some(last) = events.last().map(|e| e.global) {
            duplicates = publish_read(&self.js, &events, &mut self.atomic).await?;
            self.acked = Some(last);
            self.sent = last;
            metrics::counter!("expensewise_relay_published_total").increment(events.len() as u64);
        }
        if duplicates == 0 {
            let stream = self.js.get_stream(STREAM).await?;
            // Nothing of the relay's is in flight: where the stream ends now is all the
            // first read sent needs to expect.
            self.pipeline = Some(Pipeline {
                expected: Expected {
                    last: stream.cached_info().state.last_sequence,
                    subject: None,
                },
                in_flight: VecDeque::new(),
            });
        }
        self.checkpoint(events.is_empty()).await?;
        if events.is_empty() {
            tokio::select! {
                _ = wake.wait(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        Ok(())
    }

    /// Stores the checkpoint at what is known stored, when it moved and CHECKPOINT_EVERY
    /// has passed or the relay has `caught_up`.
    async fn checkpoint(&mut self, caught_up: bool) -> anyhow::Result<()> {
        let Some(position) = self.acked else {
            return Ok(());
        };
        if position != self.stored && (caught_up || self.stored_at.elapsed() >= CHECKPOINT_EVERY) {
            crate::checkpoints::store(self.database(), RELAY, self.stored, position).await?;
            self.stored = position;
            self.stored_at = tokio::time::Instant::now();
        }
        Ok(())
    }
}

/// Tails the event store and publishes every committed event, in order, forever (until
/// `shutdown`). While NATS is down it backs off and retries: the events wait in the
/// store. On PostgreSQL only the relay holding an advisory lock publishes; the others
/// wait to take over.
pub async fn run_relay(
    follow: Follow,
    js: jetstream::Context,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let db = follow.database().clone();
    let mut wake = crate::wake::Wake::new(&follow);
    let _leadership = loop {
        if let Some(lead) = db.try_lead(RELAY_LOCK).await? {
            tracing::info!("relay: active");
            break lead;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    };
    let mut relay = Relay {
        follow,
        js,
        stream_ready: false,
        atomic: false,
        acked: None,
        sent: GlobalPosition::default(),
        stored: GlobalPosition::default(),
        stored_at: tokio::time::Instant::now(),
        pipeline: None,
    };
    let mut backoff = Duration::from_millis(100);
    while !*shutdown.borrow() {
        match relay.step(&mut wake, &mut shutdown).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                relay.stream_ready = false;
                relay.resynchronize(None);
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "relay: publishing failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    Ok(())
}

/// Seconds since `oldest` was committed; 0 when there is nothing waiting.
pub fn lag_seconds(oldest: Option<&RecordedEvent>) -> f64 {
    oldest.map_or(0.0, |e| {
        (chrono::Utc::now() - e.recorded_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0
    })
}

/// For operators and tests: where the relay stands.
pub async fn relay_position(db: &Database) -> anyhow::Result<GlobalPosition> {
    Ok(crate::checkpoints::load(db, RELAY).await?)
}

/// After the database was restored to an earlier point: the stream still holds (and its
/// duplicate window remembers) events the restore took away, and the ids of events yet to
/// be written can repeat theirs. Deletes the stream with its consumers, and moves the
/// relay back to `from`, so that a relay started afterwards creates the stream anew and
/// publishes again everything after `from`.
///
/// Refuses while a relay holds the relay lock: it would publish into the old stream.
pub async fn reset_stream(
    db: &Database,
    js: &jetstream::Context,
    from: GlobalPosition,
) -> anyhow::Result<GlobalPosition> {
    let Some(_lock) = db.try_lead(RELAY_LOCK).await? else {
        anyhow::bail!("a relay is running: stop every relay first");
    };
    match js.delete_stream(STREAM).await {
        Ok(_) => {}
        Err(e) => match e.kind() {
            jetstream::context::DeleteStreamErrorKind::JetStream(error)
                if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND => {}
            _ => anyhow::bail!("cannot delete the JetStream stream {STREAM}: {e}"),
        },
    }
    let current = relay_position(db).await?;
    if from < current {
        crate::checkpoints::store(db, RELAY, current, from).await?;
    }
    Ok(current.min(from))
}
