//! Commands operators and pipelines run: `expensewise smoke` against a deployment, and
//! `expensewise stream reset` after a database restore.

use std::collections::BTreeSet;
use std::time::Duration;

use expensewise_api::server::Roles;
use expensewise_tests::{
    expensewise, free_port, stored_event_ids, wait_for_stream, Backend, NatsServer, Process,
    TestApp, PASSWORD,
};
use reqwest::StatusCode;

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn smoke_passes_against_a_working_deployment_and_fails_otherwise() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let credentials = [
        ("SMOKE_EMAIL", "ada@acme.test".to_string()),
        ("SMOKE_PASSWORD", PASSWORD.to_string()),
    ];
    let passed = expensewise(&["smoke", "--base-url", &app.base, "--write"], &credentials).await;
    let report = text(&passed);
    assert!(passed.status.success(), "{report}");
    for line in [
        "GET /ready",
        "POST /v1/auth/login",
        "GET /app/assets (script)",
        "POST /app/sign-in",
        "GET /app/expenses",
        "read your write",
        "DELETE /v1/expenses/",
    ] {
        assert!(report.contains(line), "no '{line}' in {report}");
    }
    assert!(report.ends_with("smoke: passed\n"), "{report}");
    // What it wrote, it deleted: the history keeps the three events.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = app.get("/v1/expenses?q=Smoke", &ada.token).await;
        assert_eq!(listed.status(), StatusCode::OK);
        let listed: serde_json::Value = listed.json().await.unwrap();
        if listed["items"] == serde_json::json!([]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let wrong = [
        ("SMOKE_EMAIL", "ada@acme.test".to_string()),
        ("SMOKE_PASSWORD", "not the password".to_string()),
    ];
    let refused = expensewise(&["smoke", "--base-url", &app.base], &wrong).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("POST /v1/auth/login: 401"),
        "{}",
        text(&refused)
    );
    // The password never shows.
    assert!(!text(&refused).contains("not the password"));

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let down = expensewise(&["smoke", "--base-url", &nowhere, "--timeout", "2"], &[]).await;
    assert!(!down.status.success());
    assert!(text(&down).contains("GET /health"), "{}", text(&down));
    app.finish().await;
}

