//! Single sign-on's half outside the domain (docs/single-sign-on.md): client secrets and
//! sign-ins under way, kept beside the log; and the OpenID Connect relying party — the
//! issuer's discovery document and keys, the code exchange, and the ID token's checks.

use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use expensewise_domain::webhook::address::{self, Allowance};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::config::SsoConfig;
use crate::db::Database;
use crate::{on_database, on_writer};

/// How long a sign-in sent to the provider may take to come back.
pub const LOGIN_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// The most an issuer's answer may be.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// How far clocks may disagree about an ID token's times.
const LEEWAY_SECONDS: u64 = 60;

/// Keeps an OpenID client secret under `secret_id`.
pub async fn store_secret(
    db: &Database,
    secret_id: Uuid,
    organization_id: Uuid,
    secret: &str,
) -> Result<(), sqlx::Error> {
    on_writer!(db, |pool| {
        sqlx::query(
            "INSERT INTO sso_secrets (secret_id, organization_id, secret, created_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_id.to_string())
        .bind(organization_id.to_string())
        .bind(secret)
        .bind(Utc::now().timestamp_millis())
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub async fn secret(db: &Database, secret_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    Ok(on_database!(db, |pool| {
        sqlx::query_scalar("SELECT secret FROM sso_secrets WHERE secret_id = $1")
            .bind(secret_id.to_string())
            .fetch_optional(pool)
            .await?
    }))
}

/// A sign-in sent to the provider: what its answer must match and prove.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub state: String,
    pub organization_id: Uuid,
    pub issuer: String,
    pub nonce: String,
    pub code_verifier: String,
}

impl PendingLogin {
    pub fn new(organization_id: Uuid, issuer: &str) -> Self {
        Self {
            state: random_text(),
            organization_id,
            issuer: issuer.to_string(),
            nonce: random_text(),
            code_verifier: random_text(),
        }
    }

    /// The PKCE challenge of the verifier (S256).
    pub fn code_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.code_verifier.as_bytes()))
    }
}

