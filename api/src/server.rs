//! Assembling and running the HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::Router;
use expensewise_infra::audit_log::CheckpointArchive;
use expensewise_infra::config::PPOCR_FILES;
use expensewise_infra::consumer::{self, Delivery, Feed, Handler};
use expensewise_infra::mail::Mailer;
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{nats, telemetry, Config, Database, Vault};
use expensewise_projections::runner::Source;
use expensewise_projections::status::read_models;
use expensewise_projections::Projector;
use expensewise_workers::email::EmailWorker;
use expensewise_workers::notary::Notary;
use expensewise_workers::ocr::{OcrEngine, Ocrs, PaddleOcr, PdfTools, ReceiptReader, Tesseract};
use expensewise_workers::receipts::{OcrWorker, ReceiptExpenses, LOOKS_WITHIN};
use expensewise_workers::webhooks::WebhookSender;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::Tokens;
use crate::error::ApiError;
use crate::middleware;
use crate::openapi;
use crate::rate_limit::rate_limit;
use crate::state::{App, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Connects to the database, applies migrations, and builds the application.
pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
    expensewise_infra::metrics::install();
    let (pool_size, _) = config.database.connections();
    let db = Database::connect(&config.database.url, pool_size).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let objects = ObjectStore::open(&config.receipts, config.receipt_retention).await?;
    let mailer = Mailer::new(&config.mail, &config.data_dir)?;
    let nats = match &config.stream.nats_url {
        Some(url) => Some(nats::connect(url).await?.client()),
        None => None,
    };
    let secret = match &config.auth.jwt_secret {
        Some(secret) => secret.clone(),
        None => expensewise_infra::config::local_secret(&config.data_dir)?,
    };
    let tokens = Tokens::new(
        &secret,
        config.auth.jwt_previous_secret.as_ref(),
        config.auth.jwt_expires_in,
    );
    let audit_signer = expensewise_infra::audit_log::signing_key(&config.audit)?;
    App::new(
        config,
        tokens,
        (db, vault),
        objects,
        mailer,
        nats,
        audit_signer,
    )
}

/// The whole HTTP surface: the API, its OpenAPI document and Swagger UI.
pub fn router(app: AppState) -> Router {
    let (api, mut document) = openapi::router().split_for_parts();
    openapi::complete(&mut document);
    let body_limit = app.config.limits.json_body;
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .nest("/app", crate::console::router())
        .route("/app/", axum::routing::get(|| async { axum::response::Redirect::permanent("/app") }))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::optimistic))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::idempotency))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(middleware::problem_json_errors))
        .layer(axum::middleware::from_fn_with_state(app.clone(), rate_limit))
        .layer(axum::middleware::from_fn(crate::console::session))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(axum::middleware::from_fn(middleware::http_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let span = tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id,
                trace_id = tracing::field::Empty);
            let traceparent = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
            telemetry::continue_trace(&span, traceparent);
            span
        })
        // One line per request: the access log operators expect, carrying the trace id.
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(tower_http::LatencyUnit::Millis)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(app)
}

/// What a process without the API serves: its probes and its metrics.
pub fn probes(app: AppState, roles: Roles, ocr_engine: Option<String>) -> Router {
    use crate::routes::service;
    let uses = service::Uses {
        object_store: roles.ocr,
        smtp: roles.email,
        ocr_engine,
    };
    Router::new()
        .route("/health", axum::routing::get(service::health))
        .route("/ready", axum::routing::get(service::ready))
        .route("/metrics", axum::routing::get(service::metrics))
        .layer(axum::Extension(uses))
        .with_state(app)
}

/// What a process runs besides (or instead of) the HTTP API.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Publish committed events to JetStream (only with `NATS_URL`).
    pub relay: bool,
    /// Build the read models.
    pub projector: bool,
    /// Read receipts (OCR) and turn scanned ones into draft expenses.
    pub ocr: bool,
    /// Send mail about submitted, decided and unreadable things.
    pub email: bool,
    /// Extend the audit log and sign its checkpoints.
    pub notary: bool,
    /// Send webhooks.
    pub webhooks: bool,
}

impl Roles {
    /// Everything: what `serve` runs beside the API.
    pub const ALL: Roles = Roles {
        relay: true,
        projector: true,
        ocr: true,
        email: true,
        notary: true,
        webhooks: true,
    };

    /// Nothing: the API alone.
    pub const NONE: Roles = Roles {
        relay: false,
        projector: false,
        ocr: false,
        email: false,
        notary: false,
        webhooks: false,
    };
}

