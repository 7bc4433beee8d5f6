//! The email worker against a real SMTP server (aiosmtpd) and real NATS, as a process of
//! its own that is killed mid-batch; and on the embedded default, writing `.eml` files.

use std::collections::BTreeMap;
use std::time::Duration;

use expensewise_api::server::Roles;
use expensewise_tests::{
    draw_receipt, expect_json, expect_status, upload_receipt, Backend, Expense, NatsServer,
    Process, SmtpServer, TestApp, User,
};
use reqwest::StatusCode;

use crate::metrics::sample;
use serde_json::{json, Value};

async fn submitted_expense(app: &TestApp, user: &User, merchant: &str) -> String {
    let body = json!({"amount": "18.40", "currency": "EUR", "merchant": merchant,
                      "category": "travel", "spent_on": "2026-03-02"});
    let created: Expense = expect_json(
        app.post("/v1/expenses", Some(&user.token), body).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created.id.clone();
    let submitted = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&user.token),
            Value::Null,
        )
        .await;
    expect_status(submitted, StatusCode::OK).await;
    id
}

/// A raw mail with its quoted-printable bodies decoded (soft line breaks joined, `=XX`
/// escapes turned back into bytes), so that text can be looked for whole.
fn decoded(mail: String) -> String {
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A header's value in a raw mail.
fn header<'a>(mail: &'a str, name: &str) -> &'a str {
    mail.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {mail}"))
}

