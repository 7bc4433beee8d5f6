//! Load generator for the benchmarks in docs/benchmarks.md. It talks to a running
//! server over HTTP on 127.0.0.1 (or seeds a database directly), runs for a bounded
//! time, and prints what it measured.
//!
//! ```text
//! loadgen create     --base http://127.0.0.1:4000 --connections 16 --seconds 20 \
//!                    [--nats-url nats://… ] [--database-url postgres://… | sqlite://…]
//! loadgen long-lived --base http://127.0.0.1:4000 --connections 16 --seconds 20 --events 1000
//! loadgen visibility --base http://127.0.0.1:4000 --samples 500
//! loadgen reads      --base http://127.0.0.1:4000 --connections 16 --seconds 20
//! loadgen seed       --database-url postgres://… --events 1000000
//! loadgen proofs     --database-url postgres://… --samples 1000
//! loadgen provable   --database-url postgres://… [--after-seconds-ago 60]
//! loadgen console    --base http://127.0.0.1:4000 --events 10000 --samples 50
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::consumer::{push, DeliverPolicy};
use chrono::Utc;
use expensewise_infra::nats::{STREAM, SUBJECT_PREFIX};
use expensewise_infra::{on_database, on_writer, Database, GlobalPosition};
use futures::StreamExt as _;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

struct Args {
    mode: String,
    base: String,
    connections: usize,
    seconds: u64,
    events: usize,
    samples: usize,
    database_url: String,
    nats_url: String,
    /// `provable`: only events recorded at or after this time (RFC 3339).
    since: Option<chrono::DateTime<Utc>>,
    /// `limits`: the organization gets a spend policy whose rules read the read models
    /// (a daily limit and duplicate detection) before the load.
    policy: String,
    /// `create`: 0, the admin makes every expense; N, N employees make them in turn —
    /// each seldom, as an organization's many people do.
    people: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut raw = std::env::args().skip(1);
    let mode = raw.next().context(
        "usage: loadgen <create|long-lived|visibility|reads|seed|proofs|provable|console> [options]",
    )?;
    let mut args = Args {
        mode,
        base: "http://127.0.0.1:4000".into(),
        connections: 16,
        seconds: 20,
        events: 1000,
        samples: 500,
        database_url: String::new(),
        nats_url: String::new(),
        since: None,
        policy: String::new(),
        people: 0,
    };
    while let Some(flag) = raw.next() {
        let value = raw
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base" => args.base = value,
            "--connections" => args.connections = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--events" => args.events = value.parse()?,
            "--samples" => args.samples = value.parse()?,
            "--database-url" => args.database_url = value,
            "--nats-url" => args.nats_url = value,
            "--since" => args.since = Some(value.parse()?),
            "--policy" => args.policy = value,
            "--people" => args.people = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

fn report(label: &str, latencies: Vec<Duration>, elapsed: Duration, errors: usize) {
    let count = latencies.len();
    println!(
        "{label}: {count} ok, {errors} failed in {:.1} s = {:.0}/s; {}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentiles(latencies),
    );
}

fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    format!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    )
}

async fn register(client: &Client, base: &str) -> anyhow::Result<String> {
    let email = format!("bench-{}@example.test", Uuid::new_v4());
    let body: Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"organization": "Bench", "name": "Bench", "email": email, "password": "benchmark password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["token"].as_str().context("a token")?.to_string())
}

/// `count` signed-in employees of the admin's organization.
async fn employees(
    client: &Client,
    base: &str,
    admin: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        tokens.push(member(client, base, admin, "employee").await?.1);
    }
    Ok(tokens)
}