/// The relay and projectors of a process, stopped together.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// With the OCR role: the engine that reads receipts, or why none can.
    pub ocr_engine: Option<String>,
}

impl Background {
    pub async fn start(app: &AppState, roles: Roles) -> anyhow::Result<Background> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut ocr_engine = None;
        let jetstream = match &app.config.stream.nats_url {
            Some(url) if roles.relay || roles.projector => Some(nats::connect(url).await?),
            _ => None,
        };
        if let (true, Some(js)) = (roles.relay, &jetstream) {
            let relay = nats::run_relay(app.store.follow(), js.clone(), stopped.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = relay.await {
                    tracing::error!(error = format!("{e:#}"), "the relay stopped");
                }
            }));
        }
        if roles.projector {
            // Projectors apply events read from the store in any case; messages only tell
            // them how far to go. In a process that runs the relay too (`serve`), they
            // share its tail of the store, woken by appends here and by notifications of
            // appends elsewhere, as on the embedded default: fetching, parsing and
            // acknowledging every message once per read model would be work for nothing.
            // A projector process of its own follows JetStream's messages.
            let source = match &jetstream {
                Some(js) if !roles.relay => Source::JetStream(Box::new(js.clone())),
                _ => Source::Store,
            };
            let projector = Projector::new(app.store.follow(), source);
            for model in read_models() {
                tasks.push(projector.spawn(model.live, stopped.clone()));
            }
        }
        if roles.notary {
            let notary = Notary {
                follow: app.store.follow(),
                signer: app.audit_signer.clone(),
                archive: CheckpointArchive::open(&app.config.audit).await?,
            };
            tasks.push(tokio::spawn(notary.run(stopped.clone())));
        }
        if roles.webhooks {
            let sender = WebhookSender {
                store: app.store.clone(),
                mailer: app.mailer.clone(),
                settings: app.config.webhooks.clone(),
                checkpoints: Arc::default(),
                queued: Arc::default(),
            };
            tasks.push(tokio::spawn(
                sender.run(app.store.follow(), stopped.clone()),
            ));
        }
        if roles.ocr || roles.email {
            let feed = match &app.config.stream.nats_url {
                Some(url) => Feed::JetStream(
                    Box::new(nats::connect(url).await?),
                    app.store.vault().clone(),
                ),
                None => Feed::Store(app.store.follow()),
            };
            let mut handlers: Vec<(Arc<dyn Handler>, Delivery)> = Vec::new();
            if roles.ocr {
                let engine = choose_ocr_engine(&app.config)?;
                ocr_engine = Some(match engine.check() {
                    Ok(version) => version,
                    Err(e) => {
                        tracing::warn!(
                            "{e}: receipts are stored but not read. To read them, install \
                             Tesseract (Debian/Ubuntu: sudo apt-get install tesseract-ocr \
                             tesseract-ocr-eng tesseract-ocr-deu poppler-utils) and restart, or \
                             fetch the PP-OCR models, no system package needed \
                             (./scripts/ppocr-models.sh) and restart"
                        );
                        format!("none ({e}): install tesseract-ocr, or run scripts/ppocr-models.sh")
                    }
                });
                let ocr = OcrWorker {
                    store: app.store.clone(),
                    objects: app.objects.clone(),
                    reader: ReceiptReader {
                        engine,
                        pdf: PdfTools {
                            max_pages: app.config.ocr.pdf_max_pages,
                            ..PdfTools::default()
                        },
                        time_limit: app.config.ocr.time_limit,
                        looks_within: LOOKS_WITHIN,
                    },
                };
                let expenses = ReceiptExpenses {
                    store: app.store.clone(),
                };
                handlers.push((Arc::new(ocr), Delivery::default()));
                handlers.push((Arc::new(expenses), Delivery::default()));
                tasks.push(tokio::spawn(sweep_retentions(app.clone(), stopped.clone())));
            }
            if roles.email {
                let email = EmailWorker {
                    store: app.store.clone(),
                    db: app.db.clone(),
                    mailer: app.mailer.clone(),
                    public_url: app.config.http.public_url.clone(),
                };
                tracing::info!(mail = app.mailer.kind(), "email worker running");
                // A mail server can be down for a while: keep trying for about a quarter
                // of an hour before giving up on a mail.
                let patient = Delivery {
                    max_deliver: 10,
                    first_retry: Duration::from_secs(2),
                    max_retry: Duration::from_secs(300),
                    ..Delivery::default()
                };
                let email = Arc::new(email);
                tasks.push(tokio::spawn(remind_approvers(
                    email.clone(),
                    app.config.mail.remind_after,
                    stopped.clone(),
                )));
                handlers.push((email, patient));
            }
            for (handler, delivery) in handlers {
                tasks.push(tokio::spawn(consumer::run(
                    feed.clone(),
                    handler,
                    delivery,
                    stopped.clone(),
                )));
            }
        }
        Ok(Background {
            stop,
            tasks,
            ocr_engine,
        })
    }

    /// Lets each task finish what it is doing (a batch commits or rolls back whole).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a background task failed");
            }
        }
    }
}