/// 256 random bits, URL-safe.
fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Keeps `login` until its answer comes; sign-ins older than a day are forgotten.
pub async fn begin(db: &Database, login: &PendingLogin) -> Result<(), sqlx::Error> {
    let now = Utc::now().timestamp_millis();
    on_writer!(db, |pool| {
        sqlx::query("DELETE FROM sso_logins WHERE created_ms < $1")
            .bind(now - 86_400_000)
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO sso_logins \
             (state, organization_id, issuer, nonce, code_verifier, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&login.state)
        .bind(login.organization_id.to_string())
        .bind(&login.issuer)
        .bind(&login.nonce)
        .bind(&login.code_verifier)
        .bind(now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The sign-in `state` names, taken: a second answer with the same state, or one that
/// comes too late, finds none.
pub async fn take(db: &Database, state: &str) -> Result<Option<PendingLogin>, sqlx::Error> {
    let now = Utc::now().timestamp_millis();
    let row: Option<(String, String, String, String)> = on_writer!(db, |pool| {
        sqlx::query_as(
            "UPDATE sso_logins SET used_ms = $2 \
             WHERE state = $1 AND used_ms IS NULL AND created_ms > $3 \
             RETURNING organization_id, issuer, nonce, code_verifier",
        )
        .bind(state)
        .bind(now)
        .bind(now - LOGIN_LIFETIME.num_milliseconds())
        .fetch_optional(pool)
        .await?
    });
    let Some((organization_id, issuer, nonce, code_verifier)) = row else {
        return Ok(None);
    };
    Ok(Some(PendingLogin {
        state: state.to_string(),
        organization_id: organization_id
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        issuer,
        nonce,
        code_verifier,
    }))
}

/// Why single sign-on did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The issuer could not be asked, or answered nonsense: the organization's settings
    /// or the issuer are at fault.
    #[error("the issuer: {0}")]
    Issuer(String),
    /// What came back does not prove who the person is.
    #[error("{0}")]
    Refused(String),
}

/// What an issuer's discovery document says (OpenID Connect Discovery 1.0).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// Who the issuer says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Asks issuers, only at addresses the configuration allows.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    allowance: Allowance,
    timeout: Duration,
}

impl RelyingParty {
    pub fn new(config: &SsoConfig) -> Self {
        Self {
            allowance: config.allowance.clone(),
            timeout: config.timeout,
        }
    }

    /// The issuer's discovery document; its `issuer` must be the one asked for.
    pub async fn discover(&self, issuer: &str) -> Result<Discovery, SsoError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document: Discovery = serde_json::from_value(self.get(&url, None).await?)
            .map_err(|e| SsoError::Issuer(format!("its discovery document does not read: {e}")))?;
        if document.issuer != issuer {
            return Err(SsoError::Issuer(format!(
                "its discovery document names issuer {:?}, not {issuer:?}",
                document.issuer
            )));
        }
        if document
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| !methods.iter().any(|m| m == "S256"))
        {
            return Err(SsoError::Issuer(
                "it does not support PKCE with S256".into(),
            ));
        }
        Ok(document)
    }

    /// Where to send the person: the issuer's authorization endpoint, asking for a code.
    pub fn authorization_url(
        &self,
        discovery: &Discovery,
        client_id: &str,
        redirect_uri: &str,
        login: &PendingLogin,
    ) -> Result<String, SsoError> {
        let mut url = url::Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| SsoError::Issuer(format!("its authorization endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &login.code_challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    /// Trades the code for tokens and checks the ID token; fills in from the userinfo
    /// endpoint what the ID token does not carry.
    pub async fn finish(
        &self,
        discovery: &Discovery,
        client: &Client<'_>,
        login: &PendingLogin,
        code: &str,
    ) -> Result<Identity, SsoError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri),
            ("code_verifier", &login.code_verifier),
        ];
        if client.secret.is_none() {
            form.push(("client_id", client.id));
        }
        let tokens = self
            .post_form(
                &discovery.token_endpoint,
                &form,
                client.secret.map(|s| (client.id, s)),
            )
            .await?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| SsoError::Refused("the issuer sent no ID token".into()))?;
        let keys: JwkSet = serde_json::from_value(self.get(&discovery.jwks_uri, None).await?)
            .map_err(|e| SsoError::Issuer(format!("its key set does not read: {e}")))?;
        let mut identity =
            verify_id_token(id_token, &keys, &login.issuer, client.id, &login.nonce)?;
        if identity.email.is_none() {
            if let (Some(endpoint), Some(access)) = (
                discovery.userinfo_endpoint.as_deref(),
                tokens["access_token"].as_str(),
            ) {
                let info = self.get(endpoint, Some(access)).await?;
                if info["sub"].as_str() != Some(identity.subject.as_str()) {
                    return Err(SsoError::Refused(
                        "the userinfo endpoint answered for another subject".into(),
                    ));
                }
                identity.email = info["email"].as_str().map(str::to_string);
                identity.email_verified = verified(&info["email_verified"]);
                identity.name = identity
                    .name
                    .or_else(|| info["name"].as_str().map(str::to_string));
            }
        }
        Ok(identity)
    }

    async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Value, SsoError> {
        let (client, url) = self.client_for(url).await?;
        let mut request = client.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read_json(request).await
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Value, SsoError> {
        let (client, url) = self.client_for(url).await?;
        let mut request = client
            .post(url)
            .header("accept", "application/json")
            .form(form);
        if let Some((id, secret)) = basic {
            // RFC 6749 2.3.1: both are form-encoded before they are joined.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(id), Some(encode(secret)));
        }
        read_json(request).await
    }

    /// A client that connects only to the URL's addresses, each checked against the
    /// allowance (a name that resolves elsewhere a moment later is not asked again); no
    /// redirects are followed.
    async fn client_for(&self, text: &str) -> Result<(reqwest::Client, url::Url), SsoError> {
        let url = address::parse_url(text).map_err(|e| SsoError::Issuer(format!("{text} {e}")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| SsoError::Issuer(format!("{text} has no port")))?;
        let (name, addresses) = match url.host() {
            Some(url::Host::Domain(name)) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|e| SsoError::Issuer(format!("{name} does not resolve: {e}")))?
                    .collect();
                (Some(name.to_string()), found)
            }
            Some(url::Host::Ipv4(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
            None => return Err(SsoError::Issuer(format!("{text} has no host"))),
        };
        if addresses.is_empty() {
            return Err(SsoError::Issuer(format!("{text} has no address")));
        }
        for socket in &addresses {
            if !self.allowance.permits(*socket) {
                return Err(SsoError::Issuer(format!(
                    "{text} is at an internal address ({socket}); issuers may be there only \
                     when SSO_ALLOW_PRIVATE allows it"
                )));
            }
            if url.scheme() != "https" && !address::is_internal(socket.ip()) {
                return Err(SsoError::Issuer(format!(
                    "{text} must be https: only an allowed internal issuer may be plain http"
                )));
            }
        }
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("Expense-Wise/", env!("CARGO_PKG_VERSION")));
        if let Some(name) = &name {
            client = client.resolve_to_addrs(name, &addresses);
        }
        let client = client
            .build()
            .map_err(|e| SsoError::Issuer(format!("cannot make an HTTP client: {e}")))?;
        Ok((client, url))
    }
}

