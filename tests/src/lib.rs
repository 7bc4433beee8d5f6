//! Shared helpers for the end-to-end tests: a real server on a free port, on a fresh
//! PostgreSQL database or a fresh SQLite file, and a small HTTP client around it.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (a server the test command starts). When it
//! is missing or unreachable the PostgreSQL tests fail: they never skip.

use std::collections::HashMap;
use std::path::PathBuf;

use expensewise_api::server;
use expensewise_infra::{Config, Database};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
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

/// The real server, listening on a free port of 127.0.0.1.
pub struct TestApp {
    /// The HTTP API of this server (`app.base`, `app.post(…)`, … through `Deref`).
    pub api: Api,
    /// `NATS_URL` the server was started with, if any.
    pub nats_url: Option<String>,
    pub database: TestDatabase,
    roles: server::Roles,
    extra: Vec<(&'static str, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::start(TestDatabase::create(backend).await, None).await
    }

    /// A server whose events flow through the JetStream server at `nats_url`.
    pub async fn spawn_with_nats(backend: Backend, nats_url: &str) -> TestApp {
        Self::start(
            TestDatabase::create(backend).await,
            Some(nats_url.to_string()),
        )
        .await
    }

    /// A server with extra configuration variables.
    pub async fn spawn_with_env(backend: Backend, extra: Vec<(&'static str, String)>) -> TestApp {
        Self::start_with(TestDatabase::create(backend).await, None, extra).await
    }

    /// A server that keeps receipt files in the bucket of `s3`.
    pub async fn spawn_with_s3(backend: Backend, s3: &S3Server) -> TestApp {
        Self::start_with(TestDatabase::create(backend).await, None, s3.environment()).await
    }

    /// A server running only some of the background roles beside its API, so that a
    /// test can run the others as processes of their own.
    pub async fn spawn_with_roles(
        backend: Backend,
        nats_url: Option<&str>,
        extra: Vec<(&'static str, String)>,
        roles: server::Roles,
    ) -> TestApp {
        let database = TestDatabase::create(backend).await;
        Self::launch(database, nats_url.map(str::to_string), extra, roles).await
    }

    async fn start(database: TestDatabase, nats_url: Option<String>) -> TestApp {
        Self::start_with(database, nats_url, Vec::new()).await
    }

    async fn start_with(
        database: TestDatabase,
        nats_url: Option<String>,
        extra: Vec<(&'static str, String)>,
    ) -> TestApp {
        Self::launch(database, nats_url, extra, server::Roles::ALL).await
    }

    async fn launch(
        database: TestDatabase,
        nats_url: Option<String>,
        extra: Vec<(&'static str, String)>,
        roles: server::Roles,
    ) -> TestApp {
        let mut vars = extra.clone();
        vars.extend(nats_url.iter().map(|u| ("NATS_URL", u.clone())));
        let app = server::prepare(database.config_with(&vars))
            .await
            .expect("start the application");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("a local address"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, app, roles, async {
            let _ = rx.await;
        }));
        TestApp {
            api: Api::new(base),
            nats_url,
            database,
            roles,
            extra,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server (gracefully) and starts a new one on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let database = std::mem::replace(
            &mut self.database,
            TestDatabase {
                url: String::new(),
                data_dir: PathBuf::new(),
                postgres_admin: None,
            },
        );
        let nats_url = self.nats_url.clone();
        let extra = std::mem::take(&mut self.extra);
        Self::launch(database, nats_url, extra, self.roles).await
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stopped cleanly");
        }
    }

    pub async fn finish(mut self) {
        self.stop().await;
        let database = std::mem::replace(
            &mut self.database,
            TestDatabase {
                url: String::new(),
                data_dir: PathBuf::new(),
                postgres_admin: None,
            },
        );
        database.drop_database().await;
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A client of an Expense-Wise HTTP API: the in-process server of a [`TestApp`], or an
/// `expensewise` process a test started.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .expect("GET")
    }

    /// A GET that waits until the read models include the write `consistency` came from.
    pub async fn get_after(&self, path: &str, token: &str, consistency: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .header("x-consistency-token", consistency)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    /// Registers a new organization; returns its admin.
    pub async fn register(&self, organization: &str, email: &str) -> User {
        let response = self
            .post(
                "/v1/auth/register",
                None,
                json!({"organization": organization, "name": "Admin", "email": email, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(response, StatusCode::CREATED).await;
        User::signed_in(&body)
    }

    /// Adds a user with `role` to the admin's organization and signs them in.
    pub async fn add_user(&self, admin: &User, email: &str, role: &str) -> User {
        let response = self
            .post(
                "/v1/users",
                Some(&admin.token),
                json!({"name": role, "email": email, "password": PASSWORD, "role": role}),
            )
            .await;
        expect_status(response, StatusCode::CREATED).await;
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> User {
        let response = self
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        let body = expect_status(response, StatusCode::OK).await;
        User::signed_in(&body)
    }

    /// Creates a draft expense of 42.50 EUR; returns its body.
    pub async fn create_expense(&self, user: &User) -> Value {
        let response = self
            .post("/v1/expenses", Some(&user.token), expense_body())
            .await;
        expect_status(response, StatusCode::CREATED).await
    }
}

/// The consistency token of a command's response.
pub fn consistency(response: &Response) -> String {
    response.headers()["x-consistency-token"]
        .to_str()
        .expect("a textual consistency token")
        .to_string()
}

pub const PASSWORD: &str = "correct horse battery";

pub fn expense_body() -> Value {
    json!({
        "amount": "42.50",
        "currency": "EUR",
        "merchant": "Café Central",
        "category": "meals",
        "spent_on": "2026-01-15",
        "description": "Team lunch"
    })
}

#[derive(Debug, Clone)]
pub struct User {
    pub token: String,
    pub user_id: String,
    pub organization_id: String,
}

impl User {
    /// The user a registration or login response describes.
    fn signed_in(body: &Value) -> User {
        let text = |key: &str| {
            body[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {body}"))
                .to_string()
        };
        User {
            token: text("token"),
            user_id: text("user_id"),
            organization_id: text("organization_id"),
        }
    }
}

/// Asserts the status (showing the body when it is wrong) and returns the JSON body
/// (`null` when there is none).
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("a response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Asserts an RFC 9457 problem response with `status`; returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let problem = expect_status(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem: {problem}"
    );
    assert_eq!(problem["status"], status.as_u16(), "problem: {problem}");
    assert!(
        problem["type"].is_string()
            && problem["title"].is_string()
            && problem["detail"].is_string()
    );
    problem
}

/// Runs each listed scenario once on PostgreSQL and once on SQLite.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::Backend::Sqlite).await
                }
            )*
        }
    };
}

/// Sends all requests at once and returns their statuses, in the order given.
pub async fn send_concurrently(requests: impl Iterator<Item = RequestBuilder>) -> Vec<StatusCode> {
    let handles: Vec<_> = requests.map(|r| tokio::spawn(r.send())).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(
            handle
                .await
                .expect("a request task")
                .expect("a response")
                .status(),
        );
    }
    statuses
}

/// SIGKILLs a child process, if it runs, and reaps it.
fn kill_child(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `port`; `what` has failed to start
/// if nothing does within `seconds`.
pub fn wait_for_port(port: u16, seconds: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A real nats-server with JetStream, on a free port of 127.0.0.1, killed when dropped.
/// The binary comes from `NATS_SERVER_BIN` (the test script installs it) or the PATH.
/// A real S3-compatible server (moto, from PyPI) on a free port, with one bucket, and
/// the `aws` command line (also from PyPI) to look into it as a client that is not ours.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    child: std::process::Child,
}

const S3_KEY_ID: &str = "expensewise-test";
const S3_SECRET: &str = "expensewise-test-secret";

/// A program installed next to the test tools' Python (./scripts/test.sh puts them there).
pub fn test_tool(name: &str) -> PathBuf {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    PathBuf::from(python)
        .parent()
        .map(|dir| dir.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = free_port();
        let binary = test_tool("moto_server");
        let child = std::process::Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. The tests need moto[server]: run ./scripts/test.sh, \
                     which installs it",
                    binary.display()
                )
            });
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "receipts".to_string(),
            child,
        };
        wait_for_port(port, 30, "the S3 server did not start");
        let made = server.aws(&["s3", "mb", &format!("s3://{}", server.bucket)]);
        assert!(made.status.success(), "cannot create the bucket: {made:?}");
        server
    }

    /// What the application needs to use the bucket.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_S3_BUCKET", self.bucket.clone()),
            ("S3_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", S3_KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_string()),
        ]
    }

    /// Runs the `aws` command line against this server.
    pub fn aws(&self, args: &[&str]) -> std::process::Output {
        let binary = test_tool("aws");
        std::process::Command::new(&binary)
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct NatsServer {
    pub url: String,
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("expensewise-nats-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a NATS store directory");
        // Every write reaches the disk before it is acknowledged: a killed server loses
        // nothing the relay was told is stored.
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n",
            dir.join("store").display()
        );
        std::fs::write(dir.join("nats.conf"), config).expect("write the NATS configuration");
        let mut server = NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_string());
        let child = std::process::Command::new(&binary)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("nats.log")).expect("a NATS log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary}: {e}. The tests need nats-server: run ./scripts/test.sh, \
                     which installs it, or set NATS_SERVER_BIN"
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, 10, "nats-server did not start");
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real load balancer (HAProxy, from Debian) on a free port of 127.0.0.1 in front of
/// two API processes, as replicas stand behind an ingress: reads (GET, HEAD) go to one,
/// everything else to the other. The binary comes from `HAPROXY_BIN` (the test script
/// installs it) or the PATH; killed when dropped.
pub struct LoadBalancer {
    pub base: String,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl LoadBalancer {
    pub fn start(writes: u16, reads: u16) -> LoadBalancer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("expensewise-lb-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a load balancer directory");
        let config = format!(
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend api\n  bind 127.0.0.1:{port}\n  acl read method GET HEAD\n  \
             use_backend reads if read\n  default_backend writes\n\
             backend writes\n  server writes 127.0.0.1:{writes}\n\
             backend reads\n  server reads 127.0.0.1:{reads}\n"
        );
        std::fs::write(dir.join("haproxy.cfg"), config).expect("write the HAProxy configuration");
        let binary = std::env::var("HAPROXY_BIN").unwrap_or_else(|_| "haproxy".to_string());
        let child = std::process::Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).expect("a HAProxy log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary}: {e}. The tests need HAProxy: run ./scripts/test.sh, \
                     which installs it, or set HAPROXY_BIN"
                )
            });
        wait_for_port(port, 10, "HAProxy did not start");
        LoadBalancer {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child: Some(child),
        }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real SMTP server (aiosmtpd, `tests/support/smtp_sink.py`) on 127.0.0.1 that
