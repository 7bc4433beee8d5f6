//! The configuration's sections, each parsed from its own variables.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::source::{both_or_neither, with_scheme, Source};
use super::{invalid, AppEnv, ConfigError, Secret, MIN_PRODUCTION_SECRET_LEN};
use crate::db::is_postgres_url;

/// PostgreSQL's two spellings and SQLite's.
const DATABASE_SCHEMES: [&str; 3] = ["postgres://", "postgresql://", "sqlite:"];

const HTTP_SCHEMES: [&str; 2] = ["http://", "https://"];

/// Where events are kept.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    /// A streaming replica of the database that queries read their read models from.
    pub read_replica: Option<ReadReplicaConfig>,
}

/// `DATABASE_READ_URL` and `READ_REPLICA_MAX_LAG`.
#[derive(Debug, Clone)]
pub struct ReadReplicaConfig {
    pub url: String,
    /// Behind by more than this, the replica is not read: queries go to the primary. It
    /// is also how long a query waits on the replica for a write before it asks the
    /// primary instead.
    pub max_lag: Duration,
}

impl DatabaseConfig {
    pub(super) fn parse(source: &Source, data_dir: &Path) -> Result<Self, ConfigError> {
        // It carries the database password: it may come from a mounted file.
        let url = source
            .secret("DATABASE_URL")?
            .map(|url| url.expose().to_string())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("expensewise.db").display()));
        let url = with_scheme("DATABASE_URL", url, &DATABASE_SCHEMES)?;
        let read_replica = match source.secret("DATABASE_READ_URL")? {
            None => None,
            Some(_) if !is_postgres_url(&url) => {
                return Err(invalid(
                    "DATABASE_READ_URL",
                    "a read replica needs DATABASE_URL to be PostgreSQL",
                ))
            }
            Some(read) if !is_postgres_url(read.expose()) => {
                return Err(invalid(
                    "DATABASE_READ_URL",
                    "must start with postgres:// or postgresql:// (a streaming replica)",
                ))
            }
            Some(read) => Some(ReadReplicaConfig {
                url: read.expose().to_string(),
                max_lag: source.duration("READ_REPLICA_MAX_LAG", Duration::from_secs(1))?,
            }),
        };
        Ok(Self {
            url,
            max_connections: source.positive("DATABASE_MAX_CONNECTIONS", 10)?,
            read_replica,
        })
    }

    /// How `DATABASE_MAX_CONNECTIONS` is shared on PostgreSQL: half (rounded down) are
    /// the event store's own, for appends, the rest the pool's. On SQLite one of them is
    /// the one writing connection, the rest read (`db::SqlitePools`).
    pub fn connections(&self) -> (u32, u32) {
        let total = self.max_connections;
        let appends = if is_postgres_url(&self.url) {
            total / 2
        } else {
            0
        };
        (total - appends, appends)
    }
}

/// How events fan out to other processes.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// JetStream; `None` means every reader tails the store itself.
    pub nats_url: Option<String>,
}

impl StreamConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            nats_url: source.url("NATS_URL", &["nats://", "tls://", "ws://", "wss://"])?,
        })
    }
}

/// Where the API listens and where people reach it.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub host: IpAddr,
    pub port: u16,
    /// The base of links in mails.
    pub public_url: String,
    /// After SIGTERM, how long `/ready` fails while requests are still served, so that
    /// load balancers stop sending before the listener closes.
    pub drain: Duration,
}

impl HttpConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let host = match source.get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| invalid("HOST", format!("'{v}' is not an IP address")))?,
        };
        let port = source.number("PORT", 4000u16)?;
        let public_url = source
            .url("PUBLIC_URL", &HTTP_SCHEMES)?
            .unwrap_or_else(|| format!("http://localhost:{port}"))
            .trim_end_matches('/')
            .to_string();
        // 0 is a choice here (no drain), which other durations do not allow.
        let drain = match source.get("SHUTDOWN_DRAIN").as_deref().map(str::trim) {
            Some("0") => Duration::ZERO,
            _ => source.duration("SHUTDOWN_DRAIN", Duration::ZERO)?,
        };
        Ok(Self {
            host,
            port,
            public_url,
            drain,
        })
    }
}