/// A policy whose rules make every create read the read models: the person's day (a
/// daily limit), and duplicates (same receipt, same merchant, amount and day) — each
/// created expense here is a duplicate of the others, the costliest case.
async fn set_policy(client: &Client, base: &str, token: &str) -> anyhow::Result<()> {
    let rules = json!({"rules": [
        {"id": "receipts", "kind": "receipt_required", "level": "warn", "amount": "75"},
        {"id": "daily", "kind": "max_per_day", "level": "warn", "amount": "1000"},
        {"id": "duplicates", "kind": "duplicate", "level": "warn"},
    ]});
    client
        .put(format!("{base}/v1/policy"))
        .bearer_auth(token)
        .json(&rules)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

fn expense() -> Value {
    json!({"amount": "12.34", "currency": "EUR", "merchant": "Bench Café", "category": "meals",
           "spent_on": Utc::now().date_naive().to_string(), "description": "load"})
}

/// Creates an expense; its events carry `correlation` (as any client may ask), which is
/// how its arrival on JetStream is recognised.
async fn create(
    client: &Client,
    base: &str,
    token: &str,
    correlation: Uuid,
) -> anyhow::Result<String> {
    let body: Value = client
        .post(format!("{base}/v1/expenses"))
        .bearer_auth(token)
        .header("x-correlation-id", correlation.to_string())
        .json(&expense())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["id"].as_str().context("an id")?.to_string())
}

/// Runs `connections` workers for `seconds`, each repeating `work`; returns latencies.
async fn run_workers<F, Fut>(args: &Args, label: &str, work: F)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..args.connections {
        let work = work.clone();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                match work(worker).await {
                    Ok(()) => ok.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (ok, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for h in handles {
        if let Ok((ok, e)) = h.await {
            all.extend(ok);
            errors += e;
        }
    }
    report(label, all, started.elapsed(), errors);
}

/// Each command sent: when it was sent and when its answer came, by correlation id.
type Commands = Arc<Mutex<HashMap<String, (Instant, Instant)>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Expenses created as they arrive through JetStream: a consumer of the product's stream
/// of its own (ordered, from now on), as any subscriber downstream would have.
struct Deliveries {
    /// By correlation id: when the event arrived, and how long before that the stream
    /// had stored it (the server's time of storing, against this machine's clock).
    arrivals: Arc<Mutex<HashMap<String, (Instant, Duration)>>>,
}

impl Deliveries {
    /// Subscribes on a thread and runtime of its own, as a subscriber in another process
    /// would be: sharing this program's runtime with the load's workers, its wake-ups
    /// waited behind theirs and counted that wait as the product's.
    async fn watch(url: &str) -> anyhow::Result<Self> {
        let arrivals: Arc<Mutex<HashMap<String, (Instant, Duration)>>> = Arc::default();
        let seen = arrivals.clone();
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let url = url.to_string();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let mut messages = match Self::subscribe(&url).await {
                    Ok(messages) => {
                        let _ = ready.send(Ok(()));
                        messages
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                while let Some(Ok(message)) = messages.next().await {
                    let at = Instant::now();
                    let in_stream = message
                        .info()
                        .ok()
                        .and_then(|info| {
                            let stored = info.published.unix_timestamp_nanos();
                            let now = Utc::now().timestamp_nanos_opt()? as i128;
                            u64::try_from(now - stored).ok()
                        })
                        .map(Duration::from_nanos)
                        .unwrap_or_default();
                    if let Some(id) = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Ew-Correlation-Id"))
                    {
                        lock(&seen).insert(id.to_string(), (at, in_stream));
                    }
                }
            });
        });
        subscribed
            .await
            .context("the subscriber's thread ended")??;
        Ok(Self { arrivals })
    }

    async fn subscribe(url: &str) -> anyhow::Result<push::Ordered> {
        let client = async_nats::connect(url).await?;
        let stream = async_nats::jetstream::new(client.clone())
            .get_stream(STREAM)
            .await
            .context("the product's stream (is `serve` running with NATS_URL?)")?;
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                filter_subject: format!("{SUBJECT_PREFIX}.expense.ExpenseCreated"),
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        Ok(consumer.messages().await?)
    }

    /// Waits (up to 10 s) for every command's event, then prints how long each took from
    /// its request, and from its answer, to a JetStream subscriber.
    async fn report(self, commands: &Commands) {
        let wanted = lock(commands).len();
        let waited = Instant::now();
        while lock(&self.arrivals).len() < wanted && waited.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let arrivals = lock(&self.arrivals);
        let commands = lock(commands);
        let (mut from_request, mut from_answer) = (Vec::new(), Vec::new());
        let (mut to_stream, mut from_stream) = (Vec::new(), Vec::new());
        for (correlation, (sent, answered)) in commands.iter() {
            if let Some((arrived, in_stream)) = arrivals.get(correlation) {
                from_request.push(arrived.saturating_duration_since(*sent));
                // The relay may publish before the answer reaches the client: zero.
                let after_answer = arrived.saturating_duration_since(*answered);
                from_answer.push(after_answer);
                to_stream.push(after_answer.saturating_sub(*in_stream));
                from_stream.push(*in_stream);
            }
        }
        let missing = commands.len() - from_request.len();
        for (label, latencies) in [("sent", from_request), ("answered", from_answer)] {
            println!(
                "command {label} → delivered through JetStream, under that load: {} seen, {missing} never; {}",
                latencies.len(),
                percentiles(latencies)
            );
        }
        // Where that time went: the relay's part (until the stream stored the event, by
        // the server's clock, which is this machine's) and the stream's (to this
        // subscriber).
        println!(
            "  of which: answered → stored in the stream, {}; stored → delivered, {}",
            percentiles(to_stream),
            percentiles(from_stream)
        );
    }
}

