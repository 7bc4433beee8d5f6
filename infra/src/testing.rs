//! What tests of this crate and of the crates above it share: where one test's data lives
//! (a fresh PostgreSQL database or SQLite file and a data directory, gone when the test
//! ends however it ends) and commands written straight through the event store.
//!
//! Compiled only with the `testing` feature, which test code turns on.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::event_store::{read_after, RecordedEvent, Scope};
use crate::{Config, Database, EventStore, GlobalPosition};
use serde_json::json;
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

fn data_dir() -> PathBuf {
    let data_dir = std::env::temp_dir().join(format!("expensewise-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).expect("create a test data directory");
    data_dir
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let data_dir = data_dir();
                TestDatabase {
                    url: format!("sqlite://{}", data_dir.join("events.db").display()),
                    data_dir,
                    postgres_admin: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect(
                    "TEST_DATABASE_URL is not set. The PostgreSQL tests need a server: run \
                     ./scripts/test.sh, which starts one (see the README).",
                );
                Self::create_on(&admin).await
            }
        }
    }

    /// A fresh database on the PostgreSQL server that `admin` connects to as an admin.
    pub async fn create_on(admin: &str) -> TestDatabase {
        let name = format!("ew_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        conn.close().await.ok();
        let (base, _) = admin
            .rsplit_once('/')
            .expect("the admin URL has a database name");
        let query = admin
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        TestDatabase {
            url: format!("{base}/{name}{query}"),
            data_dir: data_dir(),
            postgres_admin: Some((admin.to_string(), name)),
        }
    }

    /// The database's name on its PostgreSQL server.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres_admin.as_ref().map(|(_, name)| name.as_str())
    }

    /// Moves the database out (to a restarted server, or to be dropped now), leaving
    /// nothing behind here to drop.
    pub fn take(&mut self) -> TestDatabase {
        std::mem::replace(
            self,
            TestDatabase {
                url: String::new(),
                data_dir: PathBuf::new(),
                postgres_admin: None,
            },
        )
    }

    /// A connection pool straight to the test's database, for looking under the hood.
    pub async fn connect(&self) -> Database {
        let db = Database::connect(&self.url, 5)
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        db
    }

    /// The vault of this database under the master key a server started on it uses
    /// (the one generated in its data directory, unless `DATA_KEY_FILE` is set).
    pub async fn vault(&self, db: &Database) -> crate::Vault {
        crate::Vault::from_config(db.clone(), &self.config().keys)
            .await
            .expect("open the test database's vault")
    }

    /// The receipt files of a server started on this database (its data directory,
    /// unless S3 is configured).
    pub async fn objects(&self) -> crate::object_store::ObjectStore {
        let config = self.config();
        crate::object_store::ObjectStore::open(&config.receipts, config.receipt_retention)
            .await
            .expect("open the test database's receipt files")
    }

    /// An event store on `db` with this database's vault.
    pub async fn event_store(&self, db: &Database) -> crate::EventStore {
        crate::EventStore::new(db.clone(), self.vault(db).await)
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

/// Every event in the store, in global order. The tail hands out only events of finished
/// transactions, which other tests' transactions on the same cluster can hold back for a
/// moment: wait until it has all of them.
pub async fn stored_events(db: &Database) -> Vec<RecordedEvent> {
    let total = crate::on_database!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count the events")
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = read_after(db, GlobalPosition::default(), 100_000)
            .await
            .expect("read the event store");
        if events.len() as i64 >= total || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The ids of [`stored_events`].
pub async fn stored_event_ids(db: &Database) -> Vec<String> {
    stored_events(db)
        .await
        .iter()
        .map(|e| crate::nats::event_id(&e.aggregate_type, &e.aggregate_id, e.sequence).to_string())
        .collect()
}

/// Registers an organization straight through the event store (no HTTP, no password
/// hashing); returns its id.
pub async fn register_directly(store: &EventStore) -> Uuid {
    use expensewise_domain::organization::{NewUser, OrganizationCommand};
    let org = Uuid::new_v4();
    let command = OrganizationCommand::RegisterOrganization {
        name: "Acme".into(),
        default_currency: expensewise_domain::Currency::parse("EUR").expect("EUR"),
        admin: NewUser {
            user_id: Uuid::new_v4(),
            name: "Ada".into(),
            email: format!("{org}@acme.test"),
        },
        at: chrono::Utc::now(),
    };
    store
        .execute::<expensewise_domain::Organization>(
            &Scope::none(),
            &org.to_string(),
            command,
            &event_metadata(org, None),
        )
        .await
        .expect("register an organization");
    org
}

/// Metadata for a command a test issues straight through the event store.
pub fn event_metadata(
    organization_id: Uuid,
    actor_id: Option<Uuid>,
) -> expensewise_domain::EventMetadata {
    let id = Uuid::new_v4();
    expensewise_domain::EventMetadata {
        organization_id,
        actor_id,
        occurred_at: chrono::Utc::now(),
        correlation_id: id,
        causation_id: id,
        request_id: None,
        traceparent: None,
    }
}

/// One event row written as an older release stored it, bypassing the event store (and
/// its upcasters): the way to put a legacy version into a test database.
pub struct StoredRow<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
}

pub async fn store_row(db: &Database, row: StoredRow<'_>) {
    // PostgreSQL stores payloads and metadata as json, SQLite as text.
    let insert = match db {
        Database::Postgres(_) => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, CAST($6 AS json), CAST($7 AS json))",
        Database::Sqlite(_) => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    };
    crate::on_writer!(db, |pool| {
        sqlx::query(insert)
            .bind(row.aggregate_type)
            .bind(&row.aggregate_id)
            .bind(row.sequence)
            .bind(row.event_type)
            .bind(row.event_version)
            .bind(row.payload.to_string())
            .bind(row.metadata.to_string())
            .execute(pool)
            .await
            .expect("store a legacy event row");
    });
}

/// Writes an `OrganizationRegistered` of version 1.0 (before organizations had a default
/// currency) straight into the event store, as it was stored then; returns the
/// organization's id.
pub async fn store_v1_registration(db: &Database) -> Uuid {
    let org = Uuid::new_v4();
    let payload = json!({"OrganizationRegistered": {
        "name": "Old Corp",
        "admin_user_id": Uuid::new_v4(),
        "admin_name": "Ada",
        "admin_email": "ada@old.test",
        "admin_password_hash": "$argon2id$old",
        "registered_at": "2024-05-01T10:00:00Z"
    }});
    let row = StoredRow {
        aggregate_type: "organization",
        aggregate_id: org.to_string(),
        sequence: 1,
        event_type: "OrganizationRegistered",
        event_version: "1.0",
        payload,
        metadata: json!({}),
    };
    store_row(db, row).await;
    org
}

/// Writes an organization as releases before the credentials store did (migration 0011):
/// `OrganizationRegistered` 2.0 with the admin's password hash, `UserAdded` 1.0 with the
/// user's (each given as `(user id, hash)`), and both e-mail claims — `ada@old.test` and
/// `bob@old.test`. Returns the organization's id.
pub async fn store_pre_credentials_organization(
    db: &Database,
    admin: (Uuid, String),
    user: (Uuid, String),
) -> Uuid {
    use expensewise_domain::email_claim::legacy_claim_id;
    let org = Uuid::new_v4();
    let rows = [
        (
            "organization",
            org,
            1,
            "OrganizationRegistered",
            "2.0",
            json!({"OrganizationRegistered": {
            "name": "Old Corp", "default_currency": "CHF", "admin_user_id": admin.0,
            "admin_name": "Ada", "admin_email": "ada@old.test",
            "admin_password_hash": admin.1, "registered_at": "2025-05-01T10:00:00Z"}}),
        ),
        (
            "organization",
            org,
            2,
            "UserAdded",
            "1.0",
            json!({"UserAdded": {
            "user_id": user.0, "name": "Bob", "email": "bob@old.test", "role": "approver",
            "password_hash": user.1, "added_at": "2025-05-02T10:00:00Z"}}),
        ),
        (
            "email_claim",
            legacy_claim_id("ada@old.test"),
            1,
            "EmailClaimed",
            "1.0",
            json!({"EmailClaimed": {"email": "ada@old.test", "user_id": admin.0,
                   "organization_id": org, "claimed_at": "2025-05-01T10:00:00Z"}}),
        ),
        (
            "email_claim",
            legacy_claim_id("bob@old.test"),
            1,
            "EmailClaimed",
            "1.0",
            json!({"EmailClaimed": {"email": "bob@old.test", "user_id": user.0,
                   "organization_id": org, "claimed_at": "2025-05-02T10:00:00Z"}}),
        ),
    ];
    for (aggregate_type, id, sequence, event_type, event_version, payload) in rows {
        let row = StoredRow {
            aggregate_type,
            aggregate_id: id.to_string(),
            sequence,
            event_type,
            event_version,
            payload,
            metadata: json!({"organization_id": org, "actor_id": admin.0}),
        };
        store_row(db, row).await;
    }
    org
}

/// Runs each listed scenario once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::testing::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::testing::Backend::Sqlite).await
                }
            )*
        }
    };
}