/// How sign-in tokens are signed and how long they last.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `None` outside production: the process keeps a generated one under `DATA_DIR`
    /// (see [`AuthConfig::signing_secret`]).
    pub jwt_secret: Option<Secret>,
    /// The secret before a rotation: tokens it signed stay valid until they expire.
    pub jwt_previous_secret: Option<Secret>,
    pub jwt_expires_in: Duration,
}

impl AuthConfig {
    pub(super) fn parse(source: &Source, app_env: AppEnv) -> Result<Self, ConfigError> {
        let jwt_secret = source.secret("JWT_SECRET")?;
        let jwt_previous_secret = source.secret("JWT_PREVIOUS_SECRET")?;
        if let (Some(s), AppEnv::Production) = (&jwt_previous_secret, app_env) {
            if s.expose().len() < MIN_PRODUCTION_SECRET_LEN {
                return Err(invalid(
                    "JWT_PREVIOUS_SECRET",
                    format!(
                        "must be at least {MIN_PRODUCTION_SECRET_LEN} characters in production"
                    ),
                ));
            }
        }
        match (&jwt_secret, app_env) {
            (Some(s), AppEnv::Production) if s.expose().len() < MIN_PRODUCTION_SECRET_LEN => {
                return Err(invalid(
                    "JWT_SECRET",
                    format!(
                        "must be at least {MIN_PRODUCTION_SECRET_LEN} characters in production"
                    ),
                ))
            }
            (None, AppEnv::Production) => {
                return Err(invalid("JWT_SECRET", "is required in production"))
            }
            _ => {}
        }
        Ok(Self {
            jwt_secret,
            jwt_previous_secret,
            jwt_expires_in: source
                .duration("JWT_EXPIRES_IN", Duration::from_secs(7 * 24 * 3600))?,
        })
    }
}

/// Where receipt files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStorage {
    /// A directory on this machine (the embedded default: `DATA_DIR/receipts`).
    Local(PathBuf),
    /// An S3 bucket, or a bucket of any S3-compatible server at `endpoint_url`.
    S3 {
        bucket: String,
        region: String,
        endpoint_url: Option<String>,
        /// `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (or `_FILE`); without them
        /// the AWS default chain finds credentials (web identity, instance role, …).
        credentials: Option<(String, Secret)>,
    },
}

impl ReceiptStorage {
    pub(super) fn parse(source: &Source, data_dir: &Path) -> Result<Self, ConfigError> {
        match source.get("AWS_S3_BUCKET") {
            Some(bucket) => Self::s3(source, bucket),
            None if source.get("S3_ENDPOINT_URL").is_some()
                && source.get("AUDIT_CHECKPOINT_BUCKET").is_none() =>
            {
                Err(invalid(
                    "AWS_S3_BUCKET",
                    "is required when S3_ENDPOINT_URL is set",
                ))
            }
            None => Ok(ReceiptStorage::Local(data_dir.join("receipts"))),
        }
    }

    /// `bucket` on the S3 server the configuration names (`S3_ENDPOINT_URL`,
    /// `AWS_REGION`, credentials): the receipts' bucket, or the audit checkpoints'.
    pub(super) fn s3(source: &Source, bucket: String) -> Result<Self, ConfigError> {
        Ok(ReceiptStorage::S3 {
            bucket,
            region: source.get_or("AWS_REGION", "us-east-1"),
            endpoint_url: source.url("S3_ENDPOINT_URL", &HTTP_SCHEMES)?,
            credentials: both_or_neither(
                ("AWS_ACCESS_KEY_ID", source.get("AWS_ACCESS_KEY_ID")),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    source.secret("AWS_SECRET_ACCESS_KEY")?,
                ),
            )?,
        })
    }
}

/// How long receipt files are kept from deletion: booking vouchers that tax law requires
/// to keep (Germany: 8 years, §147 AO, counted from the end of the calendar year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptRetention {
    /// `RECEIPT_RETENTION_YEARS` (default 8); 0 keeps receipts under no lock.
    pub years: u32,
    /// `RECEIPT_RETENTION_MODE`: in compliance mode nobody, not even the bucket's owner,
    /// can shorten the lock; in governance mode (the default) a permitted user can.
    pub mode: RetentionMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    Governance,
    Compliance,
}

impl RetentionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "governance",
            RetentionMode::Compliance => "compliance",
        }
    }
}

