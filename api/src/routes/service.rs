//! Liveness and readiness, for load balancers and orchestrators.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    pub status: String,
    pub timestamp: DateTime<Utc>,
    /// Seconds since the process started.
    pub uptime: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check passed, else `not_ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// One entry per dependency this process uses: `ok`, or what is wrong; and
    /// `shutdown: draining` once SIGTERM came, while requests are still served.
    pub checks: BTreeMap<String, String>,
    /// In a process that reads receipts: the OCR engine and its version (e.g.
    /// `tesseract 5.3.0`), or `none (…)` with what to install. Receipts are stored
    /// either way, so it does not decide readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_engine: Option<String>,
    /// With a read replica (`DATABASE_READ_URL`): how far behind it is and where queries
    /// read. The primary answers for a replica that lags or fails, so it does not decide
    /// readiness either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_replica: Option<ReadReplicaView>,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadReplicaView {
    /// `ok`; `lagging` (more than `READ_REPLICA_MAX_LAG` behind), `unreachable`,
    /// `not_replaying` (promoted, or not a replica) or `unknown` (not measured yet).
    #[schema(example = "ok")]
    pub state: String,
    /// How far behind the primary it was when last measured (every 200 ms); absent when
    /// unknown.
    #[schema(example = 0.0)]
    pub lag_seconds: Option<f64>,
    /// `READ_REPLICA_MAX_LAG`, in seconds.
    pub max_lag_seconds: f64,
    /// `replica` or `primary`: where queries read now.
    #[schema(example = "replica")]
    pub reads_from: String,
}

impl ReadReplicaView {
    fn new(replica: &expensewise_infra::replica::ReadReplica) -> Self {
        use expensewise_infra::replica::Standing;
        let max_lag = replica.max_lag();
        let (state, lag) = match replica.standing() {
            Standing::Behind(lag) if lag <= max_lag => ("ok", Some(lag)),
            Standing::Behind(lag) => ("lagging", Some(lag)),
            Standing::Unreachable => ("unreachable", None),
            Standing::NotReplaying => ("not_replaying", None),
            Standing::Unknown => ("unknown", None),
        };
        Self {
            state: state.into(),
            lag_seconds: lag.map(|l| l.as_secs_f64()),
            max_lag_seconds: max_lag.as_secs_f64(),
            reads_from: if replica.usable() {
                "replica"
            } else {
                "primary"
            }
            .into(),
        }
    }
}

/// Liveness: the process is up
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn health(State(app): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "healthy".into(),
        timestamp: Utc::now(),
        uptime: app.started_at.elapsed().as_secs_f64(),
    })
}

/// The optional dependencies a process's readiness depends on: those its roles use. A
/// relay is not unready because the mail server is down.
#[derive(Debug, Clone)]
pub struct Uses {
    pub object_store: bool,
    pub smtp: bool,
    /// The OCR engine of a process that reads receipts (see [`Readiness::ocr_engine`]).
    pub ocr_engine: Option<String>,
}

/// Readiness: every dependency answers
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A dependency is failing, or the process is draining before it stops (`\"shutdown\": \"draining\"`, SHUTDOWN_DRAIN)", body = Readiness),
    )
)]
pub async fn ready(
    State(app): State<AppState>,
    uses: Option<Extension<Uses>>,
) -> impl IntoResponse {
    let uses = uses.map_or(
        Uses {
            object_store: true,
            smtp: true,
            ocr_engine: None,
        },
        |Extension(uses)| uses,
    );
    let mut checks = BTreeMap::new();
    let database = match app.db.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "readiness: database check failed");
            "unreachable".to_string()
        }
    };
    checks.insert("database".to_string(), database);
    if uses.object_store {
        let object_store = match app.objects.check().await {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "readiness: object store check failed"
                );
                "unreachable".to_string()
            }
        };
        checks.insert("object_store".to_string(), object_store);
    }
    if let Some(nats) = &app.nats {
        let state = nats.connection_state();
        let nats = if state == async_nats::connection::State::Connected {
            "ok".to_string()
        } else {
            tracing::warn!(?state, "readiness: NATS is not connected");
            "unreachable".to_string()
        };
        checks.insert("nats".to_string(), nats);
    }
    if uses.smtp && app.mailer.kind() == "smtp" {
        let smtp = match app.mailer.check().await {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "readiness: SMTP check failed");
                "unreachable".to_string()
            }
        };
        checks.insert("smtp".to_string(), smtp);
    }
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        checks.insert("shutdown".to_string(), "draining".to_string());
    }
    let ready = checks.values().all(|v| v == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" }.into(),
            checks,
            ocr_engine: uses.ocr_engine,
            read_replica: app
                .replica
                .as_ref()
                .map(|r| ReadReplicaView::new(&r.source)),
            timestamp: Utc::now(),
        }),
    )
}

/// Metrics in the Prometheus text format
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Every series this process records",
               content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        expensewise_infra::metrics::render(),
    )
}
