//! Request extractors that turn HTTP into trusted values or into problem responses.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::header::{self, HeaderMap};
use axum::http::request::Parts;
use axum::http::Method;
use chrono::Utc;
use expensewise_domain::organization::Member;
use expensewise_domain::{Actor, EventMetadata, Organization};
use expensewise_infra::event_store::Scope;
use expensewise_infra::GlobalPosition;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::scopes::Access;
use crate::state::AppState;

/// A JSON body, strictly parsed: wrong content type → 415, too large → 413, malformed
/// → 400, wrong shape (unknown field, wrong type, missing field) → 422 naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_json_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body (or `null`) means `T::default()`: for commands
/// whose body is optional, such as approving without a comment.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            let bytes = read_bytes(req, state).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJsonBody(T::default()));
            }
            return Err(ApiError::unsupported_media_type(
                "send the body as application/json",
            ));
        }
        let bytes = read_json_bytes(req, state).await?;
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_json_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::unsupported_media_type(
            "send the body as application/json",
        ));
    }
    read_bytes(req, state).await
}

async fn read_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_) => {
                ApiError::payload_too_large(state.config.limits.json_body)
            }
            other => ApiError::bad_request(other.body_text()),
        })
}

/// Every body this API takes is a JSON object: serde would also read a struct from an
/// array of its fields in order (`[null, null]`), which no client means.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::invalid_field("body", "must be a JSON object"),
                Err(e) => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() {
        de.end()
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    }
    match parsed {
        // JSON has one kind of number: `4.0` is the integer 4 to JSON Schema and to the
        // encoders that write every number with a point. Only when such a number met an
        // integer field is the body read again with whole numbers as integers, so the
        // strict reading (duplicate fields refused) stays the usual one.
        Err(err)
            if err
                .inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            let mut value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
            whole_numbers_as_integers(&mut value);
            serde_path_to_error::deserialize(value).map_err(refusal)
        }
        other => other.map_err(refusal),
    }
}

fn refusal(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            ApiError::invalid_field(&field, strip_position(&inner.to_string()))
        }
        _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
    }
}

/// Turns each number with no fraction (within the range a double holds exactly) into an
/// integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
                if float.fract() == 0.0 && float.abs() <= EXACT {
                    // Exact: the value is whole and within ±2^53.
                    *value = Value::from(float as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Who is calling, checked against the organization's current version on every request
/// (for commands by their append, see `middleware::optimistic`): a deactivated user's
/// token stops working at once, and role changes apply immediately.
#[derive(Clone)]
pub struct AuthUser {
    pub actor: Actor,
    pub member: Member,
    pub organization: Organization,
    /// For a query (GET), where the caller's latest write stands in the global order:
    /// the query answers only once its read model includes it (read-your-own-writes
    /// without a token, whichever replica took the write). Found in the same statement
    /// that checks the organization's version.
    pub last_write: Option<GlobalPosition>,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if bearer_token(&parts.headers).is_none() {
            return Err(ApiError::unauthorized(
                "an Authorization: Bearer token is required",
            ));
        }
        let caller = crate::auth::request_caller(state, parts)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::unauthorized("the token is invalid or has expired"))?;
        let (user_id, organization_id) = match caller {
            Caller::User(claims) => (claims.sub, claims.org),
            Caller::Token {
                organization_id,
                token_id,
            } => (
                token_holder(state, parts, organization_id, token_id).await?,
                organization_id,
            ),
        };
        let (organization, last_write) =
            if parts.method == Method::GET || parts.method == Method::HEAD {
                state
                    .store
                    .organization_for_query(&organization_id.to_string(), &user_id.to_string())
                    .await?
            } else {
                let organization = state
                    .store
                    .organization_for_request(&request_scope(parts), &organization_id.to_string())
                    .await?;
                (organization, None)
            };
        let member = organization
            .member(user_id)
            .filter(|m| m.active)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the token's user is not active"))?;
        Ok(AuthUser {
            actor: Actor {
                user_id,
                organization_id,
                role: member.role,
            },
            member,
            organization,
            last_write,
        })
    }
}

