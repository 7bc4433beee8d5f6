//! SIGTERM: the server stops accepting, lets the request in flight finish, and exits
//! cleanly well within the orchestrator's grace period.

use std::time::{Duration, Instant};

use expensewise_tests::{free_port, wait_for_port, Api, Backend, Process, TestDatabase};
use reqwest::StatusCode;

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let port = free_port();
    let mut env = database.environment();
    env.extend([
        ("LOG_LEVEL", "info".to_string()),
        ("PORT", port.to_string()),
    ]);
    let log = database.data_dir.join("api.log");
    // The API alone: no projector runs, so a query waits for the caller's own write.
    let mut server = Process::start(&["api"], &env, log.clone());
    wait_for_port(port, 30, "the server did not start");
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let token = api.register("Acme", "ada@acme.test").await.token;

    // A query waiting for the caller's registration, which no read model will see: the
    // server holds it for up to 5 s. SIGTERM arrives while it waits.
    let in_flight = tokio::spawn({
        let client = api.client.clone();
        let url = format!("{}/v1/expenses", api.base);
        async move { client.get(url).bearer_auth(token).send().await }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let signalled = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "new connections are refused once SIGTERM arrived"
    );
    let answer = in_flight
        .await
        .unwrap()
        .expect("the request in flight got its answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key("retry-after"));
    let status = server
        .wait_for_exit(Duration::from_secs(30))
        .expect("the server exits within 30 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("shutting down"), "{log}");
    database.drop_database().await;
}
