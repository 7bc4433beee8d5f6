//! The webhook sender (docs/webhooks.md). Two loops:
//!
//! - **dispatch** follows the store's global order from its own checkpoint (one active
//!   instance per database), waits until the read models have passed each batch — a
//!   receiver that GETs what a hook announces finds it — and queues one delivery per
//!   interested endpoint and event, in the transaction that moves its checkpoint;
//! - **send** (every instance) takes due deliveries under a lease, signs each per
//!   Standard Webhooks, posts it, and records the attempt: delivered on 2xx, else tried
//!   again on the retry schedule; a delivery that runs out of retries turns its endpoint
//!   off and tells the organization's admins by mail.
//!
//! Delivery is at least once: a sender killed after the receiver answered but before the
//! attempt was recorded sends again when its lease runs out, with the same
//! `webhook-id` (the event's id), by which receivers recognise a message seen before.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use expensewise_application::webhooks as use_cases;
use expensewise_domain::expense::EXPENSE_APPROVED;
use expensewise_domain::metadata;
use expensewise_domain::webhook::address;
use expensewise_domain::webhook::signing::{self, Secret};
use expensewise_domain::webhook::{Endpoint, Webhooks, PING, READY_TO_SYNC};
use expensewise_domain::Role;
use expensewise_infra::config::WebhookConfig;
use expensewise_infra::event_store::{event_at, Follow};
use expensewise_infra::mail::Mailer;
use expensewise_infra::wake::Wake;
use expensewise_infra::webhooks::{self as stored, Attempt, Delivery, NewDelivery, Outcome};
use expensewise_infra::{checkpoints, nats, Database, EventStore, GlobalPosition, RecordedEvent};
use expensewise_projections::checkpoint::{Checkpoints, ConsistencyError};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// The dispatcher's place in the global order.
pub const CHECKPOINT: &str = "webhooks";
/// The advisory lock of the active dispatcher (PostgreSQL).
const DISPATCH_LOCK: i64 = 0x0045_5752_5745_4248;
/// Events read per dispatch transaction.
const BATCH: usize = 500;
/// Deliveries one sender takes at a time, and sends side by side.
const CLAIM: i64 = 16;
/// How often to look for work when nothing woke the loops.
const POLL: Duration = Duration::from_millis(500);
/// Redirects followed per message, each checked like the first address.
const MAX_REDIRECTS: usize = 5;
/// What is read of a receiver's answer; the rest is not waited for.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The read models a receiver may query on receipt of a hook.
const READ_MODELS: [&str; 3] = [
    expensewise_projections::expenses::NAME,
    expensewise_projections::receipts::NAME,
    expensewise_projections::users::NAME,
];

#[derive(Clone)]
pub struct WebhookSender {
    pub store: Arc<EventStore>,
    pub mailer: Mailer,
    pub settings: WebhookConfig,
    pub checkpoints: Arc<Checkpoints>,
    /// Wakes the send loop when the dispatcher queued something.
    pub queued: Arc<Notify>,
}

impl WebhookSender {
    fn db(&self) -> &Database {
        self.store.database()
    }

