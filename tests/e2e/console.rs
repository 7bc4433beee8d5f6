//! The web console as people use it: a real headless Chromium (Debian's, driven by
//! Playwright) takes an employee, an approver, an auditor and an admin through their
//! work, with axe-core checking every page it shows; and the console's defences over
//! plain HTTP: forms without their token, other organizations' pages, the content
//! security policy.

use std::path::PathBuf;

use expensewise_tests::oidc::{self, oidc_client, OidcProvider};
use expensewise_tests::{
    draw_receipt, expect_json, expect_status, free_port, on_both_backends, Backend, Expense, Page,
    TestApp, PASSWORD,
};
use regex::Regex;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// A browser-less session of the console: its cookies, kept by hand.
struct Session<'a> {
    app: &'a TestApp,
    cookies: Vec<(String, String)>,
    client: reqwest::Client,
}

impl<'a> Session<'a> {
    fn new(app: &'a TestApp) -> Self {
        Session {
            app,
            cookies: Vec::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.app.api.base));
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request.send().await.unwrap();
        self.keep(&response);
        response
    }

    async fn page(&mut self, path: &str) -> (StatusCode, String) {
        let response = self.send(Method::GET, path, None).await;
        let status = response.status();
        assert_eq!(
            response.headers()[CONTENT_TYPE].to_str().unwrap(),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_strict_policy(&response, path);
        (status, response.text().await.unwrap())
    }

    async fn sign_in(&mut self, email: &str) -> String {
        let (status, html) = self.page("/app/sign-in").await;
        assert_eq!(status, StatusCode::OK);
        let csrf = csrf_of(&html);
        let response = self
            .send(
                Method::POST,
                "/app/sign-in",
                Some(&[("email", email), ("password", PASSWORD), ("csrf", &csrf)]),
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("ew_session="))
            .expect("a session cookie");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/app", "Secure"] {
            assert!(cookie.contains(flag), "{flag} in {cookie}");
        }
        let (_, home) = self.page("/app/expenses").await;
        csrf_of(&home)
    }
}

fn csrf_of(html: &str) -> String {
    Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(html)
        .unwrap_or_else(|| panic!("a form with a CSRF token in {html}"))[1]
        .to_string()
}

/// The console's pages run only the script of their own origin, none written into the
/// page, and are never framed.
fn assert_strict_policy(response: &reqwest::Response, path: &str) {
    let policy = response
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path} has a Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
}

