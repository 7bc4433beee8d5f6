//! Workers: bounded redelivery, dead letters, and replicas sharing a JetStream consumer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use expensewise_infra::consumer::{self, Delivery, Feed, Handler};
use expensewise_infra::{nats, on_database, RecordedEvent};
use expensewise_tests::{register_directly, Backend, NatsServer, TestDatabase};
use futures::StreamExt;
use tokio::sync::watch;

/// Remembers which replica handled which organization; fails every attempt on the
/// poisoned one.
struct Recorder {
    replica: usize,
    poisoned: String,
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    handled: Vec<(usize, String)>,
    attempts: HashMap<String, u32>,
}

#[async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[("organization", "OrganizationRegistered")]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        {
            let mut log = self.log.lock().unwrap();
            *log.attempts.entry(event.aggregate_id.clone()).or_default() += 1;
        }
        // Long enough that one replica cannot take every message.
        tokio::time::sleep(Duration::from_millis(10)).await;
        if event.aggregate_id == self.poisoned {
            anyhow::bail!("cannot handle organization {}\nat all", self.poisoned);
        }
        self.log
            .lock()
            .unwrap()
            .handled
            .push((self.replica, event.aggregate_id.clone()));
        Ok(())
    }
}

const DELIVERY: Delivery = Delivery {
    max_deliver: 3,
    first_retry: Duration::from_millis(50),
    max_retry: Duration::from_millis(200),
    ack_wait: Duration::from_secs(30),
};

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_replicas(
    feed: &Feed,
    replicas: usize,
    poisoned: &str,
    log: &Arc<Mutex<Log>>,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..replicas)
        .map(|replica| {
            let handler = Arc::new(Recorder {
                replica,
                poisoned: poisoned.to_string(),
                log: log.clone(),
            });
            tokio::spawn(consumer::run(
                feed.clone(),
                handler,
                DELIVERY,
                stopped.clone(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn on_jetstream_replicas_share_the_work_and_a_failing_event_is_dead_lettered() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let js = nats::connect(&nats.url).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let relay = tokio::spawn(nats::run_relay(store.follow(), js.clone(), stopped.clone()));
    let mut organizations = Vec::new();
    for _ in 0..40 {
        organizations.push(register_directly(&store).await.to_string());
    }
    let poisoned = organizations[7].clone();
    let log = Arc::new(Mutex::new(Log::default()));
    let feed = Feed::JetStream(Box::new(js.clone()), store.vault().clone());
    let workers = spawn_replicas(&feed, 2, &poisoned, &log, &stopped);

    let dead_letters = consumer::ensure_dead_letter_stream(&js).await.unwrap();
    wait_for("39 events handled and one dead letter", || {
        log.lock().unwrap().handled.len() >= 39
    })
    .await;
    // Bounded, so that a dead letter that never comes fails the test instead of hanging it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let dead = loop {
        if let Ok(message) = dead_letters.get_raw_message(1).await {
            break message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter within 60 s; attempts so far: {:?}",
            log.lock().unwrap().attempts
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(true);
    for task in workers {
        task.await.unwrap();
    }
    relay.await.unwrap().unwrap();

    let log = std::mem::take(&mut *log.lock().unwrap());
    let handled: Vec<&String> = log.handled.iter().map(|(_, org)| org).collect();
    let distinct: HashSet<&String> = handled.iter().copied().collect();
    assert_eq!(handled.len(), 39, "each event handled once");
    assert_eq!(distinct.len(), 39);
    assert!(!distinct.contains(&poisoned));
    let by_replica: HashSet<usize> = log.handled.iter().map(|(r, _)| *r).collect();
    assert_eq!(by_replica.len(), 2, "both replicas took a share");
    assert_eq!(
        log.attempts[&poisoned], DELIVERY.max_deliver,
        "the failing event was tried exactly max_deliver times"
    );

    assert_eq!(dead.subject.as_str(), "expensewise.dead.recorder");
    let headers = dead.headers;
    let event_id = nats::event_id("organization", &poisoned, 1).to_string();
    assert_eq!(
        headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(event_id.as_str())
    );
    let error = headers
        .get(consumer::ERROR_HEADER)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(error.contains(&poisoned), "{error}");
    let body: serde_json::Value = serde_json::from_slice(&dead.payload).unwrap();
    assert_eq!(body["aggregate_id"], poisoned.as_str());
    assert_eq!(
        dead_letters.get_info().await.unwrap().state.messages,
        1,
        "one dead letter"
    );
    db.close().await;
    database.drop_database().await;
}

/// A message whose every delivery went to a worker that died holding it is given up by
/// JetStream itself: its advisory becomes the dead letter the worker would have written.
#[tokio::test]
async fn a_message_every_holder_died_with_is_dead_lettered_from_jetstreams_advisory() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let js = nats::connect(&nats.url).await.unwrap();
    let delivery = Delivery {
        max_deliver: 1,
        ack_wait: Duration::from_secs(1),
        ..DELIVERY
    };
    let log = Arc::new(Mutex::new(Log::default()));
    let handler = Arc::new(Recorder {
        replica: 0,
        poisoned: String::new(),
        log: log.clone(),
    });
    // The worker's own consumer: the test takes each delivery and drops it unanswered,
    // as workers killed while holding the message would.
    let held = consumer::durable(&js, handler.as_ref(), delivery)
        .await
        .unwrap();
    let dead_letters = consumer::ensure_dead_letter_stream(&js).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let relay = tokio::spawn(nats::run_relay(store.follow(), js.clone(), stopped.clone()));
    let organization = register_directly(&store).await.to_string();
    for expected in 1..=u64::from(delivery.max_deliver) + 1 {
        let message = loop {
            let mut batch = held
                .fetch()
                .max_messages(1)
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .unwrap();
            if let Some(message) = batch.next().await {
                break message.unwrap();
            }
        };
        assert_eq!(message.info().unwrap().delivered, expected as i64);
    }
    // A replica started now is given nothing more, but hears JetStream give up.
    let feed = Feed::JetStream(Box::new(js.clone()), store.vault().clone());
    let worker = tokio::spawn(consumer::run(feed, handler, delivery, stopped.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        if let Ok(message) = dead_letters.get_raw_message(1).await {
            break message;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(true);
    worker.await.unwrap();
    relay.await.unwrap().unwrap();

    assert_eq!(dead.subject.as_str(), "expensewise.dead.recorder");
    let event_id = nats::event_id("organization", &organization, 1).to_string();
    assert_eq!(
        dead.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some(event_id.as_str())
    );
    let error = dead
        .headers
        .get(consumer::ERROR_HEADER)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(error.contains("2 deliveries without an answer"), "{error}");
    assert!(log.lock().unwrap().attempts.is_empty(), "never handled");
    db.close().await;
    database.drop_database().await;
}

/// A new version of a worker handles event types its durable consumer, made by the old
/// version, does not deliver: starting, it brings the consumer up to date.
#[tokio::test]
async fn a_worker_updates_the_consumer_an_older_version_made() {
    let nats = NatsServer::start();
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let js = nats::connect(&nats.url).await.unwrap();
    let stream = nats::ensure_stream(&js).await.unwrap();
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("worker-recorder".into()),
            filter_subjects: vec![format!(
                "{}.organization.SomethingElse",
                nats::SUBJECT_PREFIX
            )],
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let relay = tokio::spawn(nats::run_relay(store.follow(), js.clone(), stopped.clone()));
    let log = Arc::new(Mutex::new(Log::default()));
    let feed = Feed::JetStream(Box::new(js.clone()), store.vault().clone());
    let workers = spawn_replicas(&feed, 1, "", &log, &stopped);
    for _ in 0..3 {
        register_directly(&store).await;
    }
    wait_for("the registrations handled", || {
        log.lock().unwrap().handled.len() >= 3
    })
    .await;
    let _ = stop.send(true);
    for task in workers {
        task.await.unwrap();
    }
    relay.await.unwrap().unwrap();
    db.close().await;
    database.drop_database().await;
}

#[tokio::test]
async fn reading_the_store_a_failing_event_is_retried_then_recorded_as_dead() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let mut organizations = Vec::new();
    for _ in 0..6 {
        organizations.push(register_directly(&store).await.to_string());
    }
    let poisoned = organizations[2].clone();
    let log = Arc::new(Mutex::new(Log::default()));
    let (stop, stopped) = watch::channel(false);
    let feed = Feed::Store(store.follow());
    let workers = spawn_replicas(&feed, 1, &poisoned, &log, &stopped);
    // Events written while the worker runs reach it too.
    organizations.push(register_directly(&store).await.to_string());
    wait_for("6 events handled", || {
        log.lock().unwrap().handled.len() >= 6
    })
    .await;
    let _ = stop.send(true);
    for task in workers {
        task.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let handled: Vec<&String> = log.handled.iter().map(|(_, org)| org).collect();
    let expected: Vec<&String> = organizations.iter().filter(|o| **o != poisoned).collect();
    assert_eq!(
        handled, expected,
        "in order, each once, the failing one skipped"
    );
    assert_eq!(log.attempts[&poisoned], DELIVERY.max_deliver);
    let dead: Vec<(String, String, String)> = on_database!(&db, |pool| {
        sqlx::query_as("SELECT worker, aggregate_id, error FROM dead_letters")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "recorder");
    assert_eq!(dead[0].1, poisoned);
    assert!(dead[0].2.contains("cannot handle"), "{}", dead[0].2);
    db.close().await;
    database.drop_database().await;
}
