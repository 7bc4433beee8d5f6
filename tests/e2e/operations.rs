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
