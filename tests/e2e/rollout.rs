//! A rolling restart behind a real load balancer loses no request: each API replica,
//! stopped as an orchestrator stops a pod (SIGTERM), first fails its readiness while it
//! still serves (`SHUTDOWN_DRAIN`), then finishes what it holds and exits; it is started
//! again and the next one follows, while clients keep writing and reading through the
//! balancer, and a migration adds columns between the rounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use expensewise_tests::{
    expense_body, free_port, wait_for_port, Api, LoadBalancer, Process, Stack,
};
use reqwest::StatusCode;

const CLIENTS: usize = 4;

#[derive(Default)]
struct Tally {
    sent: usize,
    failed: Vec<String>,
}

/// Creates an expense, then reads it back, until told to stop.
async fn client(api: Api, token: String, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        tally.sent += 1;
        let created = api
            .client
            .post(format!("{}/v1/expenses", api.base))
            .bearer_auth(&token)
            .json(&expense_body())
            .send()
            .await;
        let id = match created {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                body["id"].as_str().unwrap_or_default().to_string()
            }
            Ok(r) => {
                tally.failed.push(format!("create: {}", r.status()));
                continue;
            }
            Err(e) => {
                tally.failed.push(format!("create: {e}"));
                continue;
            }
        };
        tally.sent += 1;
        match api
            .client
            .get(format!("{}/v1/expenses/{id}", api.base))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(r) if r.status() == StatusCode::OK => {}
            Ok(r) => tally.failed.push(format!("read {id}: {}", r.status())),
            Err(e) => tally.failed.push(format!("read {id}: {e}")),
        }
    }
    tally
}

async fn ready(port: u16) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/ready"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_behind_a_load_balancer_loses_no_request() {
    let stack = Stack::start().await;
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Process> = ports
        .iter()
        .map(|port| stack.api(*port, &[("SHUTDOWN_DRAIN", "1")]))
        .collect();
    for port in ports {
        wait_for_port(port, 60, "an API replica did not start");
    }
    let balancer = LoadBalancer::spread(&ports);
    let api = Api::new(balancer.base.clone());
    let token = api.register("Acme", "ada@acme.test").await.token;

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let api = Api::new(balancer.base.clone());
            tokio::spawn(client(api, token.clone(), stop.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Twice round: each replica is restarted twice.
    for (step, n) in [0, 1, 0, 1].into_iter().enumerate() {
        let (replica, port) = (&mut replicas[n], ports[n]);
        replica.terminate();
        let exited = tokio::task::block_in_place(|| replica.wait_for_exit(Duration::from_secs(40)))
            .expect("the replica exits after SIGTERM");
        assert!(exited.success(), "exit status {exited}");
        replica.start_again();
        wait_for_port(port, 60, "the replica did not start again");
        while !ready(port).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The balancer takes it back after two passing checks, 200 ms apart.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if step == 1 {
            // Between the rounds, a migration's expand step under load: a new nullable
            // column on the hottest table of writes and of reads. Running replicas,
            // which do not know it, go on.
            let db = stack.database.connect().await;
            expensewise_infra::on_database!(&db, |pool| {
                for table in ["events", "rm_expenses"] {
                    sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN rollout_note text"))
                        .execute(pool)
                        .await
                        .unwrap();
                }
            });
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    let mut failed = Vec::new();
    for tally in clients {
        let tally = tally.await.unwrap();
        sent += tally.sent;
        failed.extend(tally.failed);
    }
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    assert!(
        sent > 100,
        "the clients kept sending through the restarts ({sent})"
    );
    drop((replicas, balancer));
    stack.database.drop_database().await;
}
