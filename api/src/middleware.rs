//! Cross-cutting request handling: optimistic commands, idempotent POSTs, problem+json for
//! every error, and request metrics.

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use expensewise_infra::event_store::Scope;
use expensewise_infra::idempotency::{Begin, StoredResponse};
use sha2::{Digest, Sha256};

use crate::error::{problem_body, problem_response, ApiError, PROBLEM_JSON};
use crate::state::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Commands are decided on the caller's organization (and the aggregate) as this process
/// last saw it, without asking the database first: the append itself checks that both are
/// still current (see `event_store::Scope`). What no append confirmed is checked when the
/// handler is done; a request found to have decided on stale state has committed nothing
/// and runs once more, reading everything afresh. Reads, and uploads (streamed, so they
/// cannot run twice), always read afresh.
pub async fn optimistic(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() || is_multipart(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let limit = app.config.limits.json_body;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return ApiError::payload_too_large(limit).into_response();
    };
    // The handler reaches the scope through its `Optimistic` extractor; the run again
    // below gets none.
    let scope = Scope::optimistic();
    let mut first_parts = parts.clone();
    first_parts.extensions.insert(scope.clone());
    let first = next
        .clone()
        .run(Request::from_parts(first_parts, Body::from(bytes.clone())))
        .await;
    match app.store.settle(scope).await {
        Ok(true) => first,
        Ok(false) => {
            metrics::counter!("expensewise_requests_run_again_total").increment(1);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => ApiError::internal(anyhow::Error::new(e).context("checking a finished request"))
            .into_response(),
    }
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// Response headers worth replaying; the rest are per-response (dates, request ids).
const REPLAYED_HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "etag",
    "location",
    "x-consistency-token",
    "x-export-batch",
    "x-export-count",
    "x-export-remaining",
    "x-export-left-out",
];

/// POSTs with an `Idempotency-Key`: the first response is kept, and a retry with the same
/// key and body (by the same user, within 24 h) gets it again without running anything.
/// Failed requests are not kept, so a retry after a fix can succeed.
pub async fn idempotency(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    // Uploads are streamed, never held in memory; their handler makes retries with a key
    // name the same receipt instead.
    if is_multipart(&req) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    // Keys are per user (or personal access token); unauthenticated requests
    // (registration) share one scope, where random keys do not collide.
    let (mut parts, body) = req.into_parts();
    let scope = match crate::auth::request_caller(&app, &mut parts).await {
        Ok(caller) => caller
            .map(|c| c.key().to_string())
            .unwrap_or_else(|| "anonymous".to_string()),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let limit = app.config.limits.json_body;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return ApiError::payload_too_large(limit).into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = format!("{:x}", hasher.finalize());

    match app.ledger.begin(&scope, &key, &request_hash).await {
        Err(e) => return ApiError::internal(e).into_response(),
        Ok(Begin::Mismatch) => {
            return ApiError::invalid_field(
                "Idempotency-Key",
                "was already used for a different request",
            )
            .into_response()
        }
        Ok(Begin::InFlight) => {
            return ApiError::conflict("a request with this Idempotency-Key is still in progress")
                .into_response()
        }
        Ok(Begin::Replay(stored)) => return replay(stored),
        Ok(Begin::Proceed) => {}
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        if let Err(e) = app.ledger.release(&scope, &key).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release an idempotency key"
            );
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal(anyhow::anyhow!("could not buffer a response")).into_response();
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Err(e) = app.ledger.complete(&scope, &key, &stored).await {
        tracing::error!(
            error = format!("{e:#}"),
            "could not keep an idempotent response"
        );
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Errors produced outside our handlers (unknown routes, wrong methods, body limits,
/// panics) come as plain text; rewrite them as problem+json, keeping their headers.
pub async fn problem_json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // Problems pass as they are, and so do deliberate JSON answers such as readiness's
    // 503 with its checks, and the console's error pages; what is left are the
    // framework's plain-text rejections.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"application/json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let server_error = status.is_server_error();
    let text = to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !server_error && !t.trim().is_empty() && !t.trim_start().starts_with('<'))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
    let slug = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    let mut rewritten = problem_response(status, &problem_body(status, slug, text, None));
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// Counts every request and times it, labelled by method, route template (never the raw
/// path: ids would make a series per resource) and status code.
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status_code", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