fn assert_no_inline_script(html: &str, path: &str) {
    let inline = Regex::new(r"<script(?:\s[^>]*)?>").unwrap();
    for tag in inline.find_iter(html) {
        assert!(
            tag.as_str().contains(" src="),
            "{path}: an inline script {}",
            tag.as_str()
        );
    }
    let handler = Regex::new(r#"\son[a-z]+\s*="#).unwrap();
    assert!(!handler.is_match(html), "{path}: an inline event handler");
    assert!(!html.contains(" style="), "{path}: an inline style");
    assert!(!html.contains("javascript:"), "{path}: a javascript: URL");
}

async fn forms_need_their_token_and_other_organizations_pages_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let eve = app.add_user(&ada, "eve@acme.test", "employee").await;
    let other = app.register("Globex", "gil@globex.test").await;
    let theirs = app.create_expense(&other).await;
    let mine = app.create_expense(&eve).await;

    // Unsigned, every page leads to the sign-in; the sign-in form needs its token too.
    let mut anonymous = Session::new(&app);
    let response = anonymous.send(Method::GET, "/app/expenses", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/app/sign-in");
    let (_, sign_in) = anonymous.page("/app/sign-in").await;
    let refused = anonymous
        .send(
            Method::POST,
            "/app/sign-in",
            Some(&[("email", "eve@acme.test"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.headers().contains_key(SET_COOKIE));
    assert!(csrf_of(&sign_in).len() == 32);

    let mut session = Session::new(&app);
    let csrf = session.sign_in("eve@acme.test").await;
    let expense = [
        ("merchant", "Forged"),
        ("amount", "12.50"),
        ("currency", "EUR"),
        ("category", "travel"),
        ("spent_on", "2026-03-01"),
    ];
    let mut forged = Session::new(&app);
    let forged_csrf = forged.sign_in("ada@acme.test").await;
    for token in [None, Some(""), Some(forged_csrf.as_str()), Some("0123")] {
        let mut form = expense.to_vec();
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let response = session
            .send(Method::POST, "/app/expenses", Some(&form))
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(response.text().await.unwrap().contains("security token"));
    }
    let posted = session
        .send(
            Method::POST,
            &format!("/app/expenses/{}/submit", mine.id),
            Some(&[]),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::FORBIDDEN);
    let page: Page<Expense> =
        expect_json(app.get("/v1/expenses", &eve.token).await, StatusCode::OK).await;
    assert_eq!(page.items.len(), 1, "nothing was made by a refused form");
    assert_eq!(page.items[0].status, "draft", "nor submitted");

    // With its token the same form works, and the page after it shows the write.
    let mut form = expense.to_vec();
    form.push(("csrf", &csrf));
    let made = session
        .send(Method::POST, "/app/expenses", Some(&form))
        .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let location = made.headers()[LOCATION].to_str().unwrap().to_string();
    let (status, html) = session.page(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Forged") && html.contains("draft"), "{html}");

    // Another organization's expense is not found, as a page; so is a made-up one.
    for path in [
        format!("/app/expenses/{}", theirs.id),
        format!("/app/expenses/{}/timeline", theirs.id),
        format!("/app/expenses/{}", Uuid::new_v4()),
        "/app/no-such-page".to_string(),
    ] {
        let (status, html) = session.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("Not found"), "{path}: {html}");
    }
    // An admin's pages are not an employee's.
    let (status, _) = session.page("/app/operations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // No page has inline script, as employee and as admin.
    for path in [
        "/app/expenses".to_string(),
        "/app/expenses/new".to_string(),
        "/app/receipts/new".to_string(),
        location.clone(),
        format!("{location}/timeline"),
    ] {
        let (_, html) = session.page(&path).await;
        assert_no_inline_script(&html, &path);
    }
    for path in ["/app/operations", "/app/approvals", "/app/audit"] {
        let (status, html) = forged.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_no_inline_script(&html, path);
    }
    assert_no_inline_script(&sign_in, "/app/sign-in");

    // The audit search's NDJSON download: every event of the organization, one per line.
    let download = forged
        .send(
            Method::GET,
            "/app/audit/download?format=ndjson&aggregate_type=expense",
            None,
        )
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let lines = download.text().await.unwrap();
    let events: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "the two expenses made: {lines}");
    assert!(
        events.iter().all(|e| e["aggregate_type"] == "expense"),
        "{lines}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["aggregate_id"] != theirs.id.as_str()),
        "no other organization's event"
    );
    let (status, _) = forged.page("/app/audit/download?format=xlsx").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Assets are versioned by content and kept for good; a stale name is not found.
    let script = Regex::new(r#"src="(/app/assets/console\.[0-9a-f]+\.js)""#)
        .unwrap()
        .captures(&sign_in)
        .unwrap()[1]
        .to_string();
    let response = session.send(Method::GET, &script, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let stale = session
        .send(Method::GET, "/app/assets/console.000000000000.js", None)
        .await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);

    // Signing out ends the console's session.
    let out = session
        .send(Method::POST, "/app/sign-out", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let response = session.send(Method::GET, "/app/expenses", None).await;
    assert_eq!(response.headers()[LOCATION], "/app/sign-in");
    app.finish().await;
}

async fn every_role_does_their_work_in_a_real_browser(backend: Backend) {
    // The OCR worker gave up on a receipt whose file went missing; the file is back
    // (restored from a backup, say): a retry will work.
    let (app, ada, eve, lost) = crate::dead_letters::lost_receipts(backend, 1).await;
    let (lost_id, stored, kept) = &lost[0];
    std::fs::rename(kept, stored).unwrap();
    app.add_user(&ada, "bob@acme.test", "approver").await;
    app.add_user(&ada, "audrey@acme.test", "auditor").await;

    let folder = std::env::temp_dir().join(format!("expensewise-console-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&folder).unwrap();
    let clean = folder.join("clean.png");
    std::fs::write(
        &clean,
        draw_receipt(&json!({"lines": ["BLUE BOTTLE COFFEE", "12 Market Street",
            "Date: 14/03/2026", "Latte 4.50", "Croissant 3.20", "TOTAL EUR 7.70"]})),
    )
    .unwrap();
    let unsure = folder.join("unsure.jpg");
    std::fs::write(
        &unsure,
        draw_receipt(&json!({
            "lines": ["FERRY KIOSK", "Coffee $3.50", "Bagel $4.00", "TOTAL $7.50"],
            "rotate": 1.5, "blur": 0.6, "noise": 40, "format": "JPEG"
        })),
    )
    .unwrap();
    let screenshots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/test-results/console"
    ))
    .join(format!("{backend:?}").to_lowercase());
    let config = json!({
        "base": app.api.base,
        "chromium": chromium(),
        "screenshots": screenshots,
        "password": PASSWORD,
        "employee": "eve@acme.test",
        "approver": "bob@acme.test",
        "auditor": "audrey@acme.test",
        "admin": "ada@acme.test",
        "clean_receipt": clean,
        "unsure_receipt": unsure,
    });
    let lines = run_browser(&config).await;
    std::fs::remove_dir_all(&folder).unwrap();

    let mut pages = Vec::new();
    let mut done = None;
    for line in &lines {
        if let Some(seen) = line.get("done") {
            done = Some(seen.clone());
            continue;
        }
        let name = line["page"].as_str().unwrap().to_string();
        let serious: Vec<&Value> = line["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "axe-core on {name}: {serious:#?}");
        assert!(
            line["overflow"].as_i64().unwrap() <= 0,
            "{name} is wider than its screen by {} px",
            line["overflow"]
        );
        pages.push(name);
    }
    let done = done.unwrap_or_else(|| panic!("the browser did not finish: {lines:#?}"));
    assert_eq!(pages.len(), 15, "{pages:?}");

    // What the browser did is what the API says happened.
    let expense: Expense = expect_json(
        app.get(
            &format!("/v1/expenses/{}", done["expense"].as_str().unwrap()),
            &ada.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(expense.status, "approved");
    let reviewed = expect_status(
        app.get(
            &format!("/v1/receipts/{}", done["unsure_receipt"].as_str().unwrap()),
            &eve.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reviewed["status"], "reviewed", "{reviewed}");
    assert_eq!(reviewed["review"]["total"]["currency"], "USD");
    let lost = expect_status(
        app.get(&format!("/v1/receipts/{lost_id}"), &eve.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(
        lost["status"], "pending",
        "the retried receipt was read: {lost}"
    );
    let retried = expect_status(
        app.get("/v1/admin/dead-letters?status=retried", &ada.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried.as_array().unwrap().len(), 1, "{retried}");
    let audit = expect_status(
        app.get("/v1/audit/events?event_type=DeadLetterRetried", &ada.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["actor_id"], ada.user_id.to_string());
    assert!(events[0]["request_id"].is_string(), "{}", events[0]);
    app.finish().await;
}

/// An organization whose people sign in only through its OpenID provider: they do so in
/// the console too, through the provider's own pages, in a real browser.
#[tokio::test]
async fn people_sign_in_to_the_console_through_their_organizations_provider() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let key = oidc::key_file();
    let provider = OidcProvider::start(
        json!([oidc_client(
            "expensewise",
            &format!("{public}/app/sso/callback")
        )]),
        json!({"eve-7f3a": {"email": "eve@acme.test", "email_verified": true, "name": "Eve Example"}}),
        &key,
    );
    let app = TestApp::builder(Backend::Sqlite)
        .port(port)
        .env(vec![
            ("PUBLIC_URL", public.clone()),
            ("SSO_ALLOW_PRIVATE", "true".to_string()),
        ])
        .start()
        .await;
    let ada = app.register("Acme", "ada@acme.test").await;
    let settings = json!({
        "issuer": provider.issuer(), "client_id": "expensewise",
        "client_secret": oidc::CLIENT_SECRET, "allowed_domains": ["acme.test"],
        "default_role": "employee", "password_sign_in": false,
    });
    let response = app
        .request(Method::PUT, "/v1/sso", Some(&ada.token))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let screenshots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/test-results/console/sso"
    ));
    let lines = run_script(
        "console_sso.mjs",
        &json!({
            "base": public, "chromium": chromium(), "screenshots": screenshots,
            "organization": ada.organization_id, "login": "eve-7f3a",
        }),
    )
    .await;
    let mut done = None;
    for line in &lines {
        match line.get("done") {
            Some(seen) => done = Some(seen.clone()),
            None => assert_eq!(line["violations"], json!([]), "{line}"),
        }
    }
    let done = done.unwrap_or_else(|| panic!("not signed in: {lines:#?}"));
    assert!(
        done["who"].as_str().unwrap().contains("Eve Example"),
        "{done}"
    );
    assert!(
        done["url"].as_str().unwrap().ends_with("/app/expenses"),
        "{done}"
    );
    app.finish().await;
}

fn chromium() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

async fn run_browser(config: &Value) -> Vec<Value> {
    run_script("console_flow.mjs", config).await
}

async fn run_script(name: &str, config: &Value) -> Vec<Value> {
    let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".to_string());
    let script = format!("{}/support/browser/{name}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(&node)
        .arg(script)
        .arg(config.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {node} (./scripts/test.sh installs Node.js): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser run failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

on_both_backends!(
    forms_need_their_token_and_other_organizations_pages_are_not_found,
    every_role_does_their_work_in_a_real_browser,
);
