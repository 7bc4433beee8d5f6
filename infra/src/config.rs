//! Process configuration: read once from the environment (and `.env`), validated, with
//! one clear line naming the variable when something is wrong. Secrets are wrapped so
//! they never reach a log.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn invalid(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// A value that must not be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    /// JetStream fan-out; `None` means events are read straight from the store.
    pub nats_url: Option<String>,
    pub jwt_secret: Secret,
    pub jwt_expires_in: Duration,
    pub log_level: String,
    /// Largest JSON request body accepted, in bytes.
    pub json_body_limit: usize,
    /// Where receipt files are kept.
    pub receipt_storage: ReceiptStorage,
    /// Largest receipt file accepted, in bytes.
    pub receipt_max_bytes: u64,
    /// The `tesseract` program the OCR worker runs where the ocrs models are absent.
    pub tesseract_path: String,
    /// The ocrs engine's detection and recognition models; `None` means Tesseract.
    pub ocrs_models: Option<OcrsModels>,
    /// The most reading one receipt may take.
    pub ocr_time_limit: Duration,
    pub mail: MailConfig,
    /// Where people reach the product: the base of links in mails.
    pub public_url: String,
    /// Requests per client (user, or address when anonymous) and window.
    pub rate_limit: RateLimit,
    /// The stricter limit on sign-in and registration attempts per address.
    pub auth_rate_limit: RateLimit,
    /// Where traces go (OTLP over HTTP); `None`: nowhere.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub window: Duration,
    pub max: u64,
}

/// Who mails come from, and how they leave.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub from: lettre::message::Mailbox,
    /// `None`: mails are written as `.eml` files under `DATA_DIR/mail`.
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// `SMTP_USER` with `SMTP_PASSWORD` (or `SMTP_PASSWORD_FILE`).
    pub credentials: Option<(String, Secret)>,
    /// `SMTP_CA_FILE`: PEM certificates trusted besides the system's, for a server whose
    /// certificate a private CA signed.
    pub ca_certificates: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a server on this machine or a test.
    None,
}

/// Where the ocrs engine's two model files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrsModels {
    pub detection: PathBuf,
    pub recognition: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStorage {
    /// A directory on this machine (the embedded default: `DATA_DIR/receipts`).
    Local(PathBuf),
    /// An S3 bucket, or a bucket of any S3-compatible server at `endpoint_url`.
    /// Credentials come from the AWS default chain (`AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`, a web identity, an instance role, …).
    S3 {
        bucket: String,
        region: String,
        endpoint_url: Option<String>,
        /// `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (or `_FILE`); without them
        /// the AWS default chain finds credentials (web identity, instance role, …).
        credentials: Option<(String, Secret)>,
    },
}

/// Shortest JWT secret accepted in production: 256 bits for HS256.
pub const MIN_PRODUCTION_SECRET_LEN: usize = 32;

