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
    /// consistency token, and delete it (its three events stay in the history).
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

    let (Some(email), Some(password)) = (args.email, args.password) else {
        println!("smoke: passed (unauthenticated checks only)");
        return Ok(());
    };
    let login = smoke
        .send(
            reqwest::Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
            StatusCode::OK,
        )
        .await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the login answer has no token"))?
        .to_string();
    smoke.get("/v1/me", Some(&token), StatusCode::OK).await?;
    smoke
        .get("/v1/expenses?limit=1", Some(&token), StatusCode::OK)
        .await?;
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

impl Smoke {
    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        want: StatusCode,
    ) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, token, None, want)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        want: StatusCode,
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        let label = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status == want, "{label}: {status} (wanted {want}): {text}");
        report(&label, started);
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{label}: not JSON: {e}"))?
        })
    }

    /// Create → read back through the read model → delete, as a user would.
    async fn write_path(&self, token: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let created = self
            .client
            .post(format!("{}/v1/expenses", self.base))
            .bearer_auth(token)
            .json(&json!({
                "amount": "1.00", "currency": "EUR", "merchant": "Smoke test",
                "category": "other", "spent_on": chrono::Utc::now().date_naive(),
                "description": "written and deleted by expensewise smoke"
            }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status() == StatusCode::CREATED,
            "POST /v1/expenses: {}: {}",
            created.status(),
            created.text().await?
        );
        let consistency = created
            .headers()
            .get("x-consistency-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("POST /v1/expenses: no X-Consistency-Token"))?;
        let expense: Value = created.json().await?;
        let id = expense["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("POST /v1/expenses: no id"))?
            .to_string();
        report("POST /v1/expenses", started);
        let started = Instant::now();
        let listed = self
            .client
            .get(format!(
                "{}/v1/expenses?q=Smoke%20test&limit=500",
                self.base
            ))
            .bearer_auth(token)
            .header("x-consistency-token", &consistency)
            .send()
            .await?;
        anyhow::ensure!(
            listed.status() == StatusCode::OK,
            "GET /v1/expenses with the consistency token: {}",
            listed.status()
        );
        let listed: Value = listed.json().await?;
        anyhow::ensure!(
            listed["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|e| e["id"] == id.as_str())),
            "the new expense {id} is not in the read model"
        );
        report("GET /v1/expenses (read your write)", started);
        self.send(
            reqwest::Method::DELETE,
            &format!("/v1/expenses/{id}"),
            Some(token),
            None,
            StatusCode::NO_CONTENT,
        )
        .await?;
        Ok(())
    }
}

fn report(label: &str, started: Instant) {
    println!("ok  {label:<40} {:>6} ms", started.elapsed().as_millis());
}
