//! How failures reach clients: always `application/problem+json` (RFC 9457).
//!
//! Policy: business rejections from the domain map to 4xx by their kind (invalid 422,
//! forbidden 403, not found 404, conflict 409, stale version 412). Anything technical
//! becomes an opaque 500 whose cause chain is logged, never sent.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use expensewise_application::UseCaseError;
use expensewise_domain::policy::{Level, Violation};
use expensewise_domain::{FieldError, IntoRejection, Rejection};
use expensewise_infra::event_store::CommandError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::expenses::ViolationView;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For invalid input: one entry per offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorView>>,
    /// When the organization's policy stops a submission: every rule it breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<ViolationView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorView {
    /// The field as the client named it (`amount`, `user.email`, `body` for the whole body).
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    errors: Option<Vec<FieldError>>,
    violations: Option<Vec<ViolationView>>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// What went wrong, in a sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The fields found invalid, if that is what went wrong.
    pub fn field_errors(&self) -> &[FieldError] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// The policy's findings, when the policy stopped it.
    pub fn violations(&self) -> &[ViolationView] {
        self.violations.as_deref().unwrap_or_default()
    }

    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            errors: None,
            violations: None,
            headers: Vec::new(),
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            errors: Some(errors),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-input", detail)
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// The policy blocks a submission: 409 listing every violation, blocks and warnings.
    pub fn policy_blocks(violations: &[Violation]) -> Self {
        let blocking: Vec<&str> = violations
            .iter()
            .filter(|v| v.level == Level::Block)
            .map(|v| v.rule.as_str())
            .collect();
        Self {
            violations: Some(violations.iter().map(ViolationView::from).collect()),
            ..Self::new(
                StatusCode::CONFLICT,
                "policy-violation",
                format!(
                    "the organization's policy blocks this submission: {}",
                    blocking.join(", ")
                ),
            )
        }
    }

    /// The policy warns and no justification was given: 422 naming `justification`.
    pub fn justification_needed(violations: &[Violation]) -> Self {
        let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
        Self {
            violations: Some(violations.iter().map(ViolationView::from).collect()),
            ..Self::invalid_field(
                "justification",
                format!(
                    "is required: the expense breaks rules of the policy that warn ({})",
                    rules.join(", ")
                ),
            )
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn lost_race() -> Self {
        Self::conflict("another request changed this resource at the same time; reload and retry")
    }

    pub fn stale_version(current: u64) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "stale-version",
            format!("If-Match does not match the current version {current}"),
        )
        .with_header(
            header::ETAG,
            HeaderValue::from_str(&format!("\"{current}\""))
                .unwrap_or(HeaderValue::from_static("\"0\"")),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// What the request needs is on its way (a read model or the store's order catching
    /// up): 503, asking the client to try again in a second.
    pub fn not_yet(detail: impl Into<String>) -> Self {
        Self::unavailable(detail).with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// Another server this request needed (an OpenID issuer) failed.
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "bad-gateway", detail)
    }

    pub fn too_many_requests(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", detail)
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds))
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            detail,
        )
    }

    /// A technical failure: logged with its cause chain, answered without details.
    pub fn internal(err: anyhow::Error) -> Self {
        tracing::error!(error = format!("{err:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The body of a problem response, also used for statuses produced outside handlers.
pub fn problem_body(
    status: StatusCode,
    slug: &str,
    detail: String,
    errors: Option<Vec<FieldError>>,
) -> Problem {
    Problem {
        problem_type: format!("urn:expensewise:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        errors: errors.map(|list| {
            list.into_iter()
                .map(|e| FieldErrorView {
                    field: e.field,
                    message: e.message,
                })
                .collect()
        }),
        violations: None,
    }
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            violations: self.violations,
            ..problem_body(self.status, self.slug, self.detail, self.errors)
        };
        let mut response = problem_response(self.status, &problem);
        response.headers_mut().extend(self.headers);
        response
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Invalid(errors) => Self::invalid(errors),
            Rejection::Forbidden(detail) => Self::forbidden(detail),
            Rejection::NotFound(detail) => Self::not_found(detail),
            Rejection::Conflict(detail) => Self::conflict(detail),
            Rejection::StaleVersion { current } => Self::stale_version(current),
            Rejection::Blocked(violations) => Self::policy_blocks(&violations),
            Rejection::Unjustified(violations) => Self::justification_needed(&violations),
        }
    }
}

impl<E: std::error::Error + IntoRejection> From<CommandError<E>> for ApiError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Rejected(e) => e.rejection().into(),
            // A stale request is run again before it is answered (middleware::optimistic).
            CommandError::Conflict | CommandError::Stale => Self::lost_race(),
            CommandError::Technical(e) => Self::internal(e),
        }
    }
}

impl From<UseCaseError> for ApiError {
    fn from(err: UseCaseError) -> Self {
        match err {
            UseCaseError::Rejected(rejection) => rejection.into(),
            // A stale request is run again before it is answered (middleware::optimistic).
            UseCaseError::LostRace => Self::lost_race(),
            UseCaseError::NotYet(detail) => Self::not_yet(detail),
            UseCaseError::Technical(e) => Self::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}
