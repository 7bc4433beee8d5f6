//! `expensewise smoke --base-url URL`: what a deployment pipeline runs against a new
//! release before it calls the rollout done. Read-only unless `--write` is given.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct SmokeArgs {
    /// Where the API answers, e.g. https://expenses.example.com
    #[arg(long)]
    pub base_url: String,
    /// Sign in as this user to check the authenticated read path.
    #[arg(long, env = "SMOKE_EMAIL", requires = "password")]
    pub email: Option<String>,
    /// The user's password (better given as SMOKE_PASSWORD than on the command line).
    #[arg(
        long,
        env = "SMOKE_PASSWORD",
        hide_env_values = true,
        requires = "email"
    )]
    pub password: Option<String>,
    /// Also write: create a draft expense, read it back through the read model with its
    /// consistency token, and delete it (its events stay in the history).
    #[arg(long, requires = "email")]
    pub write: bool,
    /// How long each request may take.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    pub timeout: u64,
}

/// Runs every check, printing one line each; fails with the first that does not pass.
pub async fn run(args: SmokeArgs) -> anyhow::Result<()> {
    let base = args.base_url.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let smoke = Smoke { client, base };

    let health = smoke.get("/health", None, StatusCode::OK).await?;
    anyhow::ensure!(health["status"] == "healthy", "/health: {health}");
    let ready = smoke.get("/ready", None, StatusCode::OK).await?;
    anyhow::ensure!(ready["status"] == "ready", "/ready: {ready}");
    let openapi = smoke.get("/openapi.json", None, StatusCode::OK).await?;
    anyhow::ensure!(
        openapi["paths"].as_object().is_some_and(|p| !p.is_empty()),
        "/openapi.json has no paths"
    );
    let started = Instant::now();
    let metrics = smoke
        .client
        .get(format!("{}/metrics", smoke.base))
        .send()
        .await?;
    anyhow::ensure!(
        metrics.status() == StatusCode::OK,
        "/metrics: {}",
        metrics.status()
    );
    anyhow::ensure!(
        metrics.text().await?.contains("http_requests_total"),
        "/metrics has no http_requests_total"
    );
    report("GET /metrics", started);
    let console = Console::new(&smoke, args.timeout)?;
    console.assets().await?;

    let (Some(email), Some(password)) = (args.email, args.password) else {
        println!("smoke: passed (unauthenticated checks only)");
        return Ok(());
    };
    let login = Call {
        body: Some(json!({"email": email, "password": password})),
        ..Call::new(reqwest::Method::POST, "/v1/auth/login", StatusCode::OK)
    };
    let (_, login) = smoke.send(login).await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the login answer has no token"))?
        .to_string();
    smoke.get("/v1/me", Some(&token), StatusCode::OK).await?;
    smoke
        .get("/v1/expenses?limit=1", Some(&token), StatusCode::OK)
        .await?;
    console.sign_in(&email, &password).await?;
    if args.write {
        smoke.write_path(&token).await?;
    }
    println!("smoke: passed");
    Ok(())
}

struct Smoke {
    client: reqwest::Client,
    base: String,
}

/// One request of the smoke test.
struct Call<'a> {
    method: reqwest::Method,
    path: &'a str,
    /// What the report line says, when not the method and path.
    label: Option<&'a str>,
    token: Option<&'a str>,
    consistency: Option<&'a str>,
    body: Option<Value>,
    want: StatusCode,
}

impl<'a> Call<'a> {
    fn new(method: reqwest::Method, path: &'a str, want: StatusCode) -> Call<'a> {
        Call {
            method,
            path,
            label: None,
            token: None,
            consistency: None,
            body: None,
            want,
        }
    }
}

impl Smoke {
    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        want: StatusCode,
    ) -> anyhow::Result<Value> {
        let call = Call {
            token,
            ..Call::new(reqwest::Method::GET, path, want)
        };
        Ok(self.send(call).await?.1)
    }

    /// Sends the call, checks its status, reports its time; the answer's consistency
    /// token (if any) and its JSON body.
    async fn send(&self, call: Call<'_>) -> anyhow::Result<(Option<String>, Value)> {
        let started = Instant::now();
        let path = call.path.split('?').next().unwrap_or(call.path);
        let label = call
            .label
            .map_or_else(|| format!("{} {path}", call.method), str::to_string);
        let mut request = self
            .client
            .request(call.method, format!("{}{}", self.base, call.path));
        if let Some(token) = call.token {
            request = request.bearer_auth(token);
        }
        if let Some(consistency) = call.consistency {
            request = request.header("x-consistency-token", consistency);
        }
        if let Some(body) = call.body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let status = response.status();
        let consistency = response
            .headers()
            .get("x-consistency-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await?;
        anyhow::ensure!(
            status == call.want,
            "{label}: {status} (wanted {}): {text}",
            call.want
        );
        report(&label, started);
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{label}: not JSON: {e}"))?
        };
        Ok((consistency, body))
    }