    /// Runs both loops until `shutdown`; each starts again from what is stored after a
    /// failure (the database away, another dispatcher first).
    pub async fn run(self, follow: Follow, shutdown: watch::Receiver<bool>) {
        let dispatcher = self.clone();
        let mut dispatch_stop = shutdown.clone();
        let dispatch = tokio::spawn(async move {
            while !*dispatch_stop.borrow() {
                if let Err(e) = dispatcher.dispatch(&follow, &mut dispatch_stop).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "webhook dispatch interrupted; resuming"
                    );
                    pause(&mut dispatch_stop, Duration::from_secs(1)).await;
                }
            }
        });
        let mut send_stop = shutdown;
        while !*send_stop.borrow() {
            if let Err(e) = self.send_due(&mut send_stop).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "webhook sending interrupted; resuming"
                );
                pause(&mut send_stop, Duration::from_secs(1)).await;
            }
        }
        if let Err(e) = dispatch.await {
            tracing::error!(error = %e, "the webhook dispatcher failed");
        }
    }

    async fn dispatch(
        &self,
        follow: &Follow,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let db = self.db().clone();
        let _leadership = loop {
            if let Some(lead) = db.try_lead(DISPATCH_LOCK).await? {
                break lead;
            }
            if pause(shutdown, Duration::from_secs(1)).await {
                return Ok(());
            }
        };
        // Batches that queue nothing (most, for most organizations) move the checkpoint
        // in memory only; it is stored with the next batch that queues something, or when
        // the dispatcher is idle (see `checkpoints::Stored`).
        let mut stored = checkpoints::Stored::load(&db, CHECKPOINT.to_string()).await?;
        let mut position = stored.at();
        let mut wake = Wake::new(follow);
        // The leader also keeps the delivery log to its retention, every half of it (at
        // most hourly).
        let retention = self.settings.log_retention;
        let purge_every = (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut purged_at: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            if purged_at.is_none_or(|at| at.elapsed() >= purge_every) {
                let before = chrono::Duration::from_std(retention)
                    .ok()
                    .and_then(|r| Utc::now().checked_sub_signed(r))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                let purged = stored::purge_finished(&db, before).await?;
                if purged > 0 {
                    tracing::info!(purged, "webhook deliveries past their retention forgotten");
                }
                purged_at = Some(std::time::Instant::now());
            }
            let events = follow.tail.read_after(position, BATCH).await?;
            let Some(last) = events.last().map(|e| e.global) else {
                stored.idle(&db, position).await?;
                tokio::select! {
                    _ = wake.wait(POLL.min(checkpoints::Stored::IDLE)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            if !self.wait_for_read_models(last, shutdown).await? {
                return Ok(());
            }
            let deliveries = self.deliveries_of(&events).await?;
            position = last;
            if deliveries.is_empty() {
                stored.busy(&db, position).await?;
                continue;
            }
            let now = Utc::now();
            let mut tx = db.begin_derived().await?;
            for delivery in &deliveries {
                stored::enqueue(&mut tx, delivery, now).await?;
            }
            let moved = checkpoints::advance(&mut tx, CHECKPOINT, stored.at(), last).await?;
            anyhow::ensure!(moved, "another webhook dispatcher moved first");
            tx.commit().await.context("committing queued webhooks")?;
            stored.moved(last);
            self.queued.notify_one();
        }
        stored.advance(&db, position).await
    }

    /// Waits until every read model has passed `write`; false if shut down meanwhile.
    async fn wait_for_read_models(
        &self,
        write: GlobalPosition,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<bool> {
        for model in READ_MODELS {
            loop {
                if *shutdown.borrow() {
                    return Ok(false);
                }
                match self
                    .checkpoints
                    .wait_until(self.db(), model, write, Duration::from_secs(5))
                    .await
                {
                    Ok(()) => break,
                    Err(ConsistencyError::NotYet) => tracing::warn!(
                        read_model = model,
                        "webhooks wait for a read model that has not caught up (is a projector running?)"
                    ),
                    Err(ConsistencyError::Database(e)) => return Err(e.into()),
                }
            }
        }
        Ok(true)
    }

    /// One delivery for each endpoint of the event's organization that wants it.
    async fn deliveries_of(&self, events: &[RecordedEvent]) -> anyhow::Result<Vec<NewDelivery>> {
        let mut organizations: HashMap<Uuid, Webhooks> = HashMap::new();
        let mut deliveries = Vec::new();
        for event in events {
            let Some(organization_id) = event
                .metadata
                .get(metadata::ORGANIZATION_ID)
                .and_then(Value::as_str)
                .and_then(|o| Uuid::parse_str(o).ok())
            else {
                continue;
            };
            let webhooks = match organizations.entry(organization_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => {
                    new.insert(use_cases::endpoints(&self.store, organization_id).await?)
                }
            };
            let ready = event.event_type == EXPENSE_APPROVED;
            for (endpoint_id, endpoint) in &webhooks.endpoints {
                if ready && endpoint.wants(READY_TO_SYNC, event.recorded_at) {
                    let approval =
                        nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
                    deliveries.push(NewDelivery {
                        organization_id,
                        endpoint_id: *endpoint_id,
                        event_id: Uuid::new_v5(&approval, READY_TO_SYNC.as_bytes()),
                        event_type: READY_TO_SYNC.to_string(),
                        aggregate_type: event.aggregate_type.clone(),
                        aggregate_id: event.aggregate_id.clone(),
                        sequence: event.sequence,
                        global: event.global,
                    });
                }
                if endpoint.wants(&event.event_type, event.recorded_at) {
                    deliveries.push(NewDelivery {
                        organization_id,
                        endpoint_id: *endpoint_id,
                        event_id: nats::event_id(
                            &event.aggregate_type,
                            &event.aggregate_id,
                            event.sequence,
                        ),
                        event_type: event.event_type.clone(),
                        aggregate_type: event.aggregate_type.clone(),
                        aggregate_id: event.aggregate_id.clone(),
                        sequence: event.sequence,
                        global: event.global,
                    });
                }
            }
        }
        Ok(deliveries)
    }

    async fn send_due(&self, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let lease = self.settings.timeout + Duration::from_secs(30);
        while !*shutdown.borrow() {
            let due =
                stored::claim_due(self.db(), Utc::now(), lease.as_millis() as i64, CLAIM).await?;
            if due.is_empty() {
                tokio::select! {
                    _ = self.queued.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let sent = futures::future::join_all(due.iter().map(|d| self.deliver(d))).await;
            for (delivery, result) in due.iter().zip(sent) {
                if let Err(e) = result {
                    // Its lease runs out and it is tried again.
                    tracing::warn!(delivery = %delivery.id, error = format!("{e:#}"), "a webhook delivery could not be made");
                }
            }
        }
        Ok(())
    }

    async fn deliver(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let webhooks = use_cases::endpoints(&self.store, delivery.organization_id).await?;
        let Some(endpoint) = webhooks
            .endpoints
            .get(&delivery.endpoint_id)
            .filter(|e| e.enabled)
        else {
            return stored::abandon(
                self.db(),
                delivery.id,
                "the endpoint was turned off or removed",
            )
            .await;
        };
        let event = event_at(
            self.db(),
            &delivery.aggregate_type,
            &delivery.aggregate_id,
            delivery.sequence,
        )
        .await?
        .with_context(|| format!("event {} is not in the store", delivery.event_id))?;
        let event = self.store.vault().reveal(event).await?;
        let mut message = body(&event);
        // A `ready_to_sync` message carries the approval it follows.
        message["type"] = Value::from(delivery.event_type.clone());
        let body = message.to_string();
        let sent_at = Utc::now();
        let attempt = post(
            self.db(),
            &self.settings,
            endpoint,
            &delivery.event_id.to_string(),
            &body,
            sent_at,
        )
        .await?;
        let outcome = match attempt.status {
            Some(200..=299) => Outcome::Delivered,
            _ => match self.settings.schedule.next(
                (delivery.attempts + 1) as u32,
                delivery.first_attempt_at.unwrap_or(sent_at),
                sent_at,
            ) {
                Some(at) => Outcome::RetryAt(at),
                None => Outcome::GaveUp,
            },
        };
        stored::record_attempt(self.db(), delivery, &attempt, outcome).await?;
        metrics::counter!("expensewise_webhook_attempts_total", "outcome" => match outcome {
            Outcome::Delivered => "delivered",
            Outcome::RetryAt(_) => "retry",
            Outcome::GaveUp => "gave_up",
        })
        .increment(1);
        if let Outcome::GaveUp = outcome {
            self.turn_off(delivery, endpoint, &attempt).await?;
        }
        Ok(())
    }

    /// Turns off an endpoint whose delivery ran out of retries, and tells the admins.
    async fn turn_off(
        &self,
        delivery: &Delivery,
        endpoint: &Endpoint,
        attempt: &Attempt,
    ) -> anyhow::Result<()> {
        let last = match (&attempt.error, attempt.status) {
            (Some(error), _) => error.clone(),
            (None, Some(status)) => format!("HTTP {status}"),
            (None, None) => "no answer".to_string(),
        };
        let reason = format!(
            "deliveries failed for {} hours ({} attempts of event {}); the last: {last}",
            self.settings.schedule.give_up_after.num_hours(),
            delivery.attempts + 1,
            delivery.event_id
        );
        use_cases::disable_endpoint(
            &self.store,
            delivery.organization_id,
            delivery.endpoint_id,
            reason.clone(),
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!("turning off webhook endpoint {}: {e}", delivery.endpoint_id)
        })?;
        let organization = self
            .store
            .load_organization(&delivery.organization_id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (user_id, member) in organization
            .members()
            .filter(|(_, m)| m.active && m.role == Role::Admin)
        {
            let text = format!(
                "The webhook endpoint {} ({}) was turned off: {reason}.\n\n\
                 Messages for it are no longer sent. Once the receiver works again, turn it \
                 on (PATCH /v1/webhooks/{} with {{\"enabled\": true}}) and send again what it \
                 missed from its delivery log (GET /v1/webhooks/{}/deliveries).",
                endpoint.url, delivery.endpoint_id, delivery.endpoint_id, delivery.endpoint_id
            );
            let mail = crate::email::mail(
                member,
                "A webhook endpoint was turned off".to_string(),
                text,
                delivery.id,
                *user_id,
            )?;
            if let Err(e) = self.mailer.send(&mail).await {
                tracing::warn!(error = %e, user = %user_id, "could not tell an admin that a webhook endpoint was turned off");
            }
        }
        Ok(())
    }
}

/// Waits `wait` or until shutdown; true if shut down.
async fn pause(shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.changed() => {}
    }
    *shutdown.borrow()
}

/// The message of an event: Standard Webhooks' `type`, `timestamp` and `data`, the data
/// being the event as the history shows it, in its current version.
pub fn body(event: &RecordedEvent) -> Value {
    let meta = |key: &str| event.metadata.get(key).cloned().unwrap_or(Value::Null);
    // cqrs-es stores `{"EventType": {fields}}`; receivers want the fields.
    let payload = match &*event.payload {
        Value::Object(map) if map.len() == 1 => map
            .get(&event.event_type)
            .cloned()
            .unwrap_or_else(|| Value::clone(&event.payload)),
        other => other.clone(),
    };
    json!({
        "type": event.event_type,
        "timestamp": event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "event_id": nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence),
            "event_type": event.event_type,
            "event_version": event.event_version,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "sequence": event.sequence,
            "global_position": event.global.to_string(),
            "organization_id": meta(metadata::ORGANIZATION_ID),
            "actor_id": meta(metadata::ACTOR_ID),
            "occurred_at": meta(metadata::OCCURRED_AT),
            "recorded_at": event.recorded_at,
            "payload": payload,
        }
    })
}

/// What a test ping came to.
#[derive(Debug, Clone)]
pub struct PingResult {
    pub message_id: String,
    pub attempt: Attempt,
}

/// Sends a `ping` message to `endpoint` at once, whether it is on or off: how an admin
/// checks a receiver before relying on it.
pub async fn ping(
    db: &Database,
    settings: &WebhookConfig,
    endpoint_id: Uuid,
    endpoint: &Endpoint,
) -> anyhow::Result<PingResult> {
    let message_id = format!("ping_{}", Uuid::new_v4());
    let now = Utc::now();
    let body = json!({
        "type": PING,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {"endpoint_id": endpoint_id},
    })
    .to_string();
    let attempt = post(db, settings, endpoint, &message_id, &body, now).await?;
    Ok(PingResult {
        message_id,
        attempt,
    })
}

/// Signs and posts one message to `endpoint`: what the receiver answered, or why it
/// could not be asked. Only a failure to read the endpoint's secrets is an error.
async fn post(
    db: &Database,
    settings: &WebhookConfig,
    endpoint: &Endpoint,
    id: &str,
    body: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Attempt> {
    let secrets: Vec<Secret> = stored::secrets(db, &endpoint.signing_secrets(at)).await?;
    anyhow::ensure!(
        !secrets.is_empty(),
        "the endpoint has no secret to sign with"
    );
    let timestamp = at.timestamp();
    let signature = signing::signature(&secrets, id, timestamp, body);
    let started = Instant::now();
    let answer = tokio::time::timeout(
        settings.timeout,
        follow_redirects(settings, &endpoint.url, id, timestamp, &signature, body),
    )
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} s", settings.timeout.as_secs())));
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    Ok(match answer {
        Ok(status) => Attempt {
            sent_at: at,
            status: Some(i32::from(status)),
            latency_ms,
            error: None,
        },
        Err(error) => Attempt {
            sent_at: at,
            status: None,
            latency_ms,
            error: Some(error),
        },
    })
}

/// Posts the message, following redirects; every address of every hop is checked
/// against the allowance before anything is sent there, and the connection goes only to
/// the addresses checked (a name that resolves differently a moment later is not asked
/// again).
async fn follow_redirects(
    settings: &WebhookConfig,
    url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> Result<u16, String> {
    let mut url = address::parse_url(url)?;
    for _ in 0..=MAX_REDIRECTS {
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let (name, addresses) = match url.host() {
            Some(url::Host::Domain(name)) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| format!("{name} does not resolve: {e}"))?
                    .collect();
                (Some(name.to_string()), found)
            }
            Some(url::Host::Ipv4(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
            None => return Err("the URL has no host".into()),
        };
        if let Some(refused) = addresses.iter().find(|a| !settings.allowance.permits(**a)) {
            return Err(format!(
                "{} is an internal address ({}); webhooks are not sent there unless \
                 WEBHOOK_ALLOW_PRIVATE allows it",
                refused,
                url.host_str().unwrap_or_default()
            ));
        }
        if addresses.is_empty() {
            return Err(format!(
                "{} has no address",
                url.host_str().unwrap_or_default()
            ));
        }
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Expense-Wise-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(name) = &name {
            client = client.resolve_to_addrs(name, &addresses);
        }
        let client = client
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let mut response = client
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{e:#}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("HTTP {} without a Location", status.as_u16()))?;
            url = url
                .join(location)
                .map_err(|e| format!("the redirect to {location:?} is not a URL: {e}"))
                .and_then(|next| {
                    address::parse_url(next.as_str())
                        .map_err(|e| format!("the redirect to {next} {e}"))
                })?;
            continue;
        }
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read >= MAX_RESPONSE_BYTES {
                break;
            }
        }
        return Ok(status.as_u16());
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}
