//! Read-your-own-writes without a token: a client that never sends
//! `X-Consistency-Token` reads every state it just wrote, and one expense as its latest
//! command left it, whoever sent that command, on one process or on replicas behind a
//! load balancer.

use expensewise_tests::{
    expect_json, expect_status, expense_body, free_port, wait_for_port, Api, Backend, Expense,
    LoadBalancer, Stack, TestApp, User,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ROUNDS: usize = 1000;
/// Clients at once; each is an employee of its own, so that its list of submitted
/// expenses holds exactly the one it is working on.
const CLIENTS: usize = 8;

/// What one read of an expense answered, when it was not the state just written.
fn stale(
    round: usize,
    step: &str,
    (status, body): (StatusCode, Value),
    want: &str,
    version: &Value,
) -> Option<String> {
    (status != StatusCode::OK || body["status"] != want || &body["version"] != version).then(|| {
        format!(
            "round {round}, {step}: {status}, status {} version {} (wanted {want}, version {version})",
            body["status"], body["version"]
        )
    })
}

/// One client's rounds of create → get → submit → get → list → approve by another
/// user → the owner's get; every answer that is not the state just written is listed.
async fn rounds(
    writes: &Api,
    reads: &Api,
    owner: &User,
    approver: &User,
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for round in range {
        let created: Expense = expect_json(
            writes
                .post("/v1/expenses", Some(&owner.token), expense_body())
                .await,
            StatusCode::CREATED,
        )
        .await;
        let id = created.id.clone();
        let path = format!("/v1/expenses/{id}");
        problems.extend(stale(
            round,
            "get after create",
            read(reads, &path, owner).await,
            "draft",
            &json!(created.version),
        ));
        let submitted = expect_status(
            writes
                .post(&format!("{path}/submit"), Some(&owner.token), Value::Null)
                .await,
            StatusCode::OK,
        )
        .await;
        problems.extend(stale(
            round,
            "get after submit",
            read(reads, &path, owner).await,
            "submitted",
            &submitted["version"],
        ));
        let (status, page) = read(reads, "/v1/expenses?status=submitted", owner).await;
        let listed: Vec<&Value> = page["items"]
            .as_array()
            .map(|items| items.iter().collect())
            .unwrap_or_default();
        if status != StatusCode::OK || listed.len() != 1 || listed[0]["id"] != id.as_str() {
            problems.push(format!(
                "round {round}, list after submit: {status}, {} submitted listed",
                listed.len()
            ));
        }
        let approved = expect_status(
            writes
                .post(
                    &format!("{path}/approve"),
                    Some(&approver.token),
                    json!({"comment": "fine"}),
                )
                .await,
            StatusCode::OK,
        )
        .await;
        problems.extend(stale(
            round,
            "the owner's get after another user's approval",
            read(reads, &path, owner).await,
            "approved",
            &approved["version"],
        ));
    }
    problems
}

async fn read(api: &Api, path: &str, user: &User) -> (StatusCode, Value) {
    let response = api.get(path, &user.token).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The whole flow, `CLIENTS` at a time: writes through `writes`, reads through `reads`.
async fn plain_client_reads_every_state(writes: Api, reads: Api) {
    let admin = writes.register("Acme", "ada@acme.test").await;
    let approver = writes.add_user(&admin, "bob@acme.test", "approver").await;
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let owner = writes
            .add_user(&admin, &format!("eve{n}@acme.test"), "employee")
            .await;
        let (writes, reads) = (Api::new(writes.base.clone()), Api::new(reads.base.clone()));
        let approver = approver.clone();
        let share = ROUNDS / CLIENTS;
        clients.push(tokio::spawn(async move {
            rounds(
                &writes,
                &reads,
                &owner,
                &approver,
                n * share..(n + 1) * share,
            )
            .await
        }));
    }
    let mut problems = Vec::new();
    for client in clients {
        problems.extend(client.await.unwrap());
    }
    assert!(
        problems.is_empty(),
        "{} reads in {ROUNDS} rounds answered something else than what was just written (no token sent), e.g.:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
}

async fn a_client_without_tokens_reads_its_own_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    plain_client_reads_every_state(Api::new(app.base.clone()), Api::new(app.base.clone())).await;
    app.finish().await;
}

/// The README's generated-client flow: a client generated from `schema/openapi.json` by
/// openapi-python-client reads every state, its own writes and others', right, and
/// uploads and downloads a receipt's file.
async fn a_generated_client_reads_every_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = tokio::process::Command::new(&python)
        .arg(format!("{root}/tests/support/generated_client_flow.py"))
        .arg(&app.base)
        .arg(format!("{root}/schema/openapi.json"))
        .arg(app.database.data_dir.join("generated"))
        .arg("50")
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with openapi-python-client; ./scripts/test.sh installs it): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the generated client read something else than what was written: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["reads"], 50 * 6, "{report}");
    assert_eq!(report["wrong"], 0, "{report}");
    assert_eq!(report["file"], "same", "{report}");
    app.finish().await;
}

expensewise_tests::on_both_backends!(
    a_client_without_tokens_reads_its_own_writes,
    a_generated_client_reads_every_state
);

/// PostgreSQL and NATS, with `api` (twice), `relay` and `projector` as processes of
/// their own, and HAProxy sending the writes to one API and the reads to the other.
#[tokio::test]
async fn a_client_without_tokens_reads_its_own_writes_across_replicas() {
    let stack = Stack::start().await;
    let (writer_port, reader_port) = (free_port(), free_port());
    let writer = stack.api(writer_port, &[]);
    let reader = stack.api(reader_port, &[]);
    wait_for_port(writer_port, 60, "the writing API did not start");
    wait_for_port(reader_port, 60, "the reading API did not start");
    let balancer = LoadBalancer::start(writer_port, reader_port);
    plain_client_reads_every_state(
        Api::new(balancer.base.clone()),
        Api::new(balancer.base.clone()),
    )
    .await;
    drop((writer, reader, balancer));
    stack.database.drop_database().await;
}