impl ReceiptRetention {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let years: u32 = source.number("RECEIPT_RETENTION_YEARS", 8)?;
        if years > 30 {
            return Err(invalid("RECEIPT_RETENTION_YEARS", "must be at most 30"));
        }
        let mode = source.choice(
            "RECEIPT_RETENTION_MODE",
            "governance",
            &[
                ("governance", RetentionMode::Governance),
                ("compliance", RetentionMode::Compliance),
            ],
        )?;
        Ok(Self { years, mode })
    }

    /// Until when a receipt stored at `at` is kept: the end of the calendar year plus the
    /// retention years (`None` when receipts are not locked).
    pub fn until(
        &self,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::{Datelike as _, TimeZone as _};
        if self.years == 0 {
            return None;
        }
        let year = at.year() + 1 + self.years as i32;
        chrono::Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single()
    }
}

/// Who mails come from, and how they leave.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub from: lettre::message::Mailbox,
    /// `None`: mails are written as `.eml` files under `DATA_DIR/mail`.
    pub smtp: Option<SmtpConfig>,
    /// A step of an approval chain awaited this long mails its approvers a reminder, once
    /// per step and period (`APPROVAL_REMIND_AFTER`, default 2 days).
    pub remind_after: Duration,
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
    pub ca_file: Option<PathBuf>,
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

impl MailConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let from = source.get_or("MAIL_FROM", "Expense-Wise <no-reply@localhost>");
        let from = from
            .parse()
            .map_err(|e| invalid("MAIL_FROM", format!("'{from}' is not a mail address: {e}")))?;
        let smtp = match source.get("SMTP_HOST") {
            None => None,
            Some(host) => {
                let security = source.choice(
                    "SMTP_SECURITY",
                    "starttls",
                    &[
                        ("starttls", SmtpSecurity::StartTls),
                        ("tls", SmtpSecurity::Tls),
                        ("none", SmtpSecurity::None),
                    ],
                )?;
                let default_port = if security == SmtpSecurity::Tls {
                    465
                } else {
                    587
                };
                Some(SmtpConfig {
                    host,
                    port: source.number("SMTP_PORT", default_port)?,
                    security,
                    credentials: both_or_neither(
                        ("SMTP_USER", source.get("SMTP_USER")),
                        ("SMTP_PASSWORD", source.secret("SMTP_PASSWORD")?),
                    )?,
                    ca_file: source.get("SMTP_CA_FILE").map(PathBuf::from),
                })
            }
        };
        let remind_after =
            source.duration("APPROVAL_REMIND_AFTER", Duration::from_secs(2 * 86_400))?;
        Ok(Self {
            from,
            smtp,
            remind_after,
        })
    }
}

/// How receipts are read.
#[derive(Debug, Clone)]
pub struct OcrConfig {
    /// Tesseract's library, loaded where the ocrs models are absent.
    pub tesseract_library: String,
    /// Tesseract's models, `+`-joined, the first tried first.
    pub tesseract_languages: String,
    /// The ocrs engine's detection and recognition models.
    pub ocrs_models: Option<OcrsModels>,
    /// The folder of the PP-OCR models ([`PPOCR_FILES`]), used where the ocrs models
    /// are absent: `PPOCR_MODELS`, else `DATA_DIR/ppocr` when it holds them (where
    /// `scripts/ppocr-models.sh` puts them). Neither: Tesseract.
    pub ppocr_models: Option<PathBuf>,
    /// The most reading one receipt may take.
    pub time_limit: Duration,
    /// Pages read from the start of a PDF receipt; the rest are ignored.
    pub pdf_max_pages: u32,
}

/// Pages of a PDF read when the operator sets no other limit: a receipt is a page or
/// two, and every page read costs OCR time.
pub const DEFAULT_PDF_PAGES: u32 = 5;

/// Tesseract's models when the operator names none. German first: it has the letters
/// English lacks, and English, sure of its `Miller` for `Müller`, never asks another
/// model. English then rereads the words German is unsure of. Either alone reads fewer
/// merchants on the corpus's photos, German alone fewer dates (docs/benchmarks.md).
pub const DEFAULT_OCR_LANGUAGES: &str = "deu+eng";

/// The files of `PPOCR_MODELS`: the detection model, the recognition model and the
/// recognition model's dictionary (one character a line).
pub const PPOCR_FILES: [&str; 3] = ["detection.onnx", "recognition.onnx", "dictionary.txt"];