impl Config {
    /// How `DATABASE_MAX_CONNECTIONS` is shared on PostgreSQL: half (rounded down) are
    /// the event store's own, for appends, the rest the pool's. SQLite has only the pool.
    pub fn database_connections(&self) -> (u32, u32) {
        let total = self.database_max_connections;
        let postgres = self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://");
        let appends = if postgres { total / 2 } else { 0 };
        (total - appends, appends)
    }

    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is normal; a malformed one is not silently half-read.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(invalid(".env", e.to_string()));
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (the environment, or a map in
    /// tests). `NAME_FILE` is honoured for secrets mounted as files.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let app_env = match get("APP_ENV").as_deref().unwrap_or("development") {
            "development" => AppEnv::Development,
            "test" => AppEnv::Test,
            "production" => AppEnv::Production,
            other => {
                return Err(invalid(
                    "APP_ENV",
                    format!("'{other}' is not one of development, test, production"),
                ))
            }
        };
        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| invalid("HOST", format!("'{v}' is not an IP address")))?,
        };
        let port = parse_number("PORT", get("PORT"), 4000u16)?;
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        // It carries the database password: it may come from a mounted file.
        let database_url = read_secret(&get, "DATABASE_URL")?
            .map(|url| url.expose().to_string())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("expensewise.db").display()));
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite:"))
        {
            return Err(invalid(
                "DATABASE_URL",
                "must start with postgres:// or sqlite:",
            ));
        }
        let database_max_connections = parse_number(
            "DATABASE_MAX_CONNECTIONS",
            get("DATABASE_MAX_CONNECTIONS"),
            10u32,
        )?;
        if database_max_connections == 0 {
            return Err(invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        let nats_url = get("NATS_URL");
        if let Some(url) = &nats_url {
            if !(url.starts_with("nats://")
                || url.starts_with("tls://")
                || url.starts_with("ws://")
                || url.starts_with("wss://"))
            {
                return Err(invalid(
                    "NATS_URL",
                    "must start with nats://, tls://, ws:// or wss://",
                ));
            }
        }
        let jwt_expires_in = match get("JWT_EXPIRES_IN") {
            None => Duration::from_secs(7 * 24 * 3600),
            Some(v) => parse_duration(&v).map_err(|m| invalid("JWT_EXPIRES_IN", m))?,
        };
        let jwt_secret = read_secret(&get, "JWT_SECRET")?;
        let jwt_secret = match (jwt_secret, app_env) {
            (Some(s), AppEnv::Production) if s.expose().len() < MIN_PRODUCTION_SECRET_LEN => {
                return Err(invalid(
                    "JWT_SECRET",
                    format!(
                        "must be at least {MIN_PRODUCTION_SECRET_LEN} characters in production"
                    ),
                ))
            }
            (Some(s), _) => s,
            (None, AppEnv::Production) => {
                return Err(invalid("JWT_SECRET", "is required in production"))
            }
            (None, _) => local_secret(&data_dir)?,
        };
        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".into());
        let json_body_limit =
            parse_number("JSON_BODY_LIMIT", get("JSON_BODY_LIMIT"), 1usize << 20)?;
        let endpoint_url = get("S3_ENDPOINT_URL");
        if let Some(url) = &endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "S3_ENDPOINT_URL",
                    "must start with http:// or https://",
                ));
            }
        }
        let credentials = match (
            get("AWS_ACCESS_KEY_ID"),
            read_secret(&get, "AWS_SECRET_ACCESS_KEY")?,
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "AWS_SECRET_ACCESS_KEY",
                    "is required with AWS_ACCESS_KEY_ID",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "AWS_ACCESS_KEY_ID",
                    "is required with AWS_SECRET_ACCESS_KEY",
                ))
            }
        };
        let receipt_storage = match get("AWS_S3_BUCKET") {
            Some(bucket) => ReceiptStorage::S3 {
                bucket,
                region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
                endpoint_url,
                credentials,
            },
            None if endpoint_url.is_some() => {
                return Err(invalid(
                    "AWS_S3_BUCKET",
                    "is required when S3_ENDPOINT_URL is set",
                ))
            }
            None => ReceiptStorage::Local(data_dir.join("receipts")),
        };
        let receipt_max_bytes =
            parse_number("RECEIPT_MAX_BYTES", get("RECEIPT_MAX_BYTES"), 10u64 << 20)?;
        if receipt_max_bytes == 0 {
            return Err(invalid("RECEIPT_MAX_BYTES", "must be at least 1"));
        }
        let tesseract_path = get("TESSERACT_PATH").unwrap_or_else(|| "tesseract".into());
        let model = |name: &'static str| match get(name) {
            Some(path) if !Path::new(&path).is_file() => {
                Err(invalid(name, format!("{path} is not a file")))
            }
            path => Ok(path.map(PathBuf::from)),
        };
        let ocrs_models = match (
            model("OCRS_DETECTION_MODEL")?,
            model("OCRS_RECOGNITION_MODEL")?,
        ) {
            (Some(detection), Some(recognition)) => Some(OcrsModels {
                detection,
                recognition,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "OCRS_RECOGNITION_MODEL",
                    "is required when OCRS_DETECTION_MODEL is set",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "OCRS_DETECTION_MODEL",
                    "is required when OCRS_RECOGNITION_MODEL is set",
                ))
            }
        };
        let ocr_time_limit = match get("OCR_TIME_LIMIT") {
            None => Duration::from_secs(30),
            Some(v) => parse_duration(&v).map_err(|m| invalid("OCR_TIME_LIMIT", m))?,
        };
        let from = get("MAIL_FROM").unwrap_or_else(|| "Expense-Wise <no-reply@localhost>".into());
        let from = from
            .parse()
            .map_err(|e| invalid("MAIL_FROM", format!("'{from}' is not a mail address: {e}")))?;
        let smtp = match get("SMTP_HOST") {
            None => None,
            Some(host) => {
                let security = match get("SMTP_SECURITY").as_deref().unwrap_or("starttls") {
                    "starttls" => SmtpSecurity::StartTls,
                    "tls" => SmtpSecurity::Tls,
                    "none" => SmtpSecurity::None,
                    other => {
                        return Err(invalid(
                            "SMTP_SECURITY",
                            format!("'{other}' is not one of starttls, tls, none"),
                        ))
                    }
                };
                let default_port = if security == SmtpSecurity::Tls {
                    465
                } else {
                    587
                };
                let port = parse_number("SMTP_PORT", get("SMTP_PORT"), default_port)?;
                let credentials = match (get("SMTP_USER"), read_secret(&get, "SMTP_PASSWORD")?) {
                    (Some(user), Some(password)) => Some((user, password)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(invalid(
                            "SMTP_PASSWORD",
                            "is required when SMTP_USER is set",
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            "SMTP_USER",
                            "is required when SMTP_PASSWORD is set",
                        ))
                    }
                };
                let ca_certificates = match get("SMTP_CA_FILE") {
                    None => None,
                    Some(path) => {
                        let pem = std::fs::read(&path).map_err(|e| {
                            invalid("SMTP_CA_FILE", format!("cannot read {path}: {e}"))
                        })?;
                        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                            return Err(invalid(
                                "SMTP_CA_FILE",
                                format!("{path} holds no PEM certificate"),
                            ));
                        }
                        Some(pem)
                    }
                };
                Some(SmtpConfig {
                    host,
                    port,
                    security,
                    credentials,
                    ca_certificates,
                })
            }
        };
        let public_url = get("PUBLIC_URL")
            .unwrap_or_else(|| format!("http://localhost:{port}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(invalid("PUBLIC_URL", "must start with http:// or https://"));
        }
        let limit = |window_var: &'static str,
                     max_var: &'static str,
                     window_ms: u64,
                     max: u64|
         -> Result<RateLimit, ConfigError> {
            let window = parse_number(window_var, get(window_var), window_ms)?;
            if window == 0 {
                return Err(invalid(window_var, "must be at least 1 (milliseconds)"));
            }
            let max = parse_number(max_var, get(max_var), max)?;
            if max == 0 {
                return Err(invalid(max_var, "must be at least 1"));
            }
            Ok(RateLimit {
                window: Duration::from_millis(window),
                max,
            })
        };
        let rate_limit = limit("RATE_LIMIT_WINDOW", "RATE_LIMIT_MAX", 3_600_000, 1000)?;
        let auth_rate_limit = limit("AUTH_RATE_LIMIT_WINDOW", "AUTH_RATE_LIMIT_MAX", 900_000, 20)?;
        let otlp_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(endpoint) = &otlp_endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(invalid(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "must start with http:// or https:// (OTLP over HTTP)",
                ));
            }
        }

        Ok(Config {
            app_env,
            host,
            port,
            data_dir,
            database_url,
            database_max_connections,
            nats_url,
            jwt_secret,
            jwt_expires_in,
            log_level,
            json_body_limit,
            receipt_storage,
            receipt_max_bytes,
            tesseract_path,
            ocrs_models,
            ocr_time_limit,
            mail: MailConfig { from, smtp },
            public_url,
            rate_limit,
            auth_rate_limit,
            otlp_endpoint,
        })
    }
}