/// When every reader of the events has reached the newest one: the projections and the
/// relay (their checkpoints in the database), and every consumer of the JetStream stream
/// (nothing pending, nothing unacknowledged) when `nats_url` is given: returns when, and
/// which readers were the last behind. Gives up after 30 s.
async fn every_consumer_caught_up(
    db: &Database,
    nats_url: &str,
) -> anyhow::Result<(Instant, String)> {
    let stream = match nats_url {
        "" => None,
        url => Some(
            async_nats::jetstream::new(async_nats::connect(url).await?)
                .get_stream(STREAM)
                .await?,
        ),
    };
    let gave_up = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("none was behind");
    loop {
        let head = expensewise_projections::status::head(db).await?;
        let checkpoints: Vec<(String, i64, i64)> = on_database!(db, |pool| {
            sqlx::query_as("SELECT name, txid, position FROM projection_checkpoints")
                .fetch_all(pool)
                .await?
        });
        let mut behind: Vec<String> = checkpoints
            .into_iter()
            .filter(|(_, txid, position)| {
                GlobalPosition {
                    txid: *txid,
                    position: *position,
                } < head
            })
            .map(|(name, _, _)| name)
            .collect();
        if let Some(stream) = &stream {
            let mut names = stream.consumer_names();
            while let Some(name) = names.next().await {
                let name = name?;
                // Ephemeral consumers are subscribers such as this program's own, left
                // from an earlier run until the server removes them: not readers of the
                // product, and possibly gone by the time they are asked about.
                let Ok(info) = stream.consumer_info(&name).await else {
                    continue;
                };
                if info.config.durable_name.is_none() {
                    continue;
                }
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    behind.push(format!("JetStream consumer {name}"));
                }
            }
        }
        if behind.is_empty() {
            return Ok((Instant::now(), last));
        }
        last = behind.join(", ");
        anyhow::ensure!(
            Instant::now() < gave_up,
            "still behind 30 s after the load: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let client = Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    match args.mode.as_str() {
        "create" => {
            let token = register(&client, &args.base).await?;
            if args.policy == "limits" {
                set_policy(&client, &args.base, &token).await?;
            }
            let tokens: Arc<Vec<String>> = Arc::new(match args.people {
                0 => vec![token],
                n => employees(&client, &args.base, &token, n).await?,
            });
            let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let deliveries = match args.nats_url.as_str() {
                "" => None,
                url => Some(Deliveries::watch(url).await?),
            };
            let commands: Commands = Arc::default();
            let (client, base, sent) = (client.clone(), args.base.clone(), commands.clone());
            run_workers(
                &args,
                &format!(
                    "create-expense{}, {} connections, {}",
                    if args.policy.is_empty() {
                        ""
                    } else {
                        " with a policy"
                    },
                    args.connections,
                    match args.people {
                        0 => "one person".to_string(),
                        n => format!("{n} people in turn"),
                    }
                ),
                move |_| {
                    let (client, base) = (client.clone(), base.clone());
                    let next = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let token = tokens[next % tokens.len()].clone();
                    let sent = sent.clone();
                    async move {
                        let correlation = Uuid::new_v4();
                        let at = Instant::now();
                        create(&client, &base, &token, correlation).await?;
                        lock(&sent).insert(correlation.to_string(), (at, Instant::now()));
                        Ok(())
                    }
                },
            )
            .await;
            let stopped = Instant::now();
            if !args.database_url.is_empty() {
                let db = Database::connect(&args.database_url, 2).await?;
                let (caught_up, last) = every_consumer_caught_up(&db, &args.nats_url).await?;
                println!(
                    "after the load stopped, every consumer had caught up in {:.0} ms (the last: {last})",
                    caught_up.duration_since(stopped).as_secs_f64() * 1000.0
                );
            }
            if let Some(deliveries) = deliveries {
                deliveries.report(&commands).await;
            }
        }
        "long-lived" => {
            let token = register(&client, &args.base).await?;
            // Grow one expense per connection to `events` events, all at once.
            let mut growing = Vec::new();
            for _ in 0..args.connections {
                let (client, base, token, events) = (
                    client.clone(),
                    args.base.clone(),
                    token.clone(),
                    args.events,
                );
                growing.push(tokio::spawn(async move {
                    let id = create(&client, &base, &token, Uuid::new_v4()).await?;
                    for n in 1..events {
                        client
                            .patch(format!("{base}/v1/expenses/{id}"))
                            .bearer_auth(&token)
                            .json(&json!({"description": format!("edit {n}")}))
                            .send()
                            .await?
                            .error_for_status()?;
                    }
                    anyhow::Ok(id)
                }));
            }
            let mut ids = Vec::new();
            for task in growing {
                ids.push(task.await??);
            }
            let (client, base) = (client.clone(), args.base.clone());
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            run_workers(
                &args,
                &format!(
                    "edit an expense of {} events, {} connections",
                    args.events, args.connections
                ),
                move |worker| {
                    let (client, base, token, id) = (
                        client.clone(),
                        base.clone(),
                        token.clone(),
                        ids[worker].clone(),
                    );
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async move {
                        let response = client
                            .patch(format!("{base}/v1/expenses/{id}"))
                            .bearer_auth(&token)
                            .json(&json!({"description": format!("bench {n}")}))
                            .send()
                            .await?;
                        anyhow::ensure!(
                            response.status() == StatusCode::OK,
                            "{}",
                            response.status()
                        );
                        Ok(())
                    }
                },
            )
            .await;
        }
        "visibility" => {
            let token = register(&client, &args.base).await?;
            let mut latencies = Vec::new();
            let started = Instant::now();
            for _ in 0..args.samples {
                let response = client
                    .post(format!("{}/v1/expenses", args.base))
                    .bearer_auth(&token)
                    .json(&expense())
                    .send()
                    .await?
                    .error_for_status()?;
                let consistency = response.headers()["x-consistency-token"]
                    .to_str()?
                    .to_string();
                // From the command's answer to the query's: how long the write takes to
                // become visible, plus one query.
                let t = Instant::now();
                client
                    .get(format!("{}/v1/expenses?limit=1", args.base))
                    .bearer_auth(&token)
                    .header("x-consistency-token", consistency)
                    .send()
                    .await?
                    .error_for_status()?;
                latencies.push(t.elapsed());
            }
            report(
                "command → visible in the read model",
                latencies,
                started.elapsed(),
                0,
            );
            // The same, as a client that knows nothing of tokens: the created expense
            // read back by id, and the user's list, right after the command.
            for (label, list) in [
                ("command → read back by id, no token", false),
                ("command → own list, no token", true),
            ] {
                let mut latencies = Vec::new();
                let started = Instant::now();
                for _ in 0..args.samples {
                    let word = Uuid::new_v4().simple().to_string();
                    let mut body = expense();
                    body["merchant"] = json!(format!("Bench {word}"));
                    let created: Value = client
                        .post(format!("{}/v1/expenses", args.base))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    let id = created["id"].as_str().context("an id")?.to_string();
                    let url = match list {
                        true => format!("{}/v1/expenses?q={word}", args.base),
                        false => format!("{}/v1/expenses/{id}", args.base),
                    };
                    let t = Instant::now();
                    let body: Value = client
                        .get(url)
                        .bearer_auth(&token)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    latencies.push(t.elapsed());
                    let seen = match list {
                        true => body["items"][0]["id"].as_str() == Some(id.as_str()),
                        false => body["id"].as_str() == Some(id.as_str()),
                    };
                    anyhow::ensure!(seen, "{label}: the expense just created is missing");
                }
                report(label, latencies, started.elapsed(), 0);
            }
        }
        "reads" => reads(&args, &client).await?,
        "console" => console(&args).await?,
        "seed" => seed(&args).await?,
        "proofs" => proofs(&args).await?,
        "provable" => provable(&args).await?,
        other => anyhow::bail!("unknown mode {other}"),
    }
    Ok(())
}