/// Mails the approvers of steps awaited longer than `after` (workers::email::remind),
/// looking a few times per period and at least every minute. Every replica may look: a
/// reminder is sent once whoever sends it.
async fn remind_approvers(
    worker: Arc<EmailWorker>,
    after: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let every = (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    while !*stop.borrow() {
        match expensewise_workers::email::remind(&worker, after).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "approval reminders mailed"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "approval reminders failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// How often the sweeper looks for retentions that are over.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Ends retentions as they run out (docs/personal-data.md), beside the receipt workers:
/// every replica may sweep, as ending one twice changes nothing.
async fn sweep_retentions(app: AppState, mut stop: watch::Receiver<bool>) {
    use expensewise_application::accounts::erasure;
    while !*stop.borrow() {
        match erasure::sweep(&app.store, &app.objects, chrono::Utc::now()).await {
            Ok(swept) if swept.ended > 0 || swept.held > 0 => {
                tracing::info!(ended = swept.ended, held = swept.held, "retentions swept")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping retentions failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// ocrs where its models are configured, else PP-OCR where its models are, else
/// Tesseract.
fn choose_ocr_engine(config: &Config) -> anyhow::Result<Box<dyn OcrEngine>> {
    let engine: Box<dyn OcrEngine> = match (&config.ocr.ocrs_models, &config.ocr.ppocr_models) {
        (Some(models), _) => Box::new(
            Ocrs::load(&models.detection, Some(&models.recognition))
                .context("OCRS_DETECTION_MODEL / OCRS_RECOGNITION_MODEL")?,
        ),
        (None, Some(folder)) => {
            let [detection, recognition, dictionary] = PPOCR_FILES.map(|file| folder.join(file));
            Box::new(
                PaddleOcr::load(&detection, &recognition, &dictionary).context("PPOCR_MODELS")?,
            )
        }
        (None, None) => Box::new(Tesseract::with_languages(
            &config.ocr.tesseract_library,
            &config.ocr.tesseract_languages,
        )),
    };
    tracing::info!(engine = engine.name(), "OCR engine chosen");
    Ok(engine)
}

/// Serves the API (and runs `roles` beside it) until `shutdown` resolves, then lets
/// in-flight requests and batches finish.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    roles: Roles,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let purge = tokio::spawn(purge_idempotency_keys(app.clone()));
    let replica_watch = app
        .replica
        .as_ref()
        .map(|replica| tokio::spawn(replica.source.clone().watch(app.db.clone())));
    let background = Background::start(&app, roles).await?;
    // The API itself stores and serves receipt files.
    let uses = crate::routes::service::Uses {
        object_store: true,
        smtp: roles.email,
        ocr_engine: background.ocr_engine.clone(),
    };
    let service = router(app.clone())
        .layer(axum::Extension(uses))
        .into_make_service_with_connect_info::<SocketAddr>();
    let (signalled, shutdown_began) = tokio::sync::oneshot::channel::<()>();
    let draining = app.clone();
    let shutdown = async move {
        shutdown.await;
        let drain = draining.config.http.drain;
        if !drain.is_zero() {
            draining
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                ?drain,
                "draining: readiness fails while requests are still served"
            );
            tokio::time::sleep(drain).await;
        }
        let _ = signalled.send(());
    };
    let serving = async {
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed");
        purge.abort();
        if let Some(watch) = replica_watch {
            watch.abort();
        }
        background.stop().await;
        app.db.close().await;
        if let Some(replica) = &app.replica {
            replica.source.database().close().await;
        }
        result
    };
    // Orchestrators kill what does not stop in time; better to stop ourselves, saying so.
    let deadline = async {
        if shutdown_began.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = serving => result,
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "shutdown took too long: exiting with work unfinished");
            Ok(())
        }
    }
}

/// How long in-flight requests, batches and messages get after a shutdown signal. The
/// Kubernetes grace period is set longer than this.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

async fn purge_idempotency_keys(app: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match app.ledger.purge_expired().await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "expired idempotency keys removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "purging idempotency keys failed"),
        }
    }
}