/// The owner of a personal access token, if the token is still usable and may do what the
/// request asks (`crate::scopes`); its use is recorded, at most once a minute.
async fn token_holder(
    state: &AppState,
    parts: &Parts,
    organization_id: Uuid,
    token_id: Uuid,
) -> Result<Uuid, ApiError> {
    let organization = state
        .store
        .load_organization(&organization_id.to_string())
        .await?;
    let now = Utc::now();
    let token = organization
        .token(token_id)
        .filter(|t| t.usable(now))
        .ok_or_else(|| ApiError::unauthorized("the token is revoked or has expired"))?;
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("", |p| p.as_str());
    match crate::scopes::required(&parts.method, path) {
        Access::AnyToken => {}
        Access::Scope(scope) if token.allows(scope, now) => {}
        Access::Scope(scope) => {
            return Err(ApiError::forbidden(format!(
                "this token lacks the scope {}",
                scope.as_str()
            )))
        }
        Access::SignedInOnly => {
            return Err(ApiError::forbidden(
                "a personal access token cannot do this: sign in",
            ))
        }
    }
    state.token_uses.record(&state.db, token_id);
    Ok(token.user_id)
}

/// The request's optimistic scope (see `middleware::optimistic`), which the handler
/// passes to the use cases it calls. A handler that takes it may be run twice: when what
/// the first run decided on turns out to have changed, nothing it appended stands and the
/// request runs once more from the start, with no scope (everything read afresh). So
/// such a handler does nothing but call use cases; their appends hold or fail whole.
pub struct Optimistic(pub Scope);

impl<S: Send + Sync> FromRequestParts<S> for Optimistic {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Optimistic(request_scope(parts)))
    }
}

/// The scope the middleware gave the request; none for reads, uploads and a run again.
fn request_scope(parts: &Parts) -> Scope {
    parts
        .extensions
        .get::<Scope>()
        .cloned()
        .unwrap_or_else(Scope::none)
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `If-Match: "3"` (or `W/"3"`, or `*`): the version the client expects to change.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not readable text"))?
            .trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        // An entity tag is quoted (RFC 9110 §8.8.3); a bare number is refused rather than
        // guessed at, as the API document says.
        text.strip_prefix("W/")
            .unwrap_or(text)
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .map(|v| IfMatch(Some(v)))
            .ok_or_else(|| ApiError::bad_request("If-Match must be an ETag such as \"3\""))
    }
}

/// What ties a request's events together: request id, correlation and trace context.
#[derive(Clone)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub traceparent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-request-id");
        let causation_id = request_id
            .as_deref()
            .and_then(|r| Uuid::parse_str(r).ok())
            .unwrap_or_else(Uuid::new_v4);
        let correlation_id = header("x-correlation-id")
            .and_then(|c| Uuid::parse_str(&c).ok())
            .unwrap_or(causation_id);
        // The request's own span when traces are exported (a child of the caller's);
        // otherwise the caller's context is passed on as it came.
        let traceparent = expensewise_infra::telemetry::current_traceparent()
            .or_else(|| header("traceparent").filter(|t| valid_traceparent(t)));
        Ok(RequestMeta {
            request_id,
            correlation_id,
            causation_id,
            traceparent,
        })
    }
}

impl RequestMeta {
    pub fn metadata(&self, organization_id: Uuid, actor_id: Option<Uuid>) -> EventMetadata {
        EventMetadata {
            organization_id,
            actor_id,
            occurred_at: Utc::now(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            request_id: self.request_id.clone(),
            traceparent: self.traceparent.clone(),
        }
    }
}

/// W3C trace context, version 00: `00-<32 hex>-<16 hex>-<2 hex>`.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_is_checked_before_it_is_stored() {
        assert!(valid_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!valid_traceparent("00-xyz-b7ad6b7169203331-01"));
        assert!(!valid_traceparent("garbage"));
    }

    #[test]
    fn data_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            amount: String,
        }
        let ok = parse_json::<Body>(br#"{"amount": "12.00"}"#).unwrap();
        assert_eq!(ok.amount, "12.00");
        let err = parse_json::<Body>(br#"{"amount": 12}"#).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let err = parse_json::<Body>(br#"{"amount": "1", "x": 1}"#).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let err = parse_json::<Body>(br#"{"amount": "#).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn whole_numbers_with_a_point_are_integers() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            days: u32,
            list: Vec<i64>,
        }
        let ok = parse_json::<Body>(br#"{"days": 4.0, "list": [-3.0, 7]}"#).unwrap();
        assert_eq!((ok.days, ok.list), (4, vec![-3, 7]));
        for refused in [
            &br#"{"days": 4.5, "list": []}"#[..],
            br#"{"days": 1e300, "list": []}"#,
            br#"{"days": 4, "days": 5, "list": []}"#,
        ] {
            let err = parse_json::<Body>(refused).unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}
