//! The verifiable history (docs/audit-log.md). Each kind of tampering — done with SQL
//! behind the product's back, its guards switched off as a DBA would — is named by
//! `expensewise audit verify` at the event it touched, and an auditor's verifier written
//! in Python from the document alone agrees on the bundle the product then exports.
//! Proofs fetched over HTTP check out with that verifier too, and an erasure leaves the
//! log verifying clean.

use std::path::Path;
use std::time::Duration;

use expensewise_domain::signed_note::NoteSigner;
use expensewise_infra::nats::event_id;
use expensewise_tests::{
    consistency, expect_problem, expect_status, expense_body, expensewise, on_both_backends,
    support_script, upload_receipt, Backend, S3Server, TestApp, TestDatabase, User, TINY_PNG,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Row};

/// An event row as stored, every column as text where the databases differ.
#[derive(Debug, Clone)]
struct EventRow {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    payload: String,
    metadata: String,
    event_version: String,
    position: i64,
    txid: String,
    recorded_at: String,
}

impl EventRow {
    fn id(&self) -> String {
        event_id(&self.aggregate_type, &self.aggregate_id, self.sequence).to_string()
    }
}

/// A connection to the test database that bypasses the product's guards, as a DBA can:
/// on PostgreSQL with triggers switched off for the session, on SQLite with them dropped.
enum Dba {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Dba {
    async fn connect(database: &TestDatabase) -> Dba {
        let url = &database.config().database.url;
        if url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut conn)
                .await
                .unwrap();
            Dba::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            for trigger in [
                "events_are_append_only_update",
                "events_are_append_only_delete",
                "audit_checkpoints_no_update",
                "audit_leaves_no_delete",
            ] {
                sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Dba::Sqlite(conn)
        }
    }

    async fn rows(&mut self) -> Vec<EventRow> {
        const COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
                               event_version";
        macro_rules! read {
            ($conn:expr, $sql:expr) => {
                sqlx::query($sql)
                    .fetch_all($conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| EventRow {
                        aggregate_type: r.get("aggregate_type"),
                        aggregate_id: r.get("aggregate_id"),
                        sequence: r.get("sequence"),
                        event_type: r.get("event_type"),
                        event_version: r.get("event_version"),
                        payload: r.get("payload"),
                        metadata: r.get("metadata"),
                        position: r.get("position"),
                        txid: r.get("txid"),
                        recorded_at: r.get("recorded_at"),
                    })
                    .collect()
            };
        }
        match self {
            Dba::Postgres(conn) => read!(
                &mut *conn,
                &format!(
                    "SELECT {COLUMNS}, payload::text AS payload, metadata::text AS metadata, \
                     position, txid::text AS txid, recorded_at::text AS recorded_at \
                     FROM events ORDER BY events.txid, events.position"
                )
            ),
            Dba::Sqlite(conn) => read!(
                &mut *conn,
                &format!(
                    "SELECT {COLUMNS}, payload, metadata, rowid AS position, '0' AS txid, \
                     recorded_at FROM events ORDER BY rowid"
                )
            ),
        }
    }

    async fn run(&mut self, sql: &str, position: i64) {
        match self {
            Dba::Postgres(conn) => {
                sqlx::query(sql).bind(position).execute(conn).await.unwrap();
            }
            Dba::Sqlite(conn) => {
                sqlx::query(sql).bind(position).execute(conn).await.unwrap();
            }
        };
    }

    async fn delete(&mut self, row: &EventRow) {
        let sql = match self {
            Dba::Postgres(_) => "DELETE FROM events WHERE position = $1",
            Dba::Sqlite(_) => "DELETE FROM events WHERE rowid = $1",
        };
        self.run(sql, row.position).await;
    }

