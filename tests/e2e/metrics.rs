//! `/metrics` after a short load: the named series are there, with sensible values, and
//! routes are templates — never raw paths.
//!
//! One recorder serves a whole process, and the tests of this binary share a process:
//! counts are at least what this test caused.

use expensewise_tests::{consistency, expect_status, Backend, NatsServer, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

/// The sum of the samples of `name` whose labels include every one of `labels`.
pub fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            *found.get_or_insert(0.0) += value.parse::<f64>().expect("a sample value");
        }
    }
    found
}

#[tokio::test]
async fn metrics_show_requests_events_projections_and_the_process() {
    let nats = NatsServer::start();
    let app = TestApp::builder(Backend::Postgres)
        .nats(&nats.url)
        .start()
        .await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let mut last = String::new();
    for _ in 0..20 {
        let created = app.create_expense(&ada).await;
        last = created.id.clone();
    }
    let submitted = app
        .post(
            &format!("/v1/expenses/{last}/submit"),
            Some(&ada.token),
            Value::Null,
        )
        .await;
    let token = consistency(&submitted);
    expect_status(submitted, StatusCode::OK).await;
    let missing = uuid::Uuid::new_v4();
    let not_found = app
        .get(&format!("/v1/expenses/{missing}"), &ada.token)
        .await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    let nowhere = app.get("/no/such/page", &ada.token).await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    // Let the relay and the projections see the events.
    expect_status(
        app.get_after("/v1/expenses", &ada.token, &token).await,
        StatusCode::OK,
    )
    .await;

    let response = app
        .request(reqwest::Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let page = response.text().await.unwrap();

    let created = sample(
        &page,
        "http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/v1/expenses"),
            ("status_code", "201"),
        ],
    );
    assert!(created.unwrap_or(0.0) >= 20.0, "{created:?}");
    let submit_timings = sample(
        &page,
        "http_request_duration_seconds_count",
        &[
            ("route", "/v1/expenses/{id}/submit"),
            ("status_code", "200"),
        ],
    );
    assert!(submit_timings.unwrap_or(0.0) >= 1.0, "{submit_timings:?}");
    let slow = sample(
        &page,
        "http_request_duration_seconds_bucket",
        &[("route", "/v1/expenses/{id}/submit"), ("le", "+Inf")],
    );
    assert!(
        slow.unwrap_or(0.0) >= 1.0,
        "a histogram with buckets: {slow:?}"
    );
    assert!(
        sample(
            &page,
            "http_requests_total",
            &[("route", "/v1/expenses/{id}"), ("status_code", "404")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        sample(
            &page,
            "http_requests_total",
            &[("route", "unmatched"), ("status_code", "404")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    // Never a raw path: no label carries an id.
    let id = regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-").unwrap();
    assert!(
        !page
            .lines()
            .any(|l| l.starts_with("http_") && id.is_match(l)),
        "a raw path in a label"
    );

    let appended = sample(
        &page,
        "expensewise_events_appended_total",
        &[("aggregate_type", "expense")],
    );
    assert!(appended.unwrap_or(0.0) >= 21.0, "{appended:?}");
    let published = sample(&page, "expensewise_relay_published_total", &[]);
    assert!(published.unwrap_or(0.0) >= 21.0, "{published:?}");
    let projected = sample(
        &page,
        "expensewise_projection_events_total",
        &[("projection", "expenses")],
    );
    assert!(projected.unwrap_or(0.0) >= 21.0, "{projected:?}");
    for lag in [
        sample(&page, "expensewise_relay_lag_seconds", &[]),
        sample(
            &page,
            "expensewise_projection_lag_seconds",
            &[("projection", "expenses")],
        ),
    ] {
        let lag = lag.expect("a lag gauge");
        assert!((0.0..60.0).contains(&lag), "{lag}");
    }
    let memory = sample(&page, "process_resident_memory_bytes", &[]).expect("process metrics");
    assert!(memory > 1e6, "{memory}");
    assert!(sample(&page, "process_cpu_seconds_total", &[]).is_some());
    app.finish().await;
}
