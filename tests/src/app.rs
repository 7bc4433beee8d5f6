//! The real server, in this test's process.

use expensewise_api::server;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Api, Backend, S3Server, TestDatabase};

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

/// How a [`TestApp`] is started: `TestApp::builder(backend)`, then what differs from the
/// embedded default, then `start()`.
pub struct TestAppBuilder {
    backend: Backend,
    nats_url: Option<String>,
    extra: Vec<(&'static str, String)>,
    roles: server::Roles,
    port: u16,
}

impl TestAppBuilder {
    /// Events flow through the JetStream server at `nats_url`.
    pub fn nats(mut self, nats_url: &str) -> Self {
        self.nats_url = Some(nats_url.to_string());
        self
    }

    /// Extra configuration variables (later ones win).
    pub fn env(mut self, extra: Vec<(&'static str, String)>) -> Self {
        self.extra.extend(extra);
        self
    }

    /// Receipt files go to the bucket of `s3`.
    pub fn s3(self, s3: &S3Server) -> Self {
        self.env(s3.environment())
    }

    /// Only some of the background roles run beside the API, so that a test can run the
    /// others as processes of their own.
    pub fn roles(mut self, roles: server::Roles) -> Self {
        self.roles = roles;
        self
    }

    /// Listens on this port of 127.0.0.1 (for a `PUBLIC_URL` known before it starts)
    /// instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub async fn start(self) -> TestApp {
        let database = TestDatabase::create(self.backend).await;
        self.start_on(database).await
    }

    /// Starts on a database made elsewhere (on a server of the test's own).
    pub async fn start_on(self, database: TestDatabase) -> TestApp {
        TestApp::launch(database, self.nats_url, self.extra, self.roles, self.port).await
    }
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            nats_url: None,
            extra: Vec::new(),
            roles: server::Roles::ALL,
            port: 0,
        }
    }

    /// The embedded default on `backend`, with every role.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::builder(backend).start().await
    }

    async fn launch(
        database: TestDatabase,
        nats_url: Option<String>,
        extra: Vec<(&'static str, String)>,
        roles: server::Roles,
        port: u16,
    ) -> TestApp {
        let mut vars = extra.clone();
        vars.extend(nats_url.iter().map(|u| ("NATS_URL", u.clone())));
        let app = server::prepare(database.config_with(&vars))
            .await
            .expect("start the application");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
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
        let database = self.database.take();
        let nats_url = self.nats_url.clone();
        let extra = std::mem::take(&mut self.extra);
        Self::launch(database, nats_url, extra, self.roles, 0).await
    }

    /// Like [`TestApp::restart`], with `extra` instead of the variables it was started
    /// with.
    pub async fn restart_with(mut self, extra: Vec<(&'static str, String)>) -> TestApp {
        self.stop().await;
        let database = self.database.take();
        let nats_url = self.nats_url.clone();
        Self::launch(database, nats_url, extra, self.roles, 0).await
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

    /// Stops the server and hands over its database, kept, for what runs after it.
    pub async fn shut_down(mut self) -> TestDatabase {
        self.stop().await;
        self.database.take()
    }

    pub async fn finish(mut self) {
        self.stop().await;
        let database = self.database.take();
        database.drop_database().await;
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}