    /// Create → read back through the read model → delete, as a user would.
    async fn write_path(&self, token: &str) -> anyhow::Result<()> {
        let create = Call {
            token: Some(token),
            body: Some(json!({
                "amount": "1.00", "currency": "EUR", "merchant": "Smoke test",
                "category": "other", "spent_on": chrono::Utc::now().date_naive(),
                "description": "written and deleted by expensewise smoke"
            })),
            ..Call::new(reqwest::Method::POST, "/v1/expenses", StatusCode::CREATED)
        };
        let (consistency, expense) = self.send(create).await?;
        let consistency = consistency
            .ok_or_else(|| anyhow::anyhow!("POST /v1/expenses: no X-Consistency-Token"))?;
        let id = expense["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("POST /v1/expenses: no id"))?
            .to_string();
        let list = Call {
            label: Some("GET /v1/expenses (read your write)"),
            token: Some(token),
            consistency: Some(&consistency),
            ..Call::new(
                reqwest::Method::GET,
                "/v1/expenses?q=Smoke%20test&limit=500",
                StatusCode::OK,
            )
        };
        let (_, listed) = self.send(list).await?;
        anyhow::ensure!(
            listed["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|e| e["id"] == id.as_str())),
            "the new expense {id} is not in the read model"
        );
        let path = format!("/v1/expenses/{id}");
        let delete = Call {
            token: Some(token),
            ..Call::new(reqwest::Method::DELETE, &path, StatusCode::NO_CONTENT)
        };
        self.send(delete).await?;
        Ok(())
    }
}

/// The web console: its pages come as HTML under a strict content security policy, with
/// their assets; a person signs in through its form and sees their expenses.
struct Console<'a> {
    base: &'a str,
    /// Redirects are what is checked, not followed.
    client: reqwest::Client,
}

impl<'a> Console<'a> {
    fn new(smoke: &'a Smoke, timeout: u64) -> anyhow::Result<Self> {
        Ok(Console {
            base: &smoke.base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(timeout))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// The sign-in page, checked; its pre-session cookie and CSRF token.
    async fn sign_in_page(&self) -> anyhow::Result<(String, String, String)> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}/app/sign-in", self.base))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GET /app/sign-in: {e}"))?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "GET /app/sign-in: {}",
            response.status()
        );
        let policy = header(&response, "content-security-policy");
        anyhow::ensure!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe"),
            "GET /app/sign-in: no strict Content-Security-Policy ({policy:?})"
        );
        let pre = cookie(&response, "ew_pre=")
            .ok_or_else(|| anyhow::anyhow!("GET /app/sign-in: no pre-session cookie"))?;
        let html = response.text().await?;
        let csrf = between(&html, "name=\"csrf\" value=\"", "\"")
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("GET /app/sign-in: no form with a CSRF token"))?;
        report("GET /app/sign-in", started);
        Ok((pre, csrf, html))
    }

    async fn assets(&self) -> anyhow::Result<()> {
        let (_, _, html) = self.sign_in_page().await?;
        for (start, what) in [
            ("href=\"/app/assets/console.", "style sheet"),
            ("src=\"/app/assets/console.", "script"),
        ] {
            let rest = between(&html, start, "\"")
                .ok_or_else(|| anyhow::anyhow!("the console's page links no {what}"))?;
            let path = format!("/app/assets/console.{rest}");
            let started = Instant::now();
            let response = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == StatusCode::OK,
                "GET {path}: {}",
                response.status()
            );
            report(&format!("GET /app/assets ({what})"), started);
        }
        Ok(())
    }

    async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let (pre, csrf, _) = self.sign_in_page().await?;
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/app/sign-in", self.base))
            .header(reqwest::header::COOKIE, pre)
            .form(&[("email", email), ("password", password), ("csrf", &csrf)])
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::SEE_OTHER,
            "POST /app/sign-in: {}",
            response.status()
        );
        let session = cookie(&response, "ew_session=")
            .ok_or_else(|| anyhow::anyhow!("POST /app/sign-in: no session cookie"))?;
        report("POST /app/sign-in", started);
        let started = Instant::now();
        let page = self
            .client
            .get(format!("{}/app/expenses", self.base))
            .header(reqwest::header::COOKIE, session)
            .send()
            .await?;
        anyhow::ensure!(
            page.status() == StatusCode::OK,
            "GET /app/expenses: {}",
            page.status()
        );
        anyhow::ensure!(
            page.text().await?.contains("<h1>Expenses</h1>"),
            "GET /app/expenses: not the expenses page"
        );
        report("GET /app/expenses", started);
        Ok(())
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `name=value` of the cookie a response sets (`prefix` is `name=`).
fn cookie(response: &reqwest::Response, prefix: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .find(|pair| pair.starts_with(prefix) && pair.len() > prefix.len())
        .map(str::to_string)
}

fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn report(label: &str, started: Instant) {
    println!("ok  {label:<40} {:>6} ms", started.elapsed().as_millis());
}