/// Waits until `want` different mails (by `Message-ID`) have arrived, then a moment
/// longer for any that should not. Returns them by `Message-ID`.
///
/// A worker killed after the server took a mail but before the ledger recorded it sends
/// that mail again on restart, with the same `Message-ID` (mail clients show it once):
/// `repeats_allowed` is how many such kills the caller made.
async fn wait_for_mails(
    mails: impl Fn() -> Vec<String>,
    want: usize,
    repeats_allowed: usize,
    what: &str,
) -> BTreeMap<String, String> {
    let distinct = |all: &[String]| -> BTreeMap<String, String> {
        all.iter()
            .map(|m| (header(m, "Message-ID").to_string(), m.clone()))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while distinct(&mails()).len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {want} mails arrived",
            distinct(&mails()).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything doubled would arrive right behind.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = mails();
    let by_id = distinct(&all);
    assert_eq!(by_id.len(), want, "{what}: more mails than people to tell");
    assert!(
        all.len() <= want + repeats_allowed,
        "{what}: {} mails delivered for {want} (at most {repeats_allowed} repeats)",
        all.len()
    );
    by_id
}

/// Waits until the email ledger holds `want` rows, one per mail, and no more. A mail the
/// killed worker sent but had not recorded is recorded when JetStream redelivers its
/// event (after the acknowledgement wait, 30 s). On failure, names the mails delivered
/// but not recorded, with the worker's log.
async fn ledger_holds(
    db: &expensewise_infra::Database,
    want: i64,
    smtp: &SmtpServer,
    log: &std::path::Path,
) {
    let expensewise_infra::Database::Postgres(pool) = db else {
        unreachable!("a PostgreSQL test")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM email_ledger")
            .fetch_one(pool)
            .await
            .unwrap();
        if rows == want {
            return;
        }
        if rows > want || tokio::time::Instant::now() >= deadline {
            let recorded: Vec<String> = sqlx::query_scalar("SELECT message_id FROM email_ledger")
                .fetch_all(pool)
                .await
                .unwrap();
            let unrecorded: Vec<String> = smtp
                .mails()
                .into_iter()
                .map(decoded)
                .filter(|m| {
                    !recorded
                        .iter()
                        .any(|id| header(m, "Message-ID").contains(id.as_str()))
                })
                .map(|m| {
                    format!(
                        "{} to {}",
                        header(&m, "Subject"),
                        header(&m, "X-Envelope-To")
                    )
                })
                .collect();
            let worker_log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = worker_log.lines().rev().take(60).collect();
            panic!(
                "{rows} ledger rows for {want} mails; delivered but not recorded: {unrecorded:?}\nthe email worker's log, newest first:\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn each_person_gets_each_mail_once_through_worker_kills_and_smtp_outages() {
    let mut smtp = SmtpServer::start();
    let nats = NatsServer::start();
    let without_email = Roles {
        email: false,
        ..Roles::ALL
    };
    let app = TestApp::builder(Backend::Postgres)
        .nats(&nats.url)
        .env(smtp.environment())
        .roles(without_email)
        .start()
        .await;
    let mut env = app.database.environment();
    env.push(("NATS_URL", nats.url.clone()));
    env.extend(smtp.environment());
    let probes = expensewise_tests::free_port();
    env.push(("PORT", probes.to_string()));
    let log = app.database.data_dir.join("email-worker.log");
    let mut worker = Process::start(&["worker", "email"], &env, log.clone());

    let ada = app.register("Acme", "ada@acme.test").await;
    let alice = app.add_user(&ada, "alice@acme.test", "approver").await;
    let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
    // Auditors and the submitter hear nothing of a submission.
    app.add_user(&ada, "audrey@acme.test", "auditor").await;

    // Twelve submissions: each to Ada (admin) and Alice (approver). The worker is killed
    // while it works through them, and started again.
    let mut expenses = Vec::new();
    for i in 0..12 {
        expenses.push(submitted_expense(&app, &eve, &format!("Taxi {i}")).await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while smtp.mails().len() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "no mail at all");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill_and_restart();
    let received = || smtp.mails().into_iter().map(decoded).collect::<Vec<_>>();
    let mails = wait_for_mails(received, 24, 1, "submissions").await;
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for mail in mails.values() {
        *per_recipient
            .entry(header(mail, "X-Envelope-To").to_string())
            .or_default() += 1;
        assert!(header(mail, "Subject").starts_with("Expense to approve: Taxi "));
        assert_eq!(header(mail, "From"), "Expense-Wise <no-reply@localhost>");
        assert!(
            mail.contains("Content-Type: multipart/alternative"),
            "{mail}"
        );
        assert!(mail.contains("Content-Type: text/html"), "{mail}");
        assert!(
            mail.contains("https://expenses.example.test/v1/expenses/"),
            "{mail}"
        );
    }
    assert_eq!(
        per_recipient,
        BTreeMap::from([
            ("ada@acme.test".to_string(), 12),
            ("alice@acme.test".to_string(), 12)
        ])
    );

    // The submissions' mails are all recorded before anything is decided: a mail the
    // killed worker sent without recording it is recorded when its event comes back —
    // unless the expense was approved meanwhile, when nobody is waited for and the
    // redelivered event sends and records nothing.
    let db = app.database.connect().await;
    ledger_holds(&db, 24, &smtp, &log).await;

    // The mail server goes away: the email worker says so, and keeps the mails until it
    // is back; the API, which sends no mail, stays ready.
    smtp.kill();
    let worker_ready = format!("http://127.0.0.1:{probes}/ready");
    let ready = app.client.get(&worker_ready).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["smtp"], "unreachable", "{ready}");
    let api_ready = app
        .request(reqwest::Method::GET, "/ready", None)
        .send()
        .await
        .unwrap();
    assert_eq!(api_ready.status(), StatusCode::OK);
    for id in &expenses[..3] {
        let approved = app
            .post(
                &format!("/v1/expenses/{id}/approve"),
                Some(&alice.token),
                json!({"comment": "Fine"}),
            )
            .await;
        expect_status(approved, StatusCode::OK).await;
    }
    let rejected = app
        .post(
            &format!("/v1/expenses/{}/reject", expenses[3]),
            Some(&alice.token),
            json!({"reason": "No receipt attached"}),
        )
        .await;
    expect_status(rejected, StatusCode::OK).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    smtp.restart();
    let received = || smtp.mails().into_iter().map(decoded).collect::<Vec<_>>();
    let decisions: Vec<String> = wait_for_mails(received, 28, 1, "decisions")
        .await
        .into_values()
        .filter(|m| !header(m, "Subject").starts_with("Expense to approve"))
        .collect();
    assert_eq!(decisions.len(), 4);
    assert!(decisions
        .iter()
        .all(|m| header(m, "X-Envelope-To") == "eve@acme.test"));
    let approvals = decisions
        .iter()
        .filter(|m| header(m, "Subject").starts_with("Approved: Taxi "))
        .count();
    assert_eq!(approvals, 3);
    let rejection = decisions
        .iter()
        .find(|m| header(m, "Subject").starts_with("Rejected: Taxi 3"))
        .expect("the rejection mail");
    assert!(
        rejection.contains("Reason: No receipt attached"),
        "{rejection}"
    );
    let ready = app.client.get(&worker_ready).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    // The worker process answers its probes and shows its own metrics: what it sent since
    // its restart, and the retries the outage cost.
    let worker_url = format!("http://127.0.0.1:{probes}");
    let health = app
        .client
        .get(format!("{worker_url}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let page = app
        .client
        .get(format!("{worker_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent = sample(&page, "expensewise_emails_sent_total", &[]).unwrap_or(0.0);
    assert!(sent >= 4.0, "{sent}\n{page}");
    let unavailable = sample(
        &page,
        "expensewise_emails_failed_total",
        &[("reason", "unavailable")],
    );
    assert!(unavailable.unwrap_or(0.0) >= 1.0, "{page}");
    let retried = sample(
        &page,
        "expensewise_consumer_redeliveries_total",
        &[("worker", "email")],
    );
    assert!(retried.unwrap_or(0.0) >= 1.0, "{page}");
    // Every mail ends in the ledger once, nothing given up on.
    ledger_holds(&db, 28, &smtp, &log).await;
    db.close().await;
    let delivered = smtp.mails().len();
    assert!(
        delivered <= 29,
        "{delivered} deliveries for 28 mails and one kill"
    );
    drop(worker);
    app.finish().await;
}

#[tokio::test]
async fn the_embedded_default_writes_mails_as_files() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
    submitted_expense(&app, &eve, "Hotel Adler").await;
    let blank = draw_receipt(&json!({"lines": [" "]}));
    expect_status(
        upload_receipt(&app, &eve, "blank.png", blank, &[]).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let folder = app.database.data_dir.join("mail");
    let read = || -> Vec<String> {
        std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .map(|p| decoded(std::fs::read_to_string(p).unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mails: Vec<String> = wait_for_mails(read, 2, 0, "embedded")
        .await
        .into_values()
        .collect();
    let to_ada = mails
        .iter()
        .find(|m| header(m, "To").contains("ada@acme.test"))
        .expect("the approval request");
    assert!(header(to_ada, "Subject").starts_with("Expense to approve: Hotel Adler"));
    let to_eve = mails
        .iter()
        .find(|m| header(m, "To").contains("eve@acme.test"))
        .expect("the scan failure");
    assert_eq!(header(to_eve, "Subject"), "Your receipt could not be read");
    assert!(
        to_eve.contains("no text was found on the receipt"),
        "{to_eve}"
    );
    app.finish().await;
}

/// STARTTLS (port 587 style) and TLS from the first byte (465), each with a login the
/// server accepts only over TLS, and a certificate checked against `SMTP_CA_FILE`.
#[tokio::test]
async fn mail_goes_out_over_starttls_and_tls_to_a_verified_server() {
    for security in ["starttls", "tls"] {
        let smtp = SmtpServer::start_with(security);
        let app = TestApp::builder(Backend::Sqlite)
            .env(smtp.environment())
            .start()
            .await;
        let ready = app
            .request(reqwest::Method::GET, "/ready", None)
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{security}");
        let ada = app.register("Acme", "ada@acme.test").await;
        let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
        submitted_expense(&app, &eve, "Hotel Adler").await;
        let mails = wait_for_mails(|| smtp.mails(), 1, 0, security).await;
        let mail = mails.values().next().unwrap();
        assert!(mail.starts_with("X-Envelope-To: ada@acme.test"), "{mail}");
        app.finish().await;

        // Without the CA, the server's certificate is not trusted: nothing is sent.
        let untrusting: Vec<_> = smtp
            .environment()
            .into_iter()
            .filter(|(name, _)| *name != "SMTP_CA_FILE")
            .collect();
        let app = TestApp::builder(Backend::Sqlite)
            .env(untrusting)
            .start()
            .await;
        let ready = app
            .request(reqwest::Method::GET, "/ready", None)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{security}"
        );
        let ada = app.register("Acme", "ada@acme.test").await;
        let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
        submitted_expense(&app, &eve, "Hotel Adler").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            smtp.mails().len(),
            1,
            "{security}: sent to an untrusted server"
        );
        app.finish().await;
    }
}