/// An employee of an organization the store has no events of: commands on expenses
/// need no organization.
pub fn new_employee() -> expensewise_domain::Actor {
    expensewise_domain::Actor {
        user_id: Uuid::new_v4(),
        organization_id: Uuid::new_v4(),
        role: expensewise_domain::Role::Employee,
    }
}

/// `actor` acting now, on whatever version there is.
pub fn acting_now(actor: expensewise_domain::Actor) -> expensewise_domain::expense::Context {
    expensewise_domain::expense::Context {
        actor,
        at: chrono::Utc::now(),
        expected_version: None,
    }
}

/// The command recording a draft expense of `amount` EUR at `merchant`, spent today.
pub fn draft_expense(
    actor: expensewise_domain::Actor,
    amount: &str,
    merchant: &str,
) -> expensewise_domain::expense::ExpenseCommand {
    use expensewise_domain::expense::{Assessment, ExpenseCommand, ExpenseDetails, Valuation};
    use expensewise_domain::{Currency, Money};
    let today = chrono::Utc::now().date_naive();
    let money =
        Money::parse(amount, Currency::parse("EUR").expect("EUR")).expect("an amount in euros");
    ExpenseCommand::CreateExpense {
        ctx: acting_now(actor),
        details: ExpenseDetails {
            money,
            merchant: merchant.into(),
            category: "meals".into(),
            spent_on: today,
            description: None,
            mileage: None,
        },
        receipt_id: None,
        today,
        // The test organizations' currency is the euro.
        valuation: Valuation {
            base_amount: Some(money),
            rate: None,
        },
        assessment: Assessment::default(),
    }
}