/// requires a login and keeps each mail it accepts as a file.
pub struct SmtpServer {
    pub port: u16,
    folder: PathBuf,
    /// `SMTP_SECURITY` as the product names it: "none", "starttls" or "tls".
    security: &'static str,
    child: Option<std::process::Child>,
}

impl SmtpServer {
    pub const USER: &'static str = "mailer";
    pub const PASSWORD: &'static str = "smtp-password-for-tests";

    /// Plain SMTP.
    pub fn start() -> SmtpServer {
        Self::start_with("none")
    }

    /// `security` "starttls" or "tls": a certificate for 127.0.0.1 from a CA made for this
    /// server, whose certificate is `ca_file()`.
    pub fn start_with(security: &'static str) -> SmtpServer {
        let port = free_port();
        let folder = std::env::temp_dir().join(format!("expensewise-smtp-{}", Uuid::new_v4()));
        let mut server = SmtpServer {
            port,
            folder,
            security,
            child: None,
        };
        server.launch();
        server
    }

    pub fn ca_file(&self) -> PathBuf {
        self.folder.join("ca.pem")
    }

    fn launch(&mut self) {
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py");
        let mut command = std::process::Command::new(&python);
        command
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.folder.join("mails"))
            .args(["--login", Self::USER, Self::PASSWORD]);
        if self.security != "none" {
            command.arg("--tls").arg(self.security).arg(self.ca_file());
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (with aiosmtpd; ./scripts/test.sh installs it): {e}")
            });
        self.child = Some(child);
        wait_for_port(self.port, 15, "the SMTP server did not start");
    }

    /// The product's configuration for this server, trusting its CA.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SMTP_HOST", "127.0.0.1".to_string()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_SECURITY", self.security.to_string()),
            ("SMTP_USER", Self::USER.to_string()),
            ("SMTP_PASSWORD", Self::PASSWORD.to_string()),
            ("PUBLIC_URL", "https://expenses.example.test".to_string()),
        ];
        if self.security != "none" {
            env.push(("SMTP_CA_FILE", self.ca_file().display().to_string()));
        }
        env
    }

    /// Every mail accepted so far, as received (envelope recipients first).
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.folder.join("mails")) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| std::fs::read_to_string(p).expect("a mail file"))
            .collect()
    }

    /// SIGKILL: the server is gone, connections are refused.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts again on the same port, keeping the mails received so far.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The `expensewise` binary of this workspace's debug build (or `EXPENSEWISE_BIN`).