    /// Inserts `row` at its own place in the order (its position, and transaction).
    async fn insert(&mut self, row: &EventRow) {
        match self {
            Dba::Postgres(conn) => {
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, position, txid, recorded_at) \
                     OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, \
                     $8, $9::xid8, $10::timestamptz)",
                )
                .bind(&row.aggregate_type)
                .bind(&row.aggregate_id)
                .bind(row.sequence)
                .bind(&row.event_type)
                .bind(&row.event_version)
                .bind(&row.payload)
                .bind(&row.metadata)
                .bind(row.position)
                .bind(&row.txid)
                .bind(&row.recorded_at)
                .execute(conn)
                .await
                .unwrap();
            }
            Dba::Sqlite(conn) => {
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                     event_version, payload, metadata, rowid, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&row.aggregate_type)
                .bind(&row.aggregate_id)
                .bind(row.sequence)
                .bind(&row.event_type)
                .bind(&row.event_version)
                .bind(&row.payload)
                .bind(&row.metadata)
                .bind(row.position)
                .bind(&row.recorded_at)
                .execute(conn)
                .await
                .unwrap();
            }
        }
    }

    async fn set_payload(&mut self, row: &EventRow, payload: &str) {
        let mut changed = row.clone();
        changed.payload = payload.to_string();
        self.delete(row).await;
        self.insert(&changed).await;
    }

    /// On SQLite rowids are dense: moves every event after `position` one place on (or
    /// back), to make room in the middle of the order.
    async fn shift_after(&mut self, position: i64, by: i64) {
        if let Dba::Sqlite(conn) = self {
            sqlx::query("UPDATE events SET rowid = -rowid WHERE rowid > $1")
                .bind(position)
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("UPDATE events SET rowid = -rowid + $1 WHERE rowid < 0")
                .bind(by)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }

    /// Runs `sql` (no parameters) as it is.
    async fn execute(&mut self, sql: &str) {
        match self {
            Dba::Postgres(conn) => {
                sqlx::query(sql).execute(conn).await.unwrap();
            }
            Dba::Sqlite(conn) => {
                sqlx::query(sql).execute(conn).await.unwrap();
            }
        };
    }

    async fn latest_checkpoint(&mut self) -> (i64, String) {
        let sql = "SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";
        let row = match self {
            Dba::Postgres(conn) => {
                let r = sqlx::query(sql).fetch_one(conn).await.unwrap();
                (r.get(0), r.get(1))
            }
            Dba::Sqlite(conn) => {
                let r = sqlx::query(sql).fetch_one(conn).await.unwrap();
                (r.get(0), r.get(1))
            }
        };
        row
    }

    async fn set_checkpoint_note(&mut self, tree_size: i64, note: &str) {
        let sql = "UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2";
        match self {
            Dba::Postgres(conn) => {
                sqlx::query(sql)
                    .bind(note)
                    .bind(tree_size)
                    .execute(conn)
                    .await
                    .unwrap();
            }
            Dba::Sqlite(conn) => {
                sqlx::query(sql)
                    .bind(note)
                    .bind(tree_size)
                    .execute(conn)
                    .await
                    .unwrap();
            }
        }
    }
}

/// `expensewise audit verify --json` (with the receipts): its exit status and report.
async fn verify(env: &[(&str, String)]) -> (i32, Value) {
    let output = expensewise(&["audit", "verify", "--json", "--receipts"], env).await;
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "audit verify failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (code, serde_json::from_slice(&output.stdout).unwrap())
}

