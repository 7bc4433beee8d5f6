//! Process configuration: read once from the environment (and `.env`), validated, with
//! one clear line naming the variable when something is wrong. Secrets are wrapped so
//! they never reach a log.
//!
//! Each section parses its own variables through the same readers (`source.rs`);
//! parsing reads no file except a secret's `NAME_FILE` and writes none. The files that
//! variables name are checked by [`Config::load`] before parsing, and the local signing
//! secret and master key are made by [`local_secret`] and [`local_data_key`] when a
//! server starts.

mod local_secret;
mod sections;
mod source;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use local_secret::{local_audit_key, local_data_key, local_secret};
pub use sections::{
    AuditConfig, AuthConfig, DatabaseConfig, HttpConfig, KeysConfig, KmsConfig, LimitsConfig,
    MailConfig, OcrConfig, OcrsModels, RateLimit, ReadReplicaConfig, ReceiptRetention,
    ReceiptStorage, RetentionMode, SmtpConfig, SmtpSecurity, SsoConfig, StreamConfig,
    TelemetryConfig, WebhookConfig, DEFAULT_OCR_LANGUAGES, DEFAULT_PDF_PAGES,
    DEFAULT_TESSERACT_LIBRARY, PPOCR_FILES,
};
use source::Source;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

fn invalid(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
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
    /// Where the embedded default keeps its database, receipts, mails and secret.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub stream: StreamConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub keys: KeysConfig,
    pub audit: AuditConfig,
    pub receipts: ReceiptStorage,
    pub receipt_retention: ReceiptRetention,
    pub mail: MailConfig,
    pub ocr: OcrConfig,
    pub telemetry: TelemetryConfig,
    pub limits: LimitsConfig,
    pub webhooks: WebhookConfig,
    pub sso: SsoConfig,
}

/// Shortest JWT secret accepted in production: 256 bits for HS256.
pub const MIN_PRODUCTION_SECRET_LEN: usize = 32;

impl Config {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is normal; a malformed one is not silently half-read.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(invalid(".env", e.to_string()));
            }
        }
        Self::load(|name| std::env::var(name).ok())
    }

    /// The files the variables name are checked first — they exist and hold what they
    /// should — so a typo stops the process at start rather than at the first receipt
    /// or mail; then the configuration is parsed.
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let source = Source::new(&lookup);
        if let Some(folder) = source.get("PPOCR_MODELS") {
            if let Some(missing) = PPOCR_FILES
                .iter()
                .find(|file| !Path::new(&folder).join(file).is_file())
            {
                return Err(invalid(
                    "PPOCR_MODELS",
                    format!(
                        "{folder} has no {missing} (it needs {})",
                        PPOCR_FILES.join(", ")
                    ),
                ));
            }
        }
        for variable in [
            "OCRS_DETECTION_MODEL",
            "OCRS_RECOGNITION_MODEL",
            "DATA_KEY_FILE",
            "DATA_KEY_PREVIOUS_FILE",
            "AUDIT_SIGNING_KEY_FILE",
        ] {
            if let Some(path) = source.get(variable) {
                if !Path::new(&path).is_file() {
                    return Err(invalid(variable, format!("{path} is not a file")));
                }
            }
        }
        if let Some(path) = source.get("SMTP_CA_FILE") {
            let pem = std::fs::read(&path)
                .map_err(|e| invalid("SMTP_CA_FILE", format!("cannot read {path}: {e}")))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "SMTP_CA_FILE",
                    format!("{path} holds no PEM certificate"),
                ));
            }
        }
        Self::from_lookup(lookup)
    }

    /// Parses the configuration from any variable source (the environment, or a map in
    /// tests), reading no file but a secret's `NAME_FILE`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let source = Source::new(&lookup);
        let app_env = source.choice(
            "APP_ENV",
            "development",
            &[
                ("development", AppEnv::Development),
                ("test", AppEnv::Test),
                ("production", AppEnv::Production),
            ],
        )?;
        let data_dir = PathBuf::from(source.get_or("DATA_DIR", "./data"));
        Ok(Config {
            database: DatabaseConfig::parse(&source, &data_dir)?,
            stream: StreamConfig::parse(&source)?,
            http: HttpConfig::parse(&source)?,
            auth: AuthConfig::parse(&source, app_env)?,
            keys: KeysConfig::parse(&source, app_env, &data_dir)?,
            audit: AuditConfig::parse(&source, app_env, &data_dir)?,
            receipts: ReceiptStorage::parse(&source, &data_dir)?,
            receipt_retention: ReceiptRetention::parse(&source)?,
            mail: MailConfig::parse(&source)?,
            ocr: OcrConfig::parse(&source, &data_dir)?,
            telemetry: TelemetryConfig::parse(&source)?,
            limits: LimitsConfig::parse(&source)?,
            webhooks: WebhookConfig::parse(&source)?,
            sso: SsoConfig::parse(&source)?,
            app_env,
            data_dir,
        })
    }
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