fn parse_number<T: std::str::FromStr>(
    variable: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(variable, format!("'{v}' is not a valid number"))),
    }
}

/// `NAME` or the contents of the file named by `NAME_FILE` (not both).
fn read_secret(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    let file_variable: &'static str = match variable {
        "JWT_SECRET" => "JWT_SECRET_FILE",
        "AWS_SECRET_ACCESS_KEY" => "AWS_SECRET_ACCESS_KEY_FILE",
        "SMTP_PASSWORD" => "SMTP_PASSWORD_FILE",
        "DATABASE_URL" => "DATABASE_URL_FILE",
        _ => variable,
    };
    match (get(variable), get(file_variable)) {
        (Some(_), Some(_)) => Err(invalid(
            variable,
            format!("set either {variable} or {file_variable}, not both"),
        )),
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(file_variable, format!("cannot read {path}: {e}")))?;
            Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
        }
        (None, None) => Ok(None),
    }
}

/// Outside production a missing JWT secret is generated once and kept in the data
/// directory, so tokens survive restarts of a local installation.
fn local_secret(data_dir: &Path) -> Result<Secret, ConfigError> {
    let path = data_dir.join("jwt-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if text.trim().len() >= MIN_PRODUCTION_SECRET_LEN {
            return Ok(Secret::new(text.trim()));
        }
    }
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(|e| {
        invalid(
            "DATA_DIR",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    write_private(&path, &secret)
        .map_err(|e| invalid("DATA_DIR", format!("cannot write {}: {e}", path.display())))?;
    Ok(Secret::new(secret))
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

/// Durations as the seed's configuration writes them: `7d`, `12h`, `30m`, `45s`, or a
/// plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 7d, 12h, 30m or 3600"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("'{text}' has an unknown unit (use s, m, h or d)")),
    };
    if seconds == 0 {
        return Err("must be longer than zero".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn production_refuses_a_missing_or_weak_secret() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        let ok = config(&[("APP_ENV", "production"), ("JWT_SECRET", &"k".repeat(32))]).unwrap();
        assert_eq!(ok.jwt_secret.expose().len(), 32);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(config(&[("PORT", "http")]).unwrap_err().variable, "PORT");
        assert_eq!(
            config(&[("JWT_EXPIRES_IN", "7w"), ("JWT_SECRET", "x")])
                .unwrap_err()
                .variable,
            "JWT_EXPIRES_IN"
        );
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://x")])
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("APP_ENV", "prod")]).unwrap_err().variable,
            "APP_ENV"
        );
        assert_eq!(
            config(&[("OCRS_DETECTION_MODEL", "/nonexistent/detection.rten")])
                .unwrap_err()
                .variable,
            "OCRS_DETECTION_MODEL"
        );
        let model = std::env::current_exe().unwrap();
        let model = model.to_str().unwrap();
        assert_eq!(
            config(&[("OCRS_DETECTION_MODEL", model)])
                .unwrap_err()
                .variable,
            "OCRS_RECOGNITION_MODEL"
        );
        let both = config(&[
            ("OCRS_DETECTION_MODEL", model),
            ("OCRS_RECOGNITION_MODEL", model),
        ])
        .unwrap();
        assert!(both.ocrs_models.is_some());
        assert!(config(&[]).unwrap().ocrs_models.is_none());
        assert_eq!(
            config(&[("SMTP_HOST", "mail.test"), ("SMTP_SECURITY", "ssl")])
                .unwrap_err()
                .variable,
            "SMTP_SECURITY"
        );
        assert_eq!(
            config(&[("SMTP_HOST", "mail.test"), ("SMTP_USER", "bot")])
                .unwrap_err()
                .variable,
            "SMTP_PASSWORD"
        );
        assert_eq!(
            config(&[("MAIL_FROM", "not an address")])
                .unwrap_err()
                .variable,
            "MAIL_FROM"
        );
        let smtp = config(&[("SMTP_HOST", "mail.test"), ("SMTP_SECURITY", "tls")])
            .unwrap()
            .mail
            .smtp
            .unwrap();
        assert_eq!((smtp.port, smtp.security), (465, SmtpSecurity::Tls));
        assert!(config(&[]).unwrap().mail.smtp.is_none());
        assert_eq!(
            config(&[("SMTP_HOST", "mail.test"), ("SMTP_CA_FILE", "Cargo.toml")])
                .unwrap_err()
                .variable,
            "SMTP_CA_FILE"
        );
        assert_eq!(
            config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")])
                .unwrap_err()
                .variable,
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        );
    }

    #[test]
    fn secrets_can_come_from_files_and_never_print() {
        let dir = std::env::temp_dir().join(format!("ew-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-a-file-0123456789-0123456789\n").unwrap();
        let c = config(&[("JWT_SECRET_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(c.jwt_secret.expose(), "from-a-file-0123456789-0123456789");
        let url = dir.join("database-url");
        std::fs::write(&url, "postgres://app:pw@db:5432/expensewise\n").unwrap();
        let c = config(&[("DATABASE_URL_FILE", url.to_str().unwrap())]).unwrap();
        assert_eq!(c.database_url, "postgres://app:pw@db:5432/expensewise");
        assert!(!format!("{c:?}").contains("from-a-file"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_local_secret_is_generated_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("ew-local-{}", std::process::id()));
        let data_dir = dir.to_str().unwrap();
        let first = config(&[("DATA_DIR", data_dir)]).unwrap().jwt_secret;
        let second = config(&[("DATA_DIR", data_dir)]).unwrap().jwt_secret;
        assert_eq!(first, second);
        assert!(first.expose().len() >= MIN_PRODUCTION_SECRET_LEN);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn durations_read_like_the_seed_writes_them() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("").is_err());
    }
}
