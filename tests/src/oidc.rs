//! A real OpenID provider (the npm package `oidc-provider`, `support/oidc/provider.mjs`)
//! and a browser-less user agent that signs in through it: it follows redirects and
//! submits the provider's login and consent forms as a person would.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{free_port, wait_for_port};

/// Where people reach the product in tests that sign in through a provider: its
/// redirect URI is registered there; the user agent goes to the test server instead.
pub const PUBLIC_URL: &str = "https://expenses.example.test";

/// What a server needs for [`sign_in`]: its public address, and issuers on 127.0.0.1.
pub fn sso_environment() -> Vec<(&'static str, String)> {
    vec![
        ("PUBLIC_URL", PUBLIC_URL.into()),
        ("SSO_ALLOW_PRIVATE", "true".into()),
    ]
}

/// The redirect URI of a server started with [`sso_environment`].
pub fn callback() -> String {
    format!("{PUBLIC_URL}/v1/auth/sso/callback")
}

/// Signs `login` in to `organization` through its issuer, at the server at `base`: the
/// callback's status and body, and the callback's address (to send again).
pub async fn sign_in(
    base: &str,
    organization: &str,
    login: &str,
) -> (reqwest::StatusCode, Value, String) {
    let start = format!("{base}/v1/auth/sso/start?organization={organization}");
    let back = Agent::new(login)
        .follow(&start, PUBLIC_URL)
        .await
        .unwrap_or_else(|(status, body)| panic!("stuck at the provider: {status} {body}"));
    let back = back.replacen(PUBLIC_URL, base, 1);
    let response = reqwest::get(&back).await.expect("the callback answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null), back)
}

/// The client secret the tests register everywhere.
pub const CLIENT_SECRET: &str = "client-secret-of-the-tests";

pub struct OidcProvider {
    pub port: u16,
    child: std::process::Child,
    /// Its settings, removed with it.
    folder: PathBuf,
}

impl OidcProvider {
    /// A provider with `clients` (oidc-provider client metadata) and `accounts` (login →
    /// claims), signing with the key in `key_file` (made there if missing).
    pub fn start(clients: Value, accounts: Value, key_file: &Path) -> OidcProvider {
        let port = free_port();
        let folder = std::env::temp_dir().join(format!("expensewise-oidc-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).expect("a folder for the provider");
        let settings = folder.join("settings.json");
        let body = json!({"clients": clients, "accounts": accounts, "key_file": key_file});
        std::fs::write(&settings, body.to_string()).expect("the provider's settings");
        let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/oidc/provider.mjs");
        let child = std::process::Command::new(&node)
            .arg(script)
            .arg(port.to_string())
            .arg(&settings)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {node} (./scripts/test.sh installs Node.js and oidc-provider): {e}"
                )
            });
        wait_for_port(port, 20, "the OpenID provider did not start");
        OidcProvider {
            port,
            child,
            folder,
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The token endpoint's next answer carries `id_token` instead of its own.
    pub async fn substitute(&self, id_token: &str) {
        let status = reqwest::Client::new()
            .post(format!("{}/test/substitute", self.issuer()))
            .body(id_token.to_string())
            .send()
            .await
            .expect("the provider takes a substitute")
            .status();
        assert_eq!(status.as_u16(), 204);
    }

    /// A real ID token for `client_id` (secret [`CLIENT_SECRET`]), got as any client gets
    /// one: `login` signs in, the code comes back to `redirect_uri` and is traded.
    pub async fn id_token(
        &self,
        client_id: &str,
        redirect_uri: &str,
        login: &str,
        nonce: &str,
    ) -> String {
        let verifier = Uuid::new_v4().simple().to_string().repeat(2);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url =
            reqwest::Url::parse(&format!("{}/auth", self.issuer())).expect("the provider's URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", "tests")
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let back = Agent::new(login)
            .follow(url.as_str(), redirect_uri)
            .await
            .expect("the provider sends the code back");
        let code = reqwest::Url::parse(&back)
            .expect("the redirect is a URL")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no code in {back}"));
        let tokens: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client_id, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .json()
            .await
            .expect("the token endpoint answers JSON");
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no ID token in {tokens}"))
            .to_string()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Client metadata of a confidential client of the tests.
pub fn oidc_client(client_id: &str, redirect_uri: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    })
}

/// A person in a browser without one: keeps cookies, follows redirects, and fills in
/// the provider's forms (login, then consent) as `login` with any password.
pub struct Agent {
    http: reqwest::Client,
    login: String,
}

impl Agent {
    pub fn new(login: &str) -> Agent {
        Agent {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            login: login.to_string(),
        }
    }

    /// Goes to `url` and on until a redirect leads to a URL starting with `until`, which
    /// is answered (without going there); or `Err` with the last answer's status and body
    /// when a page neither redirects nor has a form.
    pub async fn follow(&self, url: &str, until: &str) -> Result<String, (u16, String)> {
        let mut response = self.http.get(url).send().await.expect("a page");
        for _ in 0..20 {
            let here = response.url().clone();
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"]
                    .to_str()
                    .expect("a readable Location")
                    .to_string();
                let next = here
                    .join(&location)
                    .expect("a Location to follow")
                    .to_string();
                if next.starts_with(until) {
                    return Ok(next);
                }
                response = self.http.get(&next).send().await.expect("a page");
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            let Some((action, fields)) = form(&body) else {
                return Err((status.as_u16(), body));
            };
            let mut fields = fields;
            for (name, value) in fields.iter_mut() {
                match name.as_str() {
                    "login" => *value = self.login.clone(),
                    "password" => *value = "any password".into(),
                    _ => {}
                }
            }
            let target = here.join(&action).expect("a form action to post to");
            response = self
                .http
                .post(target)
                .form(&fields)
                .send()
                .await
                .expect("a form's answer");
        }
        panic!("more than 20 steps to sign in")
    }
}

/// The first form of a page: where it posts, and its inputs with their values.
fn form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = &tag[at..];
        Some(rest[..rest.find('"')?].replace("&amp;", "&"))
    };
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
    }
    Some((action, fields))
}

/// Where a test keeps a provider's signing key, for as long as it holds this: a
/// restarted provider signs with the same key. Removed when dropped.
pub struct KeyFile(PathBuf);

impl std::ops::Deref for KeyFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn key_file() -> KeyFile {
    KeyFile(std::env::temp_dir().join(format!("expensewise-oidc-key-{}.json", Uuid::new_v4())))
}