/// Queries by a user who is not writing: one expense by id, then a page of 20, each
/// measured on its own. The expenses are created first and waited for.
/// A console session: its cookie, as a browser keeps it.
async fn console_session(client: &Client, base: &str, email: &str) -> anyhow::Result<String> {
    let page = client.get(format!("{base}/app/sign-in")).send().await?;
    let pre = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with("ew_pre=")))
        .context("a pre-session cookie")?
        .to_string();
    let html = page.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("a CSRF token")?
        .to_string();
    let signed = client
        .post(format!("{base}/app/sign-in"))
        .header(reqwest::header::COOKIE, pre)
        .form(&[
            ("email", email),
            ("password", "benchmark password"),
            ("csrf", &csrf),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        signed.status() == StatusCode::SEE_OTHER,
        "signing in: {}",
        signed.status()
    );
    signed
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with("ew_session=")))
        .map(str::to_string)
        .context("a session cookie")
}

/// A user of the admin's organization in `role`, with a known address.
async fn member(
    client: &Client,
    base: &str,
    admin: &str,
    role: &str,
) -> anyhow::Result<(String, String)> {
    let email = format!("{role}-{}@example.test", Uuid::new_v4());
    client
        .post(format!("{base}/v1/users"))
        .bearer_auth(admin)
        .json(
            &json!({"name": role, "email": email, "password": "benchmark password", "role": role}),
        )
        .send()
        .await?
        .error_for_status()?;
    let body: Value = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": "benchmark password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((
        email,
        body["token"].as_str().context("a token")?.to_string(),
    ))
}

