//! The test harness cleans up after a test that fails: its database, its files and the
//! processes it started go even when the test panics before it would have removed them.

use expensewise_tests::{Backend, NatsServer, Process, TestApp};

/// Whether a process of this id still runs (a zombie, reaped or not, does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn a_failing_test_leaves_no_database_no_files_and_no_process_behind() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let (seen, told) = std::sync::mpsc::channel();
        let failed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let nats = NatsServer::start();
                let app = TestApp::builder(backend).nats(&nats.url).start().await;
                app.register("Acme", "ada@acme.test").await;
                let mut env = app.database.environment();
                env.push(("NATS_URL", nats.url.clone()));
                let relay =
                    Process::start(&["relay"], &env, app.database.data_dir.join("relay.log"));
                let pids = [nats.pid().unwrap(), relay.pid().unwrap()];
                seen.send((
                    app.database.url.clone(),
                    app.database.data_dir.clone(),
                    pids,
                ))
                .unwrap();
                panic!("a deliberate failure, before the test could clean up");
            })
        })
        .join();
        assert!(failed.is_err(), "the test failed");
        let (url, data_dir, pids) = told.recv().unwrap();
        assert!(!data_dir.exists(), "{} is left", data_dir.display());
        for pid in pids {
            assert!(!running(pid), "process {pid} is left");
        }
        if let Backend::Postgres = backend {
            let admin = std::env::var("TEST_DATABASE_URL").unwrap();
            let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let left: i64 = runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            });
            assert_eq!(left, 0, "database {name} is left");
        }
    }
}