/// Where the ocrs engine's two model files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrsModels {
    pub detection: PathBuf,
    pub recognition: PathBuf,
}

impl OcrConfig {
    pub(super) fn parse(source: &Source, data_dir: &Path) -> Result<Self, ConfigError> {
        let fetched = data_dir.join("ppocr");
        let ppocr_models = source.get("PPOCR_MODELS").map(PathBuf::from).or_else(|| {
            PPOCR_FILES
                .iter()
                .all(|file| fetched.join(file).is_file())
                .then_some(fetched)
        });
        let ocrs_models = both_or_neither(
            ("OCRS_DETECTION_MODEL", source.get("OCRS_DETECTION_MODEL")),
            (
                "OCRS_RECOGNITION_MODEL",
                source.get("OCRS_RECOGNITION_MODEL"),
            ),
        )?
        .map(|(detection, recognition)| OcrsModels {
            detection: detection.into(),
            recognition: recognition.into(),
        });
        Ok(Self {
            tesseract_library: tesseract_library(source)?,
            tesseract_languages: languages(source)?,
            ocrs_models,
            ppocr_models,
            time_limit: source.duration("OCR_TIME_LIMIT", Duration::from_secs(30))?,
            pdf_max_pages: source.positive("OCR_PDF_MAX_PAGES", DEFAULT_PDF_PAGES)?,
        })
    }
}

/// `TESSERACT_LIBRARY`. Tesseract was once run as a program, at `TESSERACT_PATH`: a
/// deployment still setting that would otherwise silently get another engine than it
/// names.
fn tesseract_library(source: &Source) -> Result<String, ConfigError> {
    if source.get("TESSERACT_PATH").is_some() {
        return Err(invalid(
            "TESSERACT_PATH",
            "is no longer read: Tesseract is loaded as a library, named by \
             TESSERACT_LIBRARY (default libtesseract.so.5)"
                .to_string(),
        ));
    }
    Ok(source.get_or("TESSERACT_LIBRARY", DEFAULT_TESSERACT_LIBRARY))
}

/// Debian's and Ubuntu's name for Tesseract 5's library (package `libtesseract5`, which
/// `tesseract-ocr` brings), found where the system's loader looks.
pub const DEFAULT_TESSERACT_LIBRARY: &str = "libtesseract.so.5";

/// `OCR_LANGUAGES`: Tesseract's model names (`eng`, `chi_sim`, `script/Latin`) joined
/// by `+`; anything else is a mistake better told at start than at the first receipt.
fn languages(source: &Source) -> Result<String, ConfigError> {
    let languages = source.get_or("OCR_LANGUAGES", DEFAULT_OCR_LANGUAGES);
    let name = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
    };
    if !languages.split('+').all(name) {
        return Err(invalid(
            "OCR_LANGUAGES",
            format!("'{languages}' is not Tesseract's model names joined by '+' (eng+deu)"),
        ));
    }
    Ok(languages)
}

/// Logs and traces.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub log_level: String,
    /// Where traces go (OTLP over HTTP); `None`: nowhere.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            log_level: source.get_or("LOG_LEVEL", "info"),
            // OTLP over HTTP: gRPC's endpoints would need another exporter.
            otlp_endpoint: source.url("OTEL_EXPORTER_OTLP_ENDPOINT", &HTTP_SCHEMES)?,
        })
    }
}

/// How much one client may ask, and how large a request may be.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Largest JSON request body accepted, in bytes.
    pub json_body: usize,
    /// Largest receipt file accepted, in bytes.
    pub receipt_bytes: u64,
    /// Requests per client (user, or address when anonymous) and window.
    pub requests: RateLimit,
    /// The stricter limit on sign-in and registration attempts per address.
    pub sign_ins: RateLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub window: Duration,
    pub max: u64,
}

impl LimitsConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let rate = |window: &str, max: &str, window_ms: u64, max_default: u64| {
            let window_ms: u64 = source.number(window, window_ms)?;
            if window_ms == 0 {
                return Err(invalid(window, "must be at least 1 (milliseconds)"));
            }
            Ok(RateLimit {
                window: Duration::from_millis(window_ms),
                max: source.positive(max, max_default)?,
            })
        };
        Ok(Self {
            json_body: source.number("JSON_BODY_LIMIT", 1usize << 20)?,
            receipt_bytes: source.positive("RECEIPT_MAX_BYTES", 10u64 << 20)?,
            requests: rate("RATE_LIMIT_WINDOW", "RATE_LIMIT_MAX", 3_600_000, 1000)?,
            sign_ins: rate("AUTH_RATE_LIMIT_WINDOW", "AUTH_RATE_LIMIT_MAX", 900_000, 20)?,
        })
    }
}