fn python_verifier(args: &[&str]) -> (i32, String) {
    let output = support_script("verify_audit.py", args);
    assert!(
        output.status.code().is_some_and(|c| c == 0 || c == 2),
        "the Python verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A bundle of the store as it is now, verified by the Python verifier, whose report
/// must be the product's own, and by `audit verify --bundle`.
async fn check_bundle_agrees(env: &[(&str, String)], dir: &Path, report: &Value) {
    let _ = std::fs::remove_dir_all(dir);
    let out = dir.display().to_string();
    let written = expensewise(&["audit", "bundle", "--receipts", "--out", &out], env).await;
    assert!(written.status.success(), "{written:?}");
    let (code, printed) = python_verifier(&["bundle", &out]);
    let theirs: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(theirs, *report, "the Python verifier disagrees");
    assert_eq!(code == 0, report["verdict"] == "clean");
    let ours = expensewise(&["audit", "verify", "--json", "--bundle", &out], env).await;
    let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
    assert_eq!(
        ours, *report,
        "verifying the bundle disagrees with the database"
    );
}

/// Waits until the notary has signed every event and no more arrive (the OCR worker
/// reads the receipt meanwhile).
async fn wait_until_signed(app: &TestApp, dba: &mut Dba, auditor: &User) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        let events = dba.rows().await.len() as u64;
        let response = app.get("/v1/audit/checkpoint", &auditor.token).await;
        let signed = match response.status() {
            StatusCode::OK => response
                .text()
                .await
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            _ => 0,
        };
        if signed == events && last == Some(events) {
            return;
        }
        last = Some(events);
        assert!(
            tokio::time::Instant::now() < deadline,
            "{signed} of {events} events signed"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

fn first(report: &Value) -> (String, Value, Value) {
    let d = &report["divergences"][0];
    (
        d["kind"].as_str().unwrap().to_string(),
        d["leaf_index"].clone(),
        d["event_id"].clone(),
    )
}

async fn every_kind_of_tampering_is_named_and_an_independent_verifier_agrees(backend: Backend) {
    // On PostgreSQL the receipts are in S3, where one is swapped at the end, and every
    // checkpoint is archived in a bucket of its own that locks it.
    let s3 = matches!(backend, Backend::Postgres).then(S3Server::start);
    let mut builder = TestApp::builder(backend);
    if let Some(s3) = &s3 {
        let made = s3.aws(&[
            "s3api",
            "create-bucket",
            "--bucket",
            "checkpoints",
            "--object-lock-enabled-for-bucket",
        ]);
        assert!(made.status.success(), "{made:?}");
        builder = builder
            .s3(s3)
            .env(vec![("AUDIT_CHECKPOINT_BUCKET", "checkpoints".to_string())]);
    }
    let app = builder.start().await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    for _ in 0..4 {
        app.create_expense(&admin).await;
    }
    let uploaded = upload_receipt(&app, &admin, "a.png", TINY_PNG.to_vec(), &[]).await;
    let receipt = expect_status(uploaded, StatusCode::ACCEPTED).await;
    let receipt_id = receipt["id"].as_str().unwrap().to_string();
    let mut dba = Dba::connect(&app.database).await;
    wait_until_signed(&app, &mut dba, &auditor).await;
    let database = app.shut_down().await;
    let mut env = database.environment();
    if let Some(s3) = &s3 {
        env.extend(s3.environment());
        env.push(("AUDIT_CHECKPOINT_BUCKET", "checkpoints".to_string()));
        let (size, _) = dba.latest_checkpoint().await;
        let key = format!("checkpoints/{size:020}");
        let head = s3.aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "checkpoints",
            "--key",
            &key,
        ]);
        assert!(
            head.status.success(),
            "the newest checkpoint is archived: {head:?}"
        );
        let head: Value = serde_json::from_slice(&head.stdout).unwrap();
        assert_eq!(head["ObjectLockMode"], "COMPLIANCE");
    }
    let bundle = database.config().data_dir.join("bundle");

    let (code, clean) = verify(&env).await;
    assert_eq!(
        (code, clean["verdict"].as_str()),
        (0, Some("clean")),
        "{clean}"
    );
    check_bundle_agrees(&env, &bundle, &clean).await;

    let rows = dba.rows().await;
    let n = rows.len();
    let created = rows
        .iter()
        .find(|r| r.event_type == "ExpenseCreated")
        .unwrap()
        .clone();
    let created_at = rows
        .iter()
        .position(|r| r.position == created.position)
        .unwrap();

    // One byte of a payload: an amount's first digit.
    let changed = created.payload.replacen("\"42.50\"", "\"52.50\"", 1);
    assert_ne!(changed, created.payload);
    dba.set_payload(&created, &changed).await;
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        ("changed".into(), json!(created_at), json!(created.id()))
    );
    check_bundle_agrees(&env, &bundle, &report).await;
    dba.set_payload(&created, &created.payload).await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // An event deleted.
    let gone = rows[n / 2].clone();
    dba.delete(&gone).await;
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        ("missing".into(), json!(n / 2), json!(gone.id()))
    );
    check_bundle_agrees(&env, &bundle, &report).await;
    dba.insert(&gone).await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // Two events' places in the order swapped.
    let (a, b) = (rows[2].clone(), rows[n - 3].clone());
    let swap = |x: &EventRow, y: &EventRow| EventRow {
        position: y.position,
        txid: y.txid.clone(),
        ..x.clone()
    };
    dba.delete(&a).await;
    dba.delete(&b).await;
    dba.insert(&swap(&a, &b)).await;
    dba.insert(&swap(&b, &a)).await;
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        ("reordered".into(), json!(2), json!(a.id()))
    );
    assert_eq!(report["divergences"][1]["event_id"], json!(b.id()));
    check_bundle_agrees(&env, &bundle, &report).await;
    for row in [swap(&a, &b), swap(&b, &a)] {
        dba.delete(&row).await;
    }
    dba.insert(&a).await;
    dba.insert(&b).await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // A forged event slipped in behind the third, in the middle of the history.
    let after = rows[3].clone();
    let forged = EventRow {
        aggregate_id: uuid::Uuid::new_v4().to_string(),
        position: match backend {
            Backend::Postgres => rows.iter().map(|r| r.position).max().unwrap() + 1000,
            Backend::Sqlite => after.position + 1,
        },
        txid: after.txid.clone(),
        ..created.clone()
    };
    dba.shift_after(after.position, 1).await;
    dba.insert(&forged).await;
    let now = dba.rows().await;
    let place = now
        .iter()
        .position(|r| r.position == forged.position)
        .unwrap();
    assert!(place < n, "the forged event is amid the history");
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        ("inserted".into(), json!(place), json!(forged.id()))
    );
    check_bundle_agrees(&env, &bundle, &report).await;
    dba.delete(&forged).await;
    dba.shift_after(after.position, -1).await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // The tail cut off.
    let tail = rows[n - 2..].to_vec();
    for row in &tail {
        dba.delete(row).await;
    }
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        ("truncated".into(), json!(n - 2), json!(tail[0].id()))
    );
    check_bundle_agrees(&env, &bundle, &report).await;
    for row in &tail {
        dba.insert(row).await;
    }
    assert_eq!(verify(&env).await.0, 0, "undone");

    // The newest checkpoint signed again with another key of the same name.
    let (size, note) = dba.latest_checkpoint().await;
    let text = &note[..note.rfind("\n\n").unwrap() + 1];
    let origin = text.lines().next().unwrap();
    let forger = NoteSigner::new(origin, &[9; 32]).unwrap();
    dba.set_checkpoint_note(size, &forger.sign(text)).await;
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(report["divergences"][0]["kind"], "bad-signature");
    assert_eq!(report["divergences"][0]["tree_size"], json!(size));
    check_bundle_agrees(&env, &bundle, &report).await;
    // Trusting the other key as well (a log whose key changed) makes it count, for both
    // verifiers.
    let keys = database.config().data_dir.join("both-keys");
    let ours = std::fs::read_to_string(bundle.join("public-key")).unwrap();
    std::fs::write(&keys, format!("{ours}{}\n", forger.verifier_key())).unwrap();
    let keys = keys.display().to_string();
    let both = expensewise(&["audit", "verify", "--json", "--public-key", &keys], &env).await;
    assert_eq!(both.status.code(), Some(0), "{both:?}");
    let bundled = bundle.display().to_string();
    let (code, _) = python_verifier(&["bundle", &bundled, "--public-key", &keys]);
    assert_eq!(code, 0);
    dba.set_checkpoint_note(size, &note).await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // The notary's record of a leaf removed: every checkpoint over it fails, and its
    // event stands unrecorded amid the others.
    let leaf = n / 3;
    dba.execute(&format!(
        "CREATE TABLE leaf_copy AS SELECT * FROM audit_leaves WHERE leaf_index = {leaf}"
    ))
    .await;
    dba.execute(&format!(
        "DELETE FROM audit_leaves WHERE leaf_index = {leaf}"
    ))
    .await;
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(report["divergences"][0]["kind"], "tree-mismatch");
    let divergences = report["divergences"].as_array().unwrap();
    assert!(
        divergences.iter().any(|d| d["kind"] == "inserted"
            && d["event_id"] == json!(rows[leaf].id())
            && d["leaf_index"] == json!(leaf + 1)),
        "{report}"
    );
    check_bundle_agrees(&env, &bundle, &report).await;
    dba.execute("INSERT INTO audit_leaves SELECT * FROM leaf_copy")
        .await;
    dba.execute("DROP TABLE leaf_copy").await;
    assert_eq!(verify(&env).await.0, 0, "undone");

    // A receipt's file swapped for another.
    let key = format!("{}/{receipt_id}", admin.organization_id);
    match &s3 {
        Some(s3) => {
            let other = database.config().data_dir.join("other.png");
            std::fs::write(&other, b"not the receipt").unwrap();
            let put = s3.aws(&[
                "s3api",
                "put-object",
                "--bucket",
                &s3.bucket,
                "--key",
                &key,
                "--body",
                &other.display().to_string(),
            ]);
            assert!(put.status.success(), "{put:?}");
        }
        None => {
            let file = database.config().data_dir.join("receipts").join(&key);
            std::fs::write(file, b"not the receipt").unwrap();
        }
    }
    let upload = rows
        .iter()
        .position(|r| r.event_type == "ReceiptUploaded")
        .unwrap();
    let (code, report) = verify(&env).await;
    assert_eq!(code, 2);
    assert_eq!(
        first(&report),
        (
            "receipt-changed".into(),
            json!(upload),
            json!(rows[upload].id())
        )
    );
    check_bundle_agrees(&env, &bundle, &report).await;
}

