//! OpenTelemetry: one trace follows a submission from the HTTP request through the events
//! into the projections and the email worker, exported over OTLP/HTTP to a local
//! receiver (`tests/support/otlp_receiver.py`).

use std::collections::BTreeSet;
use std::time::Duration;

use expensewise_tests::{free_port, wait_for_port, Api, Backend, Process, TestDatabase};
use reqwest::StatusCode;
use serde_json::Value;

/// Every span the receiver got: (trace id, span id, parent span id, name).
fn exported_spans(folder: &std::path::Path) -> Vec<(String, String, String, String)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let export: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let text = |k: &str| span[k].as_str().unwrap_or_default().to_lowercase();
                    spans.push((
                        text("traceId"),
                        text("spanId"),
                        text("parentSpanId"),
                        text("name"),
                    ));
                }
            }
        }
    }
    spans
}

/// The receiver process, stopped however the test ends.
struct Receiver(std::process::Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn one_trace_spans_the_request_the_projection_and_the_email() {
    let receiver_port = free_port();
    let folder = std::env::temp_dir().join(format!("expensewise-otlp-{}", uuid::Uuid::new_v4()));
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let _receiver = Receiver(
        std::process::Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/support/otlp_receiver.py"
            ))
            .arg(receiver_port.to_string())
            .arg(&folder)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the OTLP receiver"),
    );
    wait_for_port(receiver_port, 15, "the OTLP receiver did not start");

    let database = TestDatabase::create(Backend::Sqlite).await;
    let port = free_port();
    let mut env = database.environment();
    env.extend([
        ("PORT", port.to_string()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{receiver_port}"),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_string()),
        // Export promptly rather than every five seconds.
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_string()),
        ("LOG_LEVEL", "info".to_string()),
    ]);
    let mut server = Process::start(&["serve"], &env, database.data_dir.join("serve.log"));
    wait_for_port(port, 30, "the server did not start");
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let ada = api.register("Acme", "ada@acme.test").await;
    let eve = api.add_user(&ada, "eve@acme.test", "employee").await;
    let expense = api.create_expense(&eve).await;
    let id = expense.id.as_str();

    // The caller's own trace: the submission continues it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let submitted = api
        .request(
            reqwest::Method::POST,
            &format!("/v1/expenses/{id}/submit"),
            Some(&eve.token),
        )
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::OK);

    let wanted = ["request", "projection", "worker"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let in_trace = loop {
        let spans: Vec<_> = exported_spans(&folder)
            .into_iter()
            .filter(|s| s.0 == trace_id)
            .collect();
        let names: BTreeSet<&str> = spans.iter().map(|s| s.3.as_str()).collect();
        if wanted.iter().all(|w| names.contains(w)) {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans of the trace so far: {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The request span is the caller's child; projection and worker spans hang off it.
    let request = in_trace.iter().find(|s| s.3 == "request").unwrap();
    assert_eq!(request.2, "00f067aa0ba902b7");
    for name in ["projection", "worker"] {
        assert!(
            in_trace.iter().any(|s| s.3 == name && s.2 == request.1),
            "no {name} span under the request: {in_trace:?}"
        );
    }
    // The mail went out inside that trace.
    let mails = std::fs::read_dir(database.data_dir.join("mail")).map_or(0, |d| d.count());
    assert!(mails >= 1);
    // The JSON log lines of the request and of the mail carry the trace id.
    let log = std::fs::read_to_string(database.data_dir.join("serve.log")).unwrap();
    let in_trace: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["trace_id"] == trace_id))
        })
        .collect();
    for (span, message) in [
        ("request", "finished processing request"),
        ("worker", "mail sent"),
    ] {
        assert!(
            in_trace
                .iter()
                .any(|l| l["span"]["name"] == span && l["message"] == message),
            "no '{message}' line of a {span} span in trace {trace_id}: {in_trace:?}"
        );
    }

    server.terminate();
    server
        .wait_for_exit(Duration::from_secs(30))
        .expect("the server exits");
    let _ = std::fs::remove_dir_all(&folder);
    database.drop_database().await;
}