/// The master key that wraps the data keys personal fields are encrypted with
/// (docs/personal-data.md).
#[derive(Debug, Clone)]
pub struct KeysConfig {
    /// `DATA_KEY_FILE`: 32 bytes as 64 hex digits. Outside production, without it or
    /// KMS, `DATA_DIR/data-key`, made on first start (see [`KeysConfig::generated`]).
    pub file: Option<PathBuf>,
    /// Whether `file` is the generated one, to be made if missing.
    pub generated: bool,
    /// `DATA_KEY_PREVIOUS_FILE`: the file key before a rotation, which still unwraps
    /// what it wrapped until `expensewise keys rotate` has wrapped it anew.
    pub previous_file: Option<PathBuf>,
    /// `KMS_KEY_ID`: wrap with this AWS KMS key instead of a file's.
    pub kms: Option<KmsConfig>,
}

/// A key of AWS KMS, or of a KMS-compatible server at `endpoint_url`.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    pub key_id: String,
    pub region: String,
    /// `KMS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// As for S3: `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY`, else the default chain.
    pub credentials: Option<(String, Secret)>,
}

impl KeysConfig {
    pub(super) fn parse(
        source: &Source,
        app_env: AppEnv,
        data_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let endpoint_url = source.url("KMS_ENDPOINT_URL", &HTTP_SCHEMES)?;
        let kms = match source.get("KMS_KEY_ID") {
            Some(key_id) => Some(KmsConfig {
                key_id,
                region: source.get_or("AWS_REGION", "us-east-1"),
                endpoint_url,
                credentials: both_or_neither(
                    ("AWS_ACCESS_KEY_ID", source.get("AWS_ACCESS_KEY_ID")),
                    (
                        "AWS_SECRET_ACCESS_KEY",
                        source.secret("AWS_SECRET_ACCESS_KEY")?,
                    ),
                )?,
            }),
            None if endpoint_url.is_some() => {
                return Err(invalid(
                    "KMS_KEY_ID",
                    "is required when KMS_ENDPOINT_URL is set",
                ))
            }
            None => None,
        };
        let file = source.get("DATA_KEY_FILE").map(PathBuf::from);
        let generated = file.is_none() && kms.is_none();
        if generated && app_env == AppEnv::Production {
            return Err(invalid(
                "DATA_KEY_FILE",
                "or KMS_KEY_ID is required in production",
            ));
        }
        Ok(Self {
            file: file.or_else(|| generated.then(|| data_dir.join("data-key"))),
            generated,
            previous_file: source.get("DATA_KEY_PREVIOUS_FILE").map(PathBuf::from),
            kms,
        })
    }
}

/// The audit log's signing key and where checkpoints are archived (docs/audit-log.md).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `AUDIT_SIGNING_KEY_FILE`: an Ed25519 signer key as Go's `sumdb/note` writes one
    /// (`PRIVATE+KEY+<name>+<id>+<key>`). Outside production, without it,
    /// `DATA_DIR/audit-signing-key`, made on first start.
    pub key_file: PathBuf,
    /// Whether `key_file` is the generated one, to be made if missing.
    pub generated: bool,
    /// `AUDIT_LOG_ORIGIN`: the name a generated key is given, which is the log's origin
    /// line in every checkpoint.
    pub origin: String,
    /// `AUDIT_CHECKPOINT_BUCKET`: an S3 bucket with Object Lock that every checkpoint is
    /// written to, locked in compliance mode (the S3 settings are the receipts').
    pub checkpoint_bucket: Option<ReceiptStorage>,
    /// `AUDIT_CHECKPOINT_RETENTION_YEARS` (10): how long each archived checkpoint is
    /// locked.
    pub checkpoint_retention_years: u32,
}