/// The console's pages timed with `events` expenses in the organization (one employee's,
/// every other one submitted, so the approver's queue is half of them): each page
/// `samples` times, one after another, as one person clicks.
async fn console(args: &Args) -> anyhow::Result<()> {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let base = args.base.clone();
    let admin = register(&client, &base).await?;
    let (employee_email, employee) = member(&client, &base, &admin, "employee").await?;
    let (approver_email, _) = member(&client, &base, &admin, "approver").await?;
    let (auditor_email, _) = member(&client, &base, &admin, "auditor").await?;
    let started = Instant::now();
    let ids = Arc::new(Mutex::new(Vec::with_capacity(args.events)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (client, base, employee, ids, next, total) = (
            client.clone(),
            base.clone(),
            employee.clone(),
            ids.clone(),
            next.clone(),
            args.events,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(());
                }
                let id = create(&client, &base, &employee, Uuid::new_v4()).await?;
                if n % 2 == 0 {
                    client
                        .post(format!("{base}/v1/expenses/{id}/submit"))
                        .bearer_auth(&employee)
                        .json(&json!({"justification": "bench"}))
                        .send()
                        .await?
                        .error_for_status()?;
                }
                lock(&ids).push(id);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let ids = lock(&ids).clone();
    println!(
        "seeded {} expenses ({} submitted) in {:.1} s",
        ids.len(),
        ids.len().div_ceil(2),
        started.elapsed().as_secs_f64()
    );
    let one = &ids[ids.len() / 2];
    let sessions = [
        (
            "employee",
            console_session(&client, &base, &employee_email).await?,
        ),
        (
            "approver",
            console_session(&client, &base, &approver_email).await?,
        ),
        (
            "auditor",
            console_session(&client, &base, &auditor_email).await?,
        ),
    ];
    let admin_email = {
        let me: Value = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&admin)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        me["email"]
            .as_str()
            .context("the admin's address")?
            .to_string()
    };
    let admin_session = console_session(&client, &base, &admin_email).await?;
    let session = |who: &str| {
        sessions
            .iter()
            .find(|(w, _)| *w == who)
            .map_or(admin_session.clone(), |(_, s)| s.clone())
    };
    for (who, path) in [
        ("employee", "/app/expenses".to_string()),
        ("employee", "/app/expenses?q=Bench".to_string()),
        ("employee", "/app/expenses?status=submitted".to_string()),
        ("employee", format!("/app/expenses/{one}")),
        ("employee", format!("/app/expenses/{one}/timeline")),
        ("employee", "/app/receipts/new".to_string()),
        ("approver", "/app/approvals".to_string()),
        ("auditor", "/app/audit".to_string()),
        (
            "auditor",
            "/app/audit?aggregate_type=expense&event_type=ExpenseSubmitted".to_string(),
        ),
        ("admin", "/app/operations".to_string()),
    ] {
        let cookie = session(who);
        let mut latencies = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let start = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == StatusCode::OK,
                "{path}: {}",
                response.status()
            );
            response.bytes().await?;
            latencies.push(start.elapsed());
        }
        println!("{who} {path}: {}", percentiles(latencies));
    }
    Ok(())
}