/// The README's run command on the embedded default (no database, NATS or bucket
/// configured: SQLite and files under DATA_DIR): a newcomer registers in the console,
/// and the deployment's smoke test, the console's sign-in included, passes.
#[tokio::test]
async fn the_readme_command_serves_the_console_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", port.to_string()),
        ("DATA_DIR", data.path().display().to_string()),
    ];
    let _server = Process::start(&["serve"], &env, data.path().join("serve.log"));
    expensewise_tests::wait_for_port(port, 60, "expensewise serve did not start");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{base}/app/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let pre = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let registered = client
        .post(format!("{base}/app/register"))
        .header("cookie", pre)
        .form(&[
            ("csrf", csrf),
            ("organization", "Newcomer Ltd"),
            ("name", "Nora"),
            ("email", "nora@newcomer.test"),
            ("password", PASSWORD),
            ("default_currency", "gbp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let session = registered
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("ew_session="))
        .expect("signed in")
        .to_string();
    // In development (the default) the cookie works over plain HTTP on this machine.
    assert!(
        session.contains("HttpOnly") && !session.contains("Secure"),
        "{session}"
    );
    let credentials = [
        ("SMOKE_EMAIL", "nora@newcomer.test".to_string()),
        ("SMOKE_PASSWORD", PASSWORD.to_string()),
    ];
    let passed = expensewise(&["smoke", "--base-url", &base, "--write"], &credentials).await;
    assert!(passed.status.success(), "{}", text(&passed));
    assert!(
        text(&passed).contains("POST /app/sign-in"),
        "{}",
        text(&passed)
    );
    assert!(
        data.path().join("expensewise.db").exists(),
        "the embedded default's SQLite file"
    );
}

/// After a restore the stream holds events the database no longer has: the reset deletes
/// it, and relays publish again from where the read models stand, or from the start.
#[tokio::test]
async fn stream_reset_republishes_what_the_database_holds() {
    let nats = NatsServer::start();
    let without_relay = Roles {
        relay: false,
        ..Roles::ALL
    };
    let app = TestApp::builder(Backend::Postgres)
        .nats(&nats.url)
        .roles(without_relay)
        .start()
        .await;
    let mut env = app.database.environment();
    env.push(("NATS_URL", nats.url.clone()));
    let relay_env = |env: &Vec<(&'static str, String)>| {
        let mut env = env.clone();
        env.push(("PORT", free_port().to_string()));
        env
    };
    let log = app.database.data_dir.join("relay.log");
    let probes = free_port();
    let mut first_env = env.clone();
    first_env.push(("PORT", probes.to_string()));
    let mut relay = Process::start(&["relay"], &first_env, log.clone());
    expensewise_tests::wait_for_port(probes, 30, "the relay's probes did not start");
    // A relay is ready when what it uses is: not the object store, not a mail server.
    let ready: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{probes}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["checks"],
        serde_json::json!({"database": "ok", "nats": "ok"}),
        "{ready}"
    );
    let ada = app.register("Acme", "ada@acme.test").await;
    for _ in 0..3 {
        app.create_expense(&ada).await;
    }
    let db = app.database.connect().await;
    let before = stored_event_ids(&db).await;
    assert_eq!(
        wait_for_stream(&nats.url, before.len()).await.len(),
        before.len()
    );

    let refused = expensewise(&["stream", "reset"], &env).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("a relay is running"),
        "{}",
        text(&refused)
    );

    relay.terminate();
    relay
        .wait_for_exit(Duration::from_secs(30))
        .expect("the relay stops");
    // The read models have every event: nothing before them is published again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while expensewise_projections::status::status(&db)
        .await
        .unwrap()
        .iter()
        .any(|s| s.lag > 0)
    {
        assert!(tokio::time::Instant::now() < deadline, "projections behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reset = expensewise(&["stream", "reset"], &env).await;
    assert!(reset.status.success(), "{}", text(&reset));
    let mut relay = Process::start(&["relay"], &relay_env(&env), log.clone());
    let expense = app.create_expense(&ada).await;
    let after = stored_event_ids(&db).await;
    wait_for_stream(&nats.url, 1).await;
    // Anything published again from before the read models' position would follow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let republished = expensewise_tests::stream_messages(&nats.url);
    assert_eq!(republished.len(), 1, "{republished:?}");
    assert_eq!(republished[0]["msg_id"], after.last().unwrap().as_str());
    assert!(
        !before.contains(&after.last().unwrap().to_string()),
        "{expense:?}"
    );

    relay.terminate();
    relay
        .wait_for_exit(Duration::from_secs(30))
        .expect("the relay stops");
    let reset = expensewise(&["stream", "reset", "--from-start"], &env).await;
    assert!(reset.status.success(), "{}", text(&reset));
    let _relay = Process::start(&["relay"], &relay_env(&env), log);
    let all: Vec<String> = wait_for_stream(&nats.url, after.len())
        .await
        .iter()
        .map(|m| m["msg_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all, after, "every event again, once, in order");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), after.len());
    app.finish().await;
}

async fn users_model(app: &TestApp, token: &str) -> serde_json::Value {
    let all: serde_json::Value = app
        .get("/v1/admin/projections", token)
        .await
        .json()
        .await
        .unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "users")
        .unwrap()
        .clone()
}

/// A projector that keeps failing shows its last error beside its lag, to admins in
/// `/v1/admin/projections` (and the console), until it goes on again.
async fn a_failing_projection_shows_its_error_until_it_recovers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let rename = |from: &'static str, to: &'static str| {
        let database = &app.database;
        async move {
            let db = database.connect().await;
            let sql = format!("ALTER TABLE {from} RENAME TO {to}");
            expensewise_infra::on_writer!(&db, |pool| {
                sqlx::query(&sql).execute(pool).await.unwrap();
            });
            db.close().await;
        }
    };
    // The read model's table is gone (an operator's slip): the next user added fails.
    rename("rm_users", "rm_users_away").await;
    app.add_user(&ada, "eve@acme.test", "employee").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failing = loop {
        let model = users_model(&app, &ada.token).await;
        if model["last_error"].is_string() {
            break model;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error shown: {model}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failing["lag"].as_i64().unwrap() > 0, "{failing}");
    assert!(failing["last_error_at"].is_string(), "{failing}");
    assert!(
        failing["last_error"].as_str().unwrap().contains("rm_users"),
        "{failing}"
    );
    rename("rm_users_away", "rm_users").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let model = users_model(&app, &ada.token).await;
        if model["last_error"].is_null() && model["lag"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still failing: {model}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
}

expensewise_tests::on_both_backends!(a_failing_projection_shows_its_error_until_it_recovers);