pub fn expensewise_bin() -> PathBuf {
    if let Ok(path) = std::env::var("EXPENSEWISE_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = target.join("debug").join("expensewise");
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p expensewise-api`; ./scripts/test.sh \
         does), or set EXPENSEWISE_BIN",
        path.display()
    );
    path
}

/// An `expensewise` subcommand running as its own process, killed (SIGKILL) when
/// dropped.
pub struct Process {
    child: Option<std::process::Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Process {
    pub fn start(args: &[&str], env: &[(&str, String)], log: PathBuf) -> Process {
        let mut process = Process {
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log,
        };
        process.launch();
        process
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a process log");
        let child = std::process::Command::new(expensewise_bin())
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdout(log.try_clone().expect("a process log"))
            .stderr(log)
            .spawn()
            .expect("start expensewise");
        self.child = Some(child);
    }

    /// SIGKILL, then start the same command again.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// SIGTERM, as an orchestrator stops a pod.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("a running process");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it did not.
    pub fn wait_for_exit(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        let child = self.child.as_mut()?;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("the process status") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

/// Runs an `expensewise` command to its end.
pub async fn expensewise(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    tokio::process::Command::new(expensewise_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .output()
        .await
        .expect("run expensewise")
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every event id in the store, in global order. The tail hands out only events of
/// finished transactions, which other tests' transactions on the same cluster can hold
/// back for a moment: wait until it has all of them.
pub async fn stored_event_ids(db: &Database) -> Vec<String> {
    let total = expensewise_infra::on_database!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count the events")
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = expensewise_infra::event_store::read_after(
            db,
            expensewise_infra::GlobalPosition::default(),
            100_000,
        )
        .await
        .expect("read the event store");
        if events.len() as i64 >= total || std::time::Instant::now() > deadline {
            return events
                .iter()
                .map(|e| {
                    expensewise_infra::nats::event_id(
                        &e.aggregate_type,
                        &e.aggregate_id,
                        e.sequence,
                    )
                    .to_string()
                })
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The stream's messages as nats-py (not our client) sees them.
pub fn stream_messages(nats_url: &str) -> Vec<Value> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/jetstream_messages.py");
    let output = std::process::Command::new(&python)
        .args([script, nats_url, expensewise_infra::nats::STREAM])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with nats-py; ./scripts/test.sh installs it): {e}")
        });
    assert!(
        output.status.success(),
        "nats-py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("nats-py printed JSON")
}

pub async fn wait_for_stream(nats_url: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let messages = stream_messages(nats_url);
        if messages.len() >= count || tokio::time::Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Checks that every read model equals what a rebuild from the event store makes of the
/// events it has read: nothing missing, nothing doubled. Returns how many read models.
pub async fn assert_read_models_equal_a_rebuild(db: &Database) -> usize {
    let models = expensewise_projections::status::read_models();
    for model in &models {
        let verified = expensewise_projections::rebuild::rebuild(
            db,
            model.live.as_ref(),
            model.shadow.as_ref(),
            false,
            &|_| {},
        )
        .await
        .expect("verify the read model");
        assert!(
            verified.identical(),
            "the {} read model equals a rebuild: {verified:?}",
            model.name
        );
    }
    models.len()
}

/// Registers an organization straight through the event store (no HTTP, no password
/// hashing); returns its id.
pub async fn register_directly(store: &expensewise_infra::EventStore) -> Uuid {
    use expensewise_domain::organization::{NewUser, OrganizationCommand, PasswordHash};
    let org = Uuid::new_v4();
    let command = OrganizationCommand::RegisterOrganization {
        name: "Acme".into(),
        default_currency: expensewise_domain::Currency::parse("EUR").expect("EUR"),
        admin: NewUser {
            user_id: Uuid::new_v4(),
            name: "Ada".into(),
            email: format!("{org}@acme.test"),
            password_hash: PasswordHash("$argon2id$test".into()),
        },
        at: chrono::Utc::now(),
    };
    store
        .execute::<expensewise_domain::Organization>(
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

/// Uploads `bytes` as a receipt file named `name`, with extra form fields.
pub async fn upload_receipt(
    app: &TestApp,
    user: &User,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    app.request(Method::POST, "/v1/receipts", Some(&user.token))
        .multipart(form)
        .send()
        .await
        .expect("POST /v1/receipts")
}

/// A valid 1×1 PNG image.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0x0f, 0x00, 0x01,
    0x01, 0x01, 0x00, 0xb1, 0x38, 0xf6, 0x14, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// Draws a receipt image with Pillow (`tests/support/draw_receipt.py`); `spec` is the
/// script's JSON (lines, font, size, rotation, blur, noise, uneven light, format).
pub fn draw_receipt(spec: &Value) -> Vec<u8> {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/draw_receipt.py");
    let output = std::env::temp_dir().join(format!("expensewise-receipt-{}", Uuid::new_v4()));
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(&output)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (with Pillow; ./scripts/test.sh installs it): {e}")
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(spec.to_string().as_bytes())
            .expect("write the receipt spec");
    }
    assert!(
        child.wait().expect("draw a receipt").success(),
        "drawing the receipt failed"
    );
    let bytes = std::fs::read(&output).expect("the drawn receipt");
    let _ = std::fs::remove_file(&output);
    bytes
}

/// Writes an `OrganizationRegistered` of version 1.0 (before organizations had a default
/// currency) straight into the event store, as it was stored then; returns the
/// organization's id.
pub async fn store_v1_registration(db: &Database) -> Uuid {
    let org = Uuid::new_v4();
    let v1 = json!({"OrganizationRegistered": {
        "name": "Old Corp",
        "admin_user_id": Uuid::new_v4(),
        "admin_name": "Ada",
        "admin_email": "ada@old.test",
        "admin_password_hash": "$argon2id$old",
        "registered_at": "2024-05-01T10:00:00Z"
    }})
    .to_string();
    // PostgreSQL stores payloads as json, SQLite as text.
    let payload = match db {
        Database::Postgres(_) => "CAST($2 AS json)",
        Database::Sqlite(_) => "$2",
    };
    let insert = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('organization', $1, 1, 'OrganizationRegistered', '1.0', {payload}, '{{}}')"
    );
    expensewise_infra::on_database!(db, |pool| {
        sqlx::query(&insert)
            .bind(org.to_string())
            .bind(&v1)
            .execute(pool)
            .await
            .expect("store a version 1.0 registration");
    });
    org
}
