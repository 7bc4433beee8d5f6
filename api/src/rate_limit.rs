//! Rate limiting: a fixed window of `RATE_LIMIT_MAX` requests per `RATE_LIMIT_WINDOW` for
//! each signed-in user (by token subject) or, without a valid token, each client
//! address; and a stricter window on sign-in and registration per address, against
//! password guessing. Every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`; a refused one is 429 with `Retry-After`.
//!
//! Counters live in this process: with several API replicas each counts its own share,
//! and the ingress's own limit is the cluster-wide one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use expensewise_infra::config::RateLimit;

use crate::auth::request_caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Above this many tracked clients, finished windows are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Client {
    User(uuid::Uuid),
    Address(IpAddr),
    /// Sign-in and registration attempts from an address.
    Attempts(IpAddr),
}

struct Window {
    started: Instant,
    count: u64,
}

/// What a request's window looks like once it is counted.
struct Verdict {
    allowed: bool,
    limit: u64,
    remaining: u64,
    reset: Duration,
}

pub struct RateLimiter {
    general: RateLimit,
    attempts: RateLimit,
    windows: Mutex<HashMap<Client, Window>>,
}

impl RateLimiter {
    pub fn new(general: RateLimit, attempts: RateLimit) -> RateLimiter {
        RateLimiter {
            general,
            attempts,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, client: Client, now: Instant) -> Verdict {
        let limit = match client {
            Client::Attempts(_) => self.attempts,
            _ => self.general,
        };
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > PRUNE_ABOVE {
            let longest = self.general.window.max(self.attempts.window);
            windows.retain(|_, w| now.duration_since(w.started) < longest);
        }
        let window = windows.entry(client).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(window.started) >= limit.window {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        // Refused requests count too: hammering does not shorten the wait.
        window.count = window.count.saturating_add(1);
        Verdict {
            allowed: window.count <= limit.max,
            limit: limit.max,
            remaining: limit.max.saturating_sub(window.count),
            reset: limit
                .window
                .saturating_sub(now.duration_since(window.started)),
        }
    }
}

/// Paths that probes and scrapers call, never limited.
fn exempt(path: &str) -> bool {
    // The console's assets are the same few files for everyone, cached for good.
    matches!(path, "/health" | "/ready" | "/metrics") || path.starts_with("/app/assets/")
}

/// Requests that try a password (changing one's own needs the current one), limited as
/// sign-in attempts are.
fn is_attempt(method: &Method, path: &str) -> bool {
    (method == Method::POST
        && matches!(
            path,
            "/v1/auth/login" | "/v1/auth/register" | "/app/sign-in" | "/app/register"
        ))
        || (method == Method::PUT && path == "/v1/me/password")
        || (method == Method::GET && matches!(path, "/v1/auth/sso/start" | "/v1/auth/sso/callback"))
}

pub async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if exempt(path) {
        return next.run(req).await;
    }
    let now = Instant::now();
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let limiter = &app.rate_limiter;
    let mut verdicts = Vec::with_capacity(2);
    if is_attempt(req.method(), path) {
        verdicts.push(limiter.count(Client::Attempts(address), now));
    }
    let (mut parts, body) = req.into_parts();
    // A caller whose token cannot be checked now is counted by address.
    let user = request_caller(&app, &mut parts)
        .await
        .ok()
        .flatten()
        .map(|caller| caller.key());
    let req = Request::from_parts(parts, body);
    verdicts.push(limiter.count(user.map_or(Client::Address(address), Client::User), now));
    // The tightest window speaks for the request.
    let Some(verdict) = verdicts
        .into_iter()
        .min_by_key(|v| (v.allowed, v.remaining))
    else {
        return next.run(req).await;
    };
    let mut response = if verdict.allowed {
        next.run(req).await
    } else {
        let seconds = verdict.reset.as_secs().max(1);
        ApiError::too_many_requests(
            format!("too many requests; try again in {seconds} s"),
            seconds,
        )
        .into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", verdict.limit),
        ("ratelimit-remaining", verdict.remaining),
        ("ratelimit-reset", verdict.reset.as_secs().max(1)),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u64, seconds: u64) -> RateLimit {
        RateLimit {
            window: Duration::from_secs(seconds),
            max,
        }
    }

    #[test]
    fn a_window_allows_its_maximum_then_refuses_until_it_ends() {
        let limiter = RateLimiter::new(limit(3, 60), limit(1, 60));
        let start = Instant::now();
        let ada = || Client::User(uuid::Uuid::from_u128(1));
        let remaining: Vec<(bool, u64)> = (0..4)
            .map(|_| limiter.count(ada(), start))
            .map(|v| (v.allowed, v.remaining))
            .collect();
        assert_eq!(remaining, [(true, 2), (true, 1), (true, 0), (false, 0)]);
        let later = limiter.count(ada(), start + Duration::from_secs(30));
        assert!(!later.allowed);
        assert_eq!(later.reset, Duration::from_secs(30));
        // Others have their own windows.
        assert!(
            limiter
                .count(Client::User(uuid::Uuid::from_u128(2)), start)
                .allowed
        );
        let address = IpAddr::from([127, 0, 0, 1]);
        assert!(limiter.count(Client::Attempts(address), start).allowed);
        assert!(!limiter.count(Client::Attempts(address), start).allowed);
        // A new window starts afresh.
        assert!(
            limiter
                .count(ada(), start + Duration::from_secs(60))
                .allowed
        );
    }
}
