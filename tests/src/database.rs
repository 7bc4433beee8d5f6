//! Where one test's data lives: a fresh PostgreSQL database or SQLite file, and a data
//! directory, gone when the test ends however it ends.

use std::collections::HashMap;
use std::path::PathBuf;

use expensewise_infra::{Config, Database};
use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where one test's data lives; it outlives server restarts within the test.
pub struct TestDatabase {
    pub url: String,
    pub data_dir: PathBuf,
    postgres_admin: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        let data_dir = std::env::temp_dir().join(format!("expensewise-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).expect("create a test data directory");
        match backend {
            Backend::Sqlite => TestDatabase {
                url: format!("sqlite://{}", data_dir.join("events.db").display()),
                data_dir,
                postgres_admin: None,
            },
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect(
                    "TEST_DATABASE_URL is not set. The PostgreSQL tests need a server: run \
                     ./scripts/test.sh, which starts one (see the README).",
                );
                let name = format!("ew_test_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot reach PostgreSQL at TEST_DATABASE_URL: {e}")
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                conn.close().await.ok();
                let (base, _) = admin
                    .rsplit_once('/')
                    .expect("TEST_DATABASE_URL has a database name");
                let query = admin
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                TestDatabase {
                    url: format!("{base}/{name}{query}"),
                    data_dir,
                    postgres_admin: Some((admin, name)),
                }
            }
        }
    }

    /// What is left where a database was moved out: nothing to drop.
    pub(crate) fn none() -> TestDatabase {
        TestDatabase {
            url: String::new(),
            data_dir: PathBuf::new(),
            postgres_admin: None,
        }
    }

    /// A connection pool straight to the test's database, for looking under the hood.
    pub async fn connect(&self) -> Database {
        let db = Database::connect(&self.url, 5)
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        db
    }

    pub fn config(&self) -> Config {
        self.config_with(&[])
    }

    /// The variables every test server and process runs with (a process's own `PORT`
    /// or log level can be appended: later values win).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("APP_ENV", "test".to_string()),
            ("HOST", "127.0.0.1".to_string()),
            ("PORT", "0".to_string()),
            ("DATABASE_URL", self.url.clone()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            (
                "JWT_SECRET",
                "test-secret-that-is-long-enough-0123456789".to_string(),
            ),
            ("LOG_LEVEL", "warn".to_string()),
            // Tests drive thousands of requests as few users; the limits have their own
            // tests, which set them.
            ("RATE_LIMIT_MAX", "100000000".to_string()),
            ("AUTH_RATE_LIMIT_MAX", "100000000".to_string()),
        ]
    }

    /// The test configuration with some variables added or replaced.
    pub fn config_with(&self, extra: &[(&str, String)]) -> Config {
        let mut vars: HashMap<&str, String> = self.environment().into_iter().collect();
        vars.extend(extra.iter().cloned());
        Config::from_lookup(|k| vars.get(k).cloned()).expect("a valid test configuration")
    }

    pub async fn drop_database(mut self) {
        if let Some((admin, name)) = self.postgres_admin.take() {
            drop_postgres_database(&admin, &name).await;
        }
        self.remove_data_dir();
    }

    fn remove_data_dir(&mut self) {
        let dir = std::mem::take(&mut self.data_dir);
        if !dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn drop_postgres_database(admin: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// A test that fails (panics) before `finish` or `drop_database` still leaves no
/// database and no files behind: they go as the test unwinds.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres_admin.take() {
            // Drop may run inside the test's runtime, which cannot be blocked on: the
            // statement runs on a thread of its own, with a runtime of its own.
            let dropped = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(drop_postgres_database(&admin, &name));
                }
            })
            .join();
            if dropped.is_err() {
                eprintln!("dropping a test database failed");
            }
        }
        self.remove_data_dir();
    }
}