/// The organization's client at its issuer.
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: Option<&'a str>,
    pub redirect_uri: &'a str,
}

async fn read_json(request: reqwest::RequestBuilder) -> Result<Value, SsoError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| SsoError::Issuer(format!("{e:#}")))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SsoError::Issuer(format!("{e:#}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err(SsoError::Issuer("its answer is too large".into()));
        }
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|_| SsoError::Issuer(format!("answered HTTP {} without JSON", status.as_u16())))?;
    if status.is_client_error() {
        // The code or the client was not accepted: a failed sign-in, not a broken issuer.
        let error = value["error"].as_str().unwrap_or("unknown error");
        return Err(SsoError::Refused(format!("the issuer refused: {error}")));
    }
    if !status.is_success() {
        return Err(SsoError::Issuer(format!(
            "answered HTTP {}",
            status.as_u16()
        )));
    }
    Ok(value)
}

fn verified(value: &Value) -> bool {
    // Some issuers send the boolean as a string.
    value.as_bool() == Some(true) || value.as_str() == Some("true")
}

/// Checks an ID token (OpenID Connect Core 3.1.3.7): signed by one of the issuer's keys
/// with an asymmetric algorithm, issued by `issuer` for `client_id` (and, with several
/// audiences, authorized for it), not expired, and answering this sign-in's `nonce`.
pub fn verify_id_token(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<Identity, SsoError> {
    let refused = |why: &str| SsoError::Refused(format!("the ID token {why}"));
    let header = jsonwebtoken::decode_header(token).map_err(|_| refused("does not read"))?;
    let asymmetric = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    if !asymmetric.contains(&header.alg) {
        return Err(refused("is not signed with a public-key algorithm"));
    }
    let key = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| refused("is signed with a key the issuer does not publish"))?;
    let key = DecodingKey::from_jwk(key).map_err(|_| refused("names a key that does not read"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECONDS;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidIssuer => refused("is from another issuer"),
                ErrorKind::InvalidAudience => refused("is for another client"),
                ErrorKind::ExpiredSignature => refused("has expired"),
                ErrorKind::InvalidSignature => refused("has a signature that does not verify"),
                _ => refused(&format!("is not valid ({e})")),
            }
        })?
        .claims;
    if let Some(audiences) = claims["aud"].as_array() {
        if audiences.len() > 1 && claims["azp"].as_str() != Some(client_id) {
            return Err(refused("is authorized for another client"));
        }
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(refused(
            "answers another sign-in (its nonce does not match)",
        ));
    }
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| refused("names no subject"))?;
    Ok(Identity {
        subject: subject.to_string(),
        email: claims["email"].as_str().map(str::to_string),
        email_verified: verified(&claims["email_verified"]),
        name: claims["name"].as_str().map(str::to_string),
    })
}