impl AuditConfig {
    pub(super) fn parse(
        source: &Source,
        app_env: AppEnv,
        data_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let file = source.get("AUDIT_SIGNING_KEY_FILE").map(PathBuf::from);
        if file.is_none() && app_env == AppEnv::Production {
            return Err(invalid(
                "AUDIT_SIGNING_KEY_FILE",
                "is required in production",
            ));
        }
        let origin = source.get_or("AUDIT_LOG_ORIGIN", "expensewise.local/audit-log");
        if origin.is_empty() || origin.contains(|c: char| c.is_whitespace() || c == '+') {
            return Err(invalid(
                "AUDIT_LOG_ORIGIN",
                "must be a name without spaces or '+', such as example.com/audit-log",
            ));
        }
        Ok(Self {
            generated: file.is_none(),
            key_file: file.unwrap_or_else(|| data_dir.join("audit-signing-key")),
            origin,
            checkpoint_bucket: source
                .get("AUDIT_CHECKPOINT_BUCKET")
                .map(|bucket| ReceiptStorage::s3(source, bucket))
                .transpose()?,
            checkpoint_retention_years: source
                .positive("AUDIT_CHECKPOINT_RETENTION_YEARS", 10u32)?,
        })
    }
}

/// How webhooks are sent (docs/webhooks.md).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `WEBHOOK_ALLOW_PRIVATE`: internal addresses webhooks may go to after all (`true`,
    /// `false` — the default — or a list of addresses, networks and sockets).
    pub allowance: expensewise_domain::webhook::address::Allowance,
    /// `WEBHOOK_TIMEOUT` (10 s): for a whole message, redirects included.
    pub timeout: Duration,
    /// `WEBHOOK_RETRY_FIRST` (10 s), doubling up to `WEBHOOK_RETRY_LONGEST` (12 h),
    /// until `WEBHOOK_GIVE_UP_AFTER` (3 d) has passed since the first attempt.
    pub schedule: expensewise_domain::webhook::retry::Schedule,
    /// `WEBHOOK_LOG_RETENTION` (30 d): how long finished deliveries stay in the log.
    pub log_retention: Duration,
}

impl WebhookConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let allowance = expensewise_domain::webhook::address::Allowance::parse(
            &source.get_or("WEBHOOK_ALLOW_PRIVATE", "false"),
        )
        .map_err(|m| invalid("WEBHOOK_ALLOW_PRIVATE", m))?;
        let chrono_duration =
            |name: &str, default: Duration| -> Result<chrono::Duration, ConfigError> {
                let value = source.duration(name, default)?;
                chrono::Duration::from_std(value).map_err(|_| invalid(name, "is too long"))
            };
        let defaults = expensewise_domain::webhook::retry::Schedule::default();
        let schedule = expensewise_domain::webhook::retry::Schedule {
            first: chrono_duration(
                "WEBHOOK_RETRY_FIRST",
                defaults.first.to_std().unwrap_or_default(),
            )?,
            longest: chrono_duration(
                "WEBHOOK_RETRY_LONGEST",
                defaults.longest.to_std().unwrap_or_default(),
            )?,
            give_up_after: chrono_duration(
                "WEBHOOK_GIVE_UP_AFTER",
                defaults.give_up_after.to_std().unwrap_or_default(),
            )?,
        };
        Ok(Self {
            allowance,
            timeout: source.duration("WEBHOOK_TIMEOUT", Duration::from_secs(10))?,
            schedule,
            log_retention: source
                .duration("WEBHOOK_LOG_RETENTION", Duration::from_secs(30 * 86_400))?,
        })
    }
}

/// Single sign-on: where the OpenID providers organizations register may be.
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// `SSO_ALLOW_PRIVATE`: internal addresses an issuer may have after all (an identity
    /// provider inside the company network), as `WEBHOOK_ALLOW_PRIVATE` reads. Issuers
    /// at addresses it allows may also be plain `http://`.
    pub allowance: expensewise_domain::webhook::address::Allowance,
    /// `SSO_TIMEOUT` (10 s): for each request to an issuer.
    pub timeout: Duration,
}

impl SsoConfig {
    pub(super) fn parse(source: &Source) -> Result<Self, ConfigError> {
        let allowance = expensewise_domain::webhook::address::Allowance::parse(
            &source.get_or("SSO_ALLOW_PRIVATE", "false"),
        )
        .map_err(|m| invalid("SSO_ALLOW_PRIVATE", m))?;
        Ok(Self {
            allowance,
            timeout: source.duration("SSO_TIMEOUT", Duration::from_secs(10))?,
        })
    }
}
