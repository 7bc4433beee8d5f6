//! The test harness cleans up after a test that fails: its database and its files go
//! even when the test panics before it would have removed them.

use expensewise_tests::{Backend, TestApp};

#[test]
fn a_failing_test_leaves_no_database_and_no_files_behind() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let (seen, told) = std::sync::mpsc::channel();
        let failed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let app = TestApp::spawn(backend).await;
                app.register("Acme", "ada@acme.test").await;
                seen.send((app.database.url.clone(), app.database.data_dir.clone()))
                    .unwrap();
                panic!("a deliberate failure, before the test could clean up");
            })
        })
        .join();
        assert!(failed.is_err(), "the test failed");
        let (url, data_dir) = told.recv().unwrap();
        assert!(!data_dir.exists(), "{} is left", data_dir.display());
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