async fn proofs_over_http_check_out_with_an_independent_verifier(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let bob = app.add_user(&admin, "bob@acme.test", "employee").await;
    app.create_expense(&bob).await;
    let other = app.register("Globex", "gus@globex.test").await;
    app.create_expense(&other).await;
    let mut dba = Dba::connect(&app.database).await;
    wait_until_signed(&app, &mut dba, &auditor).await;
    let dir = app.database.config().data_dir;
    let key_file = dir.join("public-key.txt");
    let key = app
        .api
        .request(Method::GET, "/v1/audit/public-key", None)
        .send()
        .await
        .unwrap();
    std::fs::write(&key_file, key.text().await.unwrap()).unwrap();
    let key_file = key_file.display().to_string();
    let first_checkpoint = app.get("/v1/audit/checkpoint", &auditor.token).await;
    let first_checkpoint = first_checkpoint.text().await.unwrap();
    let first_size: u64 = first_checkpoint.lines().nth(1).unwrap().parse().unwrap();

    // Every event of the organization is proved in the signed tree.
    let page = expect_status(
        app.get("/v1/audit/events", &auditor.token).await,
        StatusCode::OK,
    )
    .await;
    let events = page["events"].as_array().unwrap();
    assert!(events.len() >= 4);
    for event in events {
        let id = event["event_id"].as_str().unwrap();
        assert!(event["leaf_index"].is_u64(), "{event}");
        let proof = app
            .get(&format!("/v1/audit/events/{id}/proof"), &auditor.token)
            .await;
        let proof = expect_status(proof, StatusCode::OK).await;
        assert_eq!(proof["leaf_index"], event["leaf_index"]);
        let file = dir.join(format!("proof-{id}.json"));
        std::fs::write(&file, proof.to_string()).unwrap();
        let file = file.display().to_string();
        assert_eq!(
            python_verifier(&["inclusion", &file, "--public-key", &key_file]),
            (0, "ok\n".to_string())
        );
        // A proof whose event was altered does not check out.
        let mut forged = proof.clone();
        forged["leaf"]["sequence"] = json!(proof["leaf"]["sequence"].as_i64().unwrap() + 1);
        std::fs::write(&file, forged.to_string()).unwrap();
        assert_eq!(
            python_verifier(&["inclusion", &file, "--public-key", &key_file]).0,
            2
        );
    }

    // Another organization's event is not found; employees read no proofs.
    let theirs = app.get("/v1/audit/events", &other.token).await;
    let theirs = expect_status(theirs, StatusCode::OK).await;
    let their_event = theirs["events"][0]["event_id"].as_str().unwrap();
    let path = format!("/v1/audit/events/{their_event}/proof");
    expect_problem(app.get(&path, &auditor.token).await, StatusCode::NOT_FOUND).await;
    let ours = events[0]["event_id"].as_str().unwrap();
    let path = format!("/v1/audit/events/{ours}/proof");
    expect_problem(app.get(&path, &bob.token).await, StatusCode::FORBIDDEN).await;

    // The log only grew: a later checkpoint is consistent with the first. Then Bob is
    // erased, which rewrites nothing: the log still verifies.
    app.create_expense(&bob).await;
    let path = format!("/v1/users/{}/erasure", bob.user_id);
    let erased = app
        .request(Method::POST, &path, Some(&admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    wait_until_signed(&app, &mut dba, &auditor).await;
    let path = format!("/v1/audit/consistency?from={first_size}");
    let proof = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
    assert!(proof["to"].as_u64().unwrap() > first_size);
    assert_eq!(proof["from_checkpoint"], json!(first_checkpoint));
    let file = dir.join("consistency.json");
    std::fs::write(&file, proof.to_string()).unwrap();
    let file = file.display().to_string();
    assert_eq!(
        python_verifier(&["consistency", &file, "--public-key", &key_file]),
        (0, "ok\n".to_string())
    );
    let database = app.shut_down().await;
    let env = database.environment();
    let (code, report) = verify(&env).await;
    assert_eq!(code, 0, "{report}");
    check_bundle_agrees(&env, &database.config().data_dir.join("bundle"), &report).await;
}

async fn the_past_reads_as_it_was_by_time_and_by_position(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let created = app
        .post("/v1/expenses", Some(&admin.token), expense_body())
        .await;
    let mut moments = vec![(
        consistency(&created),
        chrono::Utc::now(),
        "42.50".to_string(),
    )];
    let id = expect_status(created, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Three edits, each at a time of its own (SQLite records milliseconds).
    for amount in ["43.00", "44.10", "45.99"] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let edited = app
            .request(
                Method::PATCH,
                &format!("/v1/expenses/{id}"),
                Some(&admin.token),
            )
            .json(&json!({"amount": amount}))
            .send()
            .await
            .unwrap();
        let token = consistency(&edited);
        expect_status(edited, StatusCode::OK).await;
        moments.push((token, chrono::Utc::now(), amount.to_string()));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Read by the admin, whose reads wait for their own writes.
    let summary_then = expect_status(
        app.get("/v1/reports/summary", &admin.token).await,
        StatusCode::OK,
    )
    .await;
    let quarter_close = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Later: another expense, and the first submitted.
    app.create_expense(&admin).await;
    let path = format!("/v1/expenses/{id}/submit");
    let submitted = app
        .request(Method::POST, &path, Some(&admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::OK);

    for (i, (token, time, amount)) in moments.iter().enumerate() {
        let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        for as_of in [token.as_str(), stamp.as_str()] {
            let path = format!("/v1/expenses/{id}?as_of={}", as_of.replace('+', "%2B"));
            let then = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
            assert_eq!(then["amount"], json!(amount), "as of {as_of}");
            assert_eq!(then["status"], "draft");
            assert_eq!(then["version"], json!(i + 1));
            let path = format!("/v1/expenses/{id}/history?as_of={as_of}");
            let history = expect_status(app.get(&path, &auditor.token).await, StatusCode::OK).await;
            let history = history.as_array().unwrap();
            assert_eq!(history.len(), i + 1, "as of {as_of}");
            if i > 0 {
                assert_eq!(
                    history[i]["changes"],
                    json!([{"field": "amount", "from": moments[i - 1].2, "to": amount}])
                );
            }
        }
    }
    let now = expect_status(
        app.get(&format!("/v1/expenses/{id}"), &auditor.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(now["status"], "submitted");
    let before = moments[0].1 - chrono::Duration::seconds(5);
    let path = format!(
        "/v1/expenses/{id}?as_of={}",
        before.format("%Y-%m-%dT%H:%M:%SZ")
    );
    expect_problem(app.get(&path, &auditor.token).await, StatusCode::NOT_FOUND).await;
    let path = format!("/v1/expenses/{id}?as_of=last-tuesday");
    expect_problem(
        app.get(&path, &auditor.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // The audit log shows what each edit changed, too.
    let page = expect_status(
        app.get("/v1/audit/events?event_type=ExpenseUpdated", &auditor.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let edits: Vec<&Value> = page["events"].as_array().unwrap().iter().collect();
    assert_eq!(edits.len(), 3);
    assert_eq!(edits[2]["changes"][0]["from"], "44.10");

    // The books as they were at the quarter's close: the summary taken then.
    let database = app.shut_down().await;
    let env = database.environment();
    let until = quarter_close.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let replayed = expensewise(
        &[
            "audit",
            "replay",
            "--until",
            &until,
            "--organization",
            &admin.organization_id,
        ],
        &env,
    )
    .await;
    assert!(replayed.status.success(), "{replayed:?}");
    let replayed: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(replayed, summary_then);
    let listed = expensewise(
        &[
            "audit",
            "replay",
            "--until",
            &until,
            "--organization",
            &admin.organization_id,
            "--report",
            "expenses",
            "--format",
            "csv",
        ],
        &env,
    )
    .await;
    let csv = String::from_utf8(listed.stdout).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "a header and the one expense: {csv}");
    assert!(
        lines[1].contains(",45.99,EUR,") && lines[1].contains(",draft,"),
        "{csv}"
    );
}

async fn exports_take_the_history_away_in_the_auditors_formats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let auditor = app.add_user(&admin, "aud@acme.test", "auditor").await;
    let employee = app.add_user(&admin, "eve@acme.test", "employee").await;
    let first = app.create_expense(&admin).await;
    let mut body = expense_body();
    body["merchant"] = json!("Müller; \"Bäckerei\", Köln");
    body["amount"] = json!("7.05");
    expect_status(
        app.post("/v1/expenses", Some(&employee.token), body).await,
        StatusCode::CREATED,
    )
    .await;
    let edited = app
        .request(
            Method::PATCH,
            &format!("/v1/expenses/{}", first.id),
            Some(&admin.token),
        )
        .json(&json!({"amount": "40.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
    let mut dba = Dba::connect(&app.database).await;
    wait_until_signed(&app, &mut dba, &auditor).await;
    let events = expect_status(
        app.get("/v1/audit/events", &auditor.token).await,
        StatusCode::OK,
    )
    .await;
    let events = events["events"].as_array().unwrap().len();
    let dir = app.database.config().data_dir;

    // Over HTTP: NDJSON, and GDPdU as the tax auditors' tools read it.
    let path = "/v1/audit/export?format=ndjson";
    let ndjson = app
        .request(Method::GET, path, Some(&auditor.token))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.text().await.unwrap().lines().count(), events);
    let path = "/v1/audit/export?format=gdpdu";
    let zipped = app
        .request(Method::GET, path, Some(&auditor.token))
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()["content-type"], "application/zip");
    let archive = dir.join("gdpdu.zip");
    std::fs::write(&archive, zipped.bytes().await.unwrap()).unwrap();
    let out = dir.join("gdpdu");
    let read = support_script(
        "check_gdpdu.py",
        &[&archive.display().to_string(), &out.display().to_string()],
    );
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stdout)
    );
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read["tables"]["expenses.csv"], 2);
    assert_eq!(read["tables"]["events.csv"], json!(events));
    // The export holds the organization's bundle: it verifies where it lands.
    let (code, report) = python_verifier(&["bundle", &out.display().to_string()]);
    assert_eq!(code, 0, "{report}");
    let expenses = std::fs::read_to_string(out.join("expenses.csv")).unwrap();
    assert!(
        expenses.contains(";40,00;EUR;"),
        "decimal comma: {expenses}"
    );
    assert!(
        expenses.contains("\"Müller; \"\"Bäckerei\"\", Köln\""),
        "{expenses}"
    );

    // Employees take no exports away.
    let refused = app
        .request(Method::GET, path, Some(&employee.token))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // From the command line: RFC 4180 CSV into a directory.
    let database = app.shut_down().await;
    let out = dir.join("csv");
    let written = expensewise(
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--organization",
            &admin.organization_id,
            "-o",
            &out.display().to_string(),
        ],
        &database.environment(),
    )
    .await;
    assert!(written.status.success(), "{written:?}");
    let expenses = std::fs::read_to_string(out.join("expenses.csv")).unwrap();
    assert!(
        expenses.starts_with("id,owner_id,amount,currency,"),
        "{expenses}"
    );
    assert!(expenses.contains(",40.00,EUR,"), "{expenses}");
    let events_csv = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(
        events_csv.matches("\r\n").count(),
        events + 1 + embedded_breaks(&events_csv)
    );
}

/// Line breaks inside quoted fields of a CSV text (none are expected in these events).
fn embedded_breaks(text: &str) -> usize {
    let mut quoted = false;
    let mut breaks = 0;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\r' if quoted && bytes.get(i + 1) == Some(&b'\n') => breaks += 1,
            _ => {}
        }
    }
    breaks
}

on_both_backends!(
    every_kind_of_tampering_is_named_and_an_independent_verifier_agrees,
    proofs_over_http_check_out_with_an_independent_verifier,
    the_past_reads_as_it_was_by_time_and_by_position,
    exports_take_the_history_away_in_the_auditors_formats,
);