async fn reads(args: &Args, client: &Client) -> anyhow::Result<()> {
    let token = register(client, &args.base).await?;
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(create(client, &args.base, &token, Uuid::new_v4()).await?);
    }
    let email = format!("reader-{}@example.test", Uuid::new_v4());
    client
        .post(format!("{}/v1/users", args.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Reader", "email": email, "password": "benchmark password", "role": "auditor"}))
        .send()
        .await?
        .error_for_status()?;
    let login: Value = client
        .post(format!("{}/v1/auth/login", args.base))
        .json(&json!({"email": email, "password": "benchmark password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let reader = login["token"].as_str().context("a token")?.to_string();
    // Everything created is visible before the clock starts.
    let last = format!("{}/v1/expenses/{}", args.base, ids[ids.len() - 1]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get(&last)
        .bearer_auth(&reader)
        .send()
        .await?
        .status()
        != StatusCode::OK
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the expenses never became visible"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids = std::sync::Arc::new(ids);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (label, one) in [
        ("read one expense", true),
        ("read a page of 20 expenses", false),
    ] {
        let (client, base, reader, ids, counter) = (
            client.clone(),
            args.base.clone(),
            reader.clone(),
            ids.clone(),
            counter.clone(),
        );
        run_workers(
            args,
            &format!("{label}, {} connections", args.connections),
            move |_| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let url = match one {
                    true => format!("{base}/v1/expenses/{}", ids[n % ids.len()]),
                    false => format!("{base}/v1/expenses?limit=20"),
                };
                let (client, reader) = (client.clone(), reader.clone());
                async move {
                    let response = client.get(url).bearer_auth(&reader).send().await?;
                    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
                    response.bytes().await?;
                    Ok(())
                }
            },
        )
        .await;
    }
    Ok(())
}

/// Writes `events` expense events straight into the store (in bulk), for rebuild
/// benchmarks: ten events per expense, as a created/edited/submitted/approved mix.
async fn seed(args: &Args) -> anyhow::Result<()> {
    let db = Database::connect(&args.database_url, 4).await?;
    db.migrate().await?;
    let org = Uuid::new_v4();
    let owner = Uuid::new_v4();
    let approver = Uuid::new_v4();
    let now = Utc::now();
    let meta = json!({"organization_id": org, "actor_id": owner, "occurred_at": now,
                      "correlation_id": org, "causation_id": org})
    .to_string();
    let started = Instant::now();
    let mut written = 0usize;
    while written < args.events {
        let mut rows: Vec<(String, i64, &str, String)> = Vec::new();
        while rows.len() < 5000 && written + rows.len() < args.events {
            let id = Uuid::new_v4().to_string();
            rows.push((id.clone(), 1, "ExpenseCreated", json!({"ExpenseCreated": {
                "organization_id": org, "owner_id": owner, "money": {"amount": "12.34", "currency": "EUR"},
                "merchant": "Seed Café", "category": "meals", "spent_on": now.date_naive(),
                "description": null, "receipt_id": null, "created_at": now}}).to_string()));
            for seq in 2..=8 {
                rows.push((id.clone(), seq, "ExpenseUpdated", json!({"ExpenseUpdated": {
                    "money": {"amount": format!("{seq}.00"), "currency": "EUR"}, "merchant": "Seed Café",
                    "category": "meals", "spent_on": now.date_naive(), "description": format!("edit {seq}"),
                    "updated_at": now}}).to_string()));
            }
            rows.push((
                id.clone(),
                9,
                "ExpenseSubmitted",
                json!({"ExpenseSubmitted": {"resubmission": false, "submitted_at": now}})
                    .to_string(),
            ));
            rows.push((id, 10, "ExpenseApproved", json!({"ExpenseApproved": {"approver_id": approver, "comment": null, "approved_at": now}}).to_string()));
        }
        rows.truncate(args.events - written);
        let payload_type = match db {
            Database::Postgres(_) => "json",
            Database::Sqlite(_) => "text",
        };
        let mut sql = String::from(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
        );
        for i in 0..rows.len() {
            let b = i * 4;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('expense', ${}, ${}, ${}, '1.0', CAST(${} AS {payload_type}), CAST($1 AS {payload_type}))",
                b + 2, b + 3, b + 4, b + 5
            ));
        }
        on_writer!(&db, |pool| {
            let mut query = sqlx::query(&sql).bind(&meta);
            for (id, seq, event_type, payload) in &rows {
                query = query.bind(id).bind(seq).bind(*event_type).bind(payload);
            }
            query.execute(pool).await?;
        });
        written += rows.len();
    }
    println!(
        "seeded {written} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Inclusion proofs of random leaves in the whole signed tree, and consistency proofs
/// from random earlier sizes, as the HTTP handlers make them from the stored tree: how
/// long each takes and how many hashes it holds.
async fn proofs(args: &Args) -> anyhow::Result<()> {
    use expensewise_infra::audit_log;
    let db = Database::connect(&args.database_url, 4).await?;
    let size = audit_log::latest_checkpoint(&db)
        .await?
        .context("no checkpoint: run the notary first")?
        .tree_size;
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    let mut hashes = (0usize, 0usize);
    for _ in 0..args.samples {
        let index = rand::random::<u64>() % size;
        let started = Instant::now();
        let proof = audit_log::inclusion_proof(&db, index, size).await?;
        inclusion.push(started.elapsed());
        hashes.0 = hashes.0.max(proof.len());
        let old = 1 + rand::random::<u64>() % (size - 1);
        let started = Instant::now();
        let proof = audit_log::consistency_proof(&db, old, size).await?;
        consistency.push(started.elapsed());
        hashes.1 = hashes.1.max(proof.len());
    }
    println!(
        "inclusion proofs in a tree of {size}: at most {} hashes ({} bytes); {}",
        hashes.0,
        hashes.0 * 32,
        percentiles(inclusion)
    );
    println!(
        "consistency proofs to a tree of {size}: at most {} hashes ({} bytes); {}",
        hashes.1,
        hashes.1 * 32,
        percentiles(consistency)
    );
    Ok(())
}

/// From an event's commit to the first signed checkpoint that includes it: the time
/// from its recording (taken inside its transaction, so a little before the commit) to
/// the checkpoint's signing, for every event recorded since `--since`.
async fn provable(args: &Args) -> anyhow::Result<()> {
    let db = Database::connect(&args.database_url, 4).await?;
    let since = args.since.context("--since is needed")?;
    let Database::Postgres(pool) = &db else {
        anyhow::bail!("provable reads PostgreSQL");
    };
    let delays: Vec<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (SELECT MIN(c.signed_at) FROM audit_checkpoints c \
                 WHERE c.tree_size > l.leaf_index) - e.recorded_at)::float8 \
         FROM audit_leaves l JOIN events e ON (e.aggregate_type, e.aggregate_id, e.sequence) \
              = (l.aggregate_type, l.aggregate_id, l.sequence) \
         WHERE e.recorded_at >= $1 \
           AND l.leaf_index < (SELECT MAX(tree_size) FROM audit_checkpoints)",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    let latencies = delays
        .into_iter()
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
        .collect::<Vec<_>>();
    println!(
        "commit → in a signed checkpoint, {} events: {}",
        latencies.len(),
        percentiles(latencies)
    );
    Ok(())
}
