use std::collections::HashMap;

use super::*;

fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(|k| map.get(k).cloned())
}

#[test]
fn the_master_key_is_required_in_production_and_made_locally_elsewhere() {
    let strong = "k".repeat(32);
    let production = [("APP_ENV", "production"), ("JWT_SECRET", strong.as_str())];
    assert_eq!(config(&production).unwrap_err().variable, "DATA_KEY_FILE");
    let missing = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", strong.as_str()),
        ("DATA_KEY_FILE", "/nonexistent/data-key"),
    ];
    assert_eq!(config(&missing).unwrap_err().variable, "DATA_KEY_FILE");
    let endpoint_alone = [("KMS_ENDPOINT_URL", "http://127.0.0.1:1")];
    assert_eq!(config(&endpoint_alone).unwrap_err().variable, "KMS_KEY_ID");
    let kms = config(&[
        ("KMS_KEY_ID", "alias/expensewise"),
        ("KMS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ])
    .unwrap();
    assert_eq!(kms.keys.kms.unwrap().key_id, "alias/expensewise");
    assert_eq!(kms.keys.file, None);
    let local = config(&[("DATA_DIR", "/srv/expensewise")]).unwrap();
    assert!(local.keys.generated);
    assert_eq!(
        local.keys.file,
        Some(std::path::PathBuf::from("/srv/expensewise/data-key"))
    );
}

#[test]
fn the_audit_signing_key_is_required_in_production_and_made_locally_elsewhere() {
    let strong = "k".repeat(32);
    let production = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", strong.as_str()),
        ("KMS_KEY_ID", "alias/expensewise"),
    ];
    assert_eq!(
        config(&production).unwrap_err().variable,
        "AUDIT_SIGNING_KEY_FILE"
    );
    let missing = [("AUDIT_SIGNING_KEY_FILE", "/nonexistent/audit-key")];
    assert_eq!(
        config(&missing).unwrap_err().variable,
        "AUDIT_SIGNING_KEY_FILE"
    );
    let bad_origin = [("AUDIT_LOG_ORIGIN", "my log")];
    assert_eq!(
        config(&bad_origin).unwrap_err().variable,
        "AUDIT_LOG_ORIGIN"
    );
    let local = config(&[("DATA_DIR", "/srv/expensewise")]).unwrap();
    assert!(local.audit.generated);
    assert_eq!(
        local.audit.key_file,
        std::path::PathBuf::from("/srv/expensewise/audit-signing-key")
    );
}

#[test]
fn a_local_master_key_is_generated_once_and_kept() {
    let dir = std::env::temp_dir().join(format!("expensewise-key-{}", uuid::Uuid::new_v4()));
    let path = dir.join("data-key");
    local_data_key(&path).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    local_data_key(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(first.len(), 64);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn production_refuses_a_missing_or_weak_secret() {
    let err = config(&[("APP_ENV", "production")]).unwrap_err();
    assert_eq!(err.variable, "JWT_SECRET");
    let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).unwrap_err();
    assert_eq!(err.variable, "JWT_SECRET");
    let key = std::env::temp_dir().join(format!("audit-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&key, "a key file").unwrap();
    let key = key.display().to_string();
    let ok = config(&[
        ("APP_ENV", "production"),
        ("JWT_SECRET", &"k".repeat(32)),
        ("KMS_KEY_ID", "alias/expensewise"),
        ("AUDIT_SIGNING_KEY_FILE", &key),
    ])
    .unwrap();
    assert_eq!(ok.auth.jwt_secret.unwrap().expose().len(), 32);
    let strong = "k".repeat(32);
    let weak_previous = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", strong.as_str()),
        ("JWT_PREVIOUS_SECRET", "old"),
    ];
    assert_eq!(
        config(&weak_previous).unwrap_err().variable,
        "JWT_PREVIOUS_SECRET"
    );
    let rotating = config(&[
        ("APP_ENV", "production"),
        ("JWT_SECRET", strong.as_str()),
        ("JWT_PREVIOUS_SECRET", &"o".repeat(32)),
        ("KMS_KEY_ID", "alias/expensewise"),
        ("AUDIT_SIGNING_KEY_FILE", &key),
    ])
    .unwrap();
    assert!(rotating.auth.jwt_previous_secret.is_some());
    std::fs::remove_file(&key).unwrap();
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
    assert!(both.ocr.ocrs_models.is_some());
    assert!(config(&[]).unwrap().ocr.ocrs_models.is_none());
    let folder = tempfile::tempdir().unwrap();
    let named = folder.path().to_str().unwrap();
    for file in &PPOCR_FILES[..2] {
        std::fs::write(folder.path().join(file), b"model").unwrap();
    }
    let lacking = config(&[("PPOCR_MODELS", named)]).unwrap_err();
    assert_eq!(lacking.variable, "PPOCR_MODELS");
    assert!(lacking.to_string().contains("dictionary.txt"), "{lacking}");
    std::fs::write(folder.path().join(PPOCR_FILES[2]), b"a\n").unwrap();
    let ppocr = config(&[("PPOCR_MODELS", named)]).unwrap();
    assert_eq!(ppocr.ocr.ppocr_models.as_deref(), Some(folder.path()));
    assert!(config(&[]).unwrap().ocr.ppocr_models.is_none());
    // Where scripts/ppocr-models.sh puts them by default, they are found unnamed.
    let data = tempfile::tempdir().unwrap();
    let fetched = data.path().join("ppocr");
    std::fs::create_dir(&fetched).unwrap();
    for file in PPOCR_FILES {
        std::fs::write(fetched.join(file), b"model").unwrap();
    }
    let found = config(&[("DATA_DIR", data.path().to_str().unwrap())]).unwrap();
    assert_eq!(found.ocr.ppocr_models, Some(fetched.clone()));
    std::fs::remove_file(fetched.join(PPOCR_FILES[2])).unwrap();
    let found = config(&[("DATA_DIR", data.path().to_str().unwrap())]).unwrap();
    assert_eq!(found.ocr.ppocr_models, None);
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
    assert_eq!(config(&[]).unwrap().ocr.tesseract_languages, "deu+eng");
    assert_eq!(
        config(&[]).unwrap().ocr.tesseract_library,
        "libtesseract.so.5"
    );
    assert_eq!(
        config(&[("TESSERACT_LIBRARY", "/opt/tesseract/lib/libtesseract.so")])
            .unwrap()
            .ocr
            .tesseract_library,
        "/opt/tesseract/lib/libtesseract.so"
    );
    // The program it replaced is named, not silently ignored.
    assert_eq!(
        config(&[("TESSERACT_PATH", "/usr/bin/tesseract")])
            .unwrap_err()
            .variable,
        "TESSERACT_PATH"
    );
    for wrong in ["eng+", "+deu", "eng deu", "eng;rm"] {
        assert_eq!(
            config(&[("OCR_LANGUAGES", wrong)]).unwrap_err().variable,
            "OCR_LANGUAGES",
            "{wrong}"
        );
    }
    assert_eq!(
        config(&[("OCR_LANGUAGES", "eng+fra+script/Latin")])
            .unwrap()
            .ocr
            .tesseract_languages,
        "eng+fra+script/Latin"
    );
    assert_eq!(
        config(&[("OCR_PDF_MAX_PAGES", "0")]).unwrap_err().variable,
        "OCR_PDF_MAX_PAGES"
    );
    assert_eq!(
        config(&[("OCR_PDF_MAX_PAGES", "2")])
            .unwrap()
            .ocr
            .pdf_max_pages,
        2
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
    assert_eq!(
        c.auth.jwt_secret.as_ref().unwrap().expose(),
        "from-a-file-0123456789-0123456789"
    );
    let url = dir.join("database-url");
    std::fs::write(&url, "postgres://app:pw@db:5432/expensewise\n").unwrap();
    let c = config(&[("DATABASE_URL_FILE", url.to_str().unwrap())]).unwrap();
    assert_eq!(c.database.url, "postgres://app:pw@db:5432/expensewise");
    assert!(!format!("{c:?}").contains("from-a-file"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_local_secret_is_generated_once_and_kept() {
    let dir = std::env::temp_dir().join(format!("ew-local-{}", std::process::id()));
    let first = local_secret(&dir).unwrap();
    let second = local_secret(&dir).unwrap();
    assert_eq!(first, second);
    assert!(first.expose().len() >= MIN_PRODUCTION_SECRET_LEN);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reading_the_configuration_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("ew-untouched-{}", std::process::id()));
    let config = config(&[("DATA_DIR", dir.to_str().unwrap())]).unwrap();
    assert!(config.auth.jwt_secret.is_none());
    assert!(!dir.exists(), "parsing created {}", dir.display());
}

#[test]
fn durations_read_like_the_seed_writes_them() {
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("0").is_err());
    assert!(parse_duration("1y").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn receipts_are_kept_from_the_end_of_their_year_for_the_retention_years() {
    use chrono::TimeZone as _;
    let default = config(&[]).unwrap().receipt_retention;
    assert_eq!(
        (default.years, default.mode),
        (8, RetentionMode::Governance)
    );
    let uploaded = chrono::Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap();
    let until = chrono::Utc.with_ymd_and_hms(2035, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(default.until(uploaded), Some(until));
    let strict = config(&[
        ("RECEIPT_RETENTION_YEARS", "10"),
        ("RECEIPT_RETENTION_MODE", "compliance"),
    ])
    .unwrap()
    .receipt_retention;
    assert_eq!(strict.mode, RetentionMode::Compliance);
    assert_eq!(
        strict.until(uploaded),
        chrono::Utc.with_ymd_and_hms(2037, 1, 1, 0, 0, 0).single()
    );
    let unlocked = config(&[("RECEIPT_RETENTION_YEARS", "0")]).unwrap();
    assert_eq!(unlocked.receipt_retention.until(uploaded), None);
    for (name, value) in [
        ("RECEIPT_RETENTION_YEARS", "31"),
        ("RECEIPT_RETENTION_YEARS", "eight"),
        ("RECEIPT_RETENTION_MODE", "forever"),
    ] {
        assert_eq!(config(&[(name, value)]).unwrap_err().variable, name);
    }
}

#[test]
fn a_read_replica_is_a_postgresql_replica_of_a_postgresql_primary() {
    let primary = ("DATABASE_URL", "postgres://app@db/expensewise");
    let replica = ("DATABASE_READ_URL", "postgres://app@replica/expensewise");
    let c = config(&[primary, replica]).unwrap();
    let read = c.database.read_replica.unwrap();
    assert_eq!(read.url, "postgres://app@replica/expensewise");
    assert_eq!(read.max_lag, Duration::from_secs(1));
    let c = config(&[primary, replica, ("READ_REPLICA_MAX_LAG", "3")]).unwrap();
    assert_eq!(
        c.database.read_replica.unwrap().max_lag,
        Duration::from_secs(3)
    );
    assert!(config(&[primary]).unwrap().database.read_replica.is_none());

    for bad in [
        vec![replica],
        vec![primary, ("DATABASE_READ_URL", "sqlite://copy.db")],
    ] {
        assert_eq!(config(&bad).unwrap_err().variable, "DATABASE_READ_URL");
    }
    assert_eq!(
        config(&[primary, replica, ("READ_REPLICA_MAX_LAG", "0")])
            .unwrap_err()
            .variable,
        "READ_REPLICA_MAX_LAG"
    );
}
