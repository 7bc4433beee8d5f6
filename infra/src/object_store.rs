//! Receipt files: in an S3 bucket (AWS, or any S3-compatible server) or, on the embedded
//! default, in a local directory. Keys are made by the application
//! (`<organization id>/<receipt id>`), never taken from a client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ServerSideEncryption,
};
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::{ReceiptRetention, ReceiptStorage, RetentionMode};

/// How long a presigned download link works.
pub const PRESIGNED_FOR: Duration = Duration::from_secs(300);

/// Each receipt file is locked against deletion until the end of its retention
/// (`ReceiptRetention`): on S3 with Object Lock in the configured mode, in the local
/// directory by a note beside the file (`<file>.retention.json`) that deletes must obey.
/// A legal hold keeps a file past its date until released.
#[derive(Clone)]
pub enum ObjectStore {
    Local {
        root: PathBuf,
        retention: ReceiptRetention,
    },
    S3 {
        client: Client,
        bucket: String,
        retention: ReceiptRetention,
    },
}

/// A stored file: its key, and on S3 the version the product stored (what locks and
/// holds apply to, whatever was written under the key since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub key: String,
    pub version: Option<String>,
}

/// How a stored file is kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lock {
    pub retain_until: Option<DateTime<Utc>>,
    /// `governance` or `compliance`.
    pub mode: Option<String>,
    pub legal_hold: bool,
}

/// How a client gets a stored file.
pub enum Download {
    /// A short-lived link straight to the object storage.
    Redirect(String),
    /// The file itself, from the local directory.
    File(tokio::fs::File),
    /// The file is no longer kept (the sweeper deleted it when its retention ended).
    Gone,
}

/// The key of a receipt's file.
pub fn receipt_key(organization_id: Uuid, receipt_id: Uuid) -> String {
    format!("{organization_id}/{receipt_id}")
}

impl ObjectStore {
    pub async fn open(
        storage: &ReceiptStorage,
        retention: ReceiptRetention,
    ) -> anyhow::Result<ObjectStore> {
        match storage {
            ReceiptStorage::Local(root) => {
                tokio::fs::create_dir_all(root)
                    .await
                    .with_context(|| format!("cannot create {}", root.display()))?;
                Ok(ObjectStore::Local {
                    root: root.clone(),
                    retention,
                })
            }
            ReceiptStorage::S3 {
                bucket,
                region,
                endpoint_url,
                credentials,
            } => {
                let shared = crate::aws::sdk_config(region, credentials.as_ref()).await;
                let mut config = aws_sdk_s3::config::Builder::from(&shared);
                if let Some(url) = endpoint_url {
                    // S3-compatible servers rarely serve bucket names as host names.
                    config = config.endpoint_url(url).force_path_style(true);
                }
                let client = Client::from_conf(config.build());
                if retention.years > 0 {
                    require_object_lock(&client, bucket).await?;
                }
                Ok(ObjectStore::S3 {
                    client,
                    bucket: bucket.clone(),
                    retention,
                })
            }
        }
    }

    fn local_path(root: &Path, key: &str) -> PathBuf {
        key.split('/')
            .fold(root.to_path_buf(), |p, part| p.join(part))
    }

    /// Stores the file at `path` (where an upload was streamed to) under `key`; the file
    /// at `path` is gone afterwards either way. Returns the version S3 stored it as.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> anyhow::Result<Option<String>> {
        match self {
            ObjectStore::Local { root, retention } => {
                let target = Self::local_path(root, key);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                // The note first: a file is never there without what keeps it.
                let lock = Lock {
                    retain_until: retention.until(Utc::now()),
                    mode: (retention.years > 0).then(|| retention.mode.as_str().to_string()),
                    legal_hold: false,
                };
                write_lock(&target, &lock).await?;
                tokio::fs::rename(path, &target)
                    .await
                    .with_context(|| format!("cannot store the receipt at {}", target.display()))?;
                Ok(None)
            }
            ObjectStore::S3 {
                client,
                bucket,
                retention,
            } => {
                let body = ByteStream::from_path(path)
                    .await
                    .context("cannot read the uploaded file")?;
                let result = Self::put_s3(client, bucket, retention, key, content_type, body).await;
                let _ = tokio::fs::remove_file(path).await;
                result
            }
        }
    }

    /// Stores `bytes` under `key`, locked as the store's retention says.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<Option<String>> {
        match self {
            ObjectStore::Local { root, .. } => {
                let aside = root.join(format!(".{}.new", Uuid::new_v4()));
                tokio::fs::write(&aside, bytes).await?;
                self.put_file(key, &aside, content_type).await
            }
            ObjectStore::S3 {
                client,
                bucket,
                retention,
            } => Self::put_s3(client, bucket, retention, key, content_type, bytes.into()).await,
        }
    }

    async fn put_s3(
        client: &Client,
        bucket: &str,
        retention: &ReceiptRetention,
        key: &str,
        content_type: &str,
        body: ByteStream,
    ) -> anyhow::Result<Option<String>> {
        let mut put = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(body);
        if let Some(until) = retention.until(Utc::now()) {
            put = put
                .object_lock_mode(match retention.mode {
                    RetentionMode::Governance => ObjectLockMode::Governance,
                    RetentionMode::Compliance => ObjectLockMode::Compliance,
                })
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        put.send()
            .await
            .map(|stored| stored.version_id)
            .map_err(|e| anyhow::anyhow!("S3 did not store {key}: {}", describe(&e)))
    }

    /// The keys under `prefix`, in order (S3 lists them so; locally, sorted).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        match self {
            ObjectStore::Local { root, .. } => {
                let dir = Self::local_path(root, prefix.trim_end_matches('/'));
                let mut keys = Vec::new();
                if let Ok(mut entries) = tokio::fs::read_dir(&dir).await {
                    while let Some(entry) = entries.next_entry().await? {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if !name.ends_with(".retention.json") && !name.starts_with('.') {
                            keys.push(format!("{}/{name}", prefix.trim_end_matches('/')));
                        }
                    }
                }
                keys.sort();
                Ok(keys)
            }
            ObjectStore::S3 { client, bucket, .. } => {
                let mut keys = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        anyhow::anyhow!("S3 did not list {prefix}: {}", describe(&e))
                    })?;
                    keys.extend(
                        page.contents()
                            .iter()
                            .filter_map(|o| o.key().map(str::to_string)),
                    );
                }
                Ok(keys)
            }
        }
    }

    /// The whole file: for workers that read it (receipts are at most a few MiB).
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            ObjectStore::Local { root, .. } => {
                let path = Self::local_path(root, key);
                tokio::fs::read(&path)
                    .await
                    .with_context(|| format!("cannot read {}", path.display()))
            }
            ObjectStore::S3 { client, bucket, .. } => {
                let object = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot fetch {key} from S3: {}", describe(&e)))?;
                let bytes = object
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("reading {key} from S3"))?;
                Ok(bytes.into_bytes().to_vec())
            }
        }
    }

    /// A presigned link (S3) or the open file (local directory).
    pub async fn download(&self, key: &str) -> anyhow::Result<Download> {
        match self {
            ObjectStore::Local { root, .. } => {
                let path = Self::local_path(root, key);
                match tokio::fs::File::open(&path).await {
                    Ok(file) => Ok(Download::File(file)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Download::Gone),
                    Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
                }
            }
            ObjectStore::S3 { client, bucket, .. } => {
                let presigned = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .presigned(PresigningConfig::expires_in(PRESIGNED_FOR)?)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot presign {key}: {}", describe(&e)))?;
                Ok(Download::Redirect(presigned.uri().to_string()))
            }
        }
    }

    /// For readiness: the bucket answers (or the directory exists).
    pub async fn check(&self) -> anyhow::Result<()> {
        match self {
            ObjectStore::Local { root, .. } => {
                tokio::fs::metadata(root)
                    .await
                    .with_context(|| format!("{} is not there", root.display()))?;
                Ok(())
            }
            ObjectStore::S3 { client, bucket, .. } => client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("bucket {bucket}: {}", describe(&e))),
        }
    }
}

impl ObjectStore {
    /// How a stored file is kept now.
    pub async fn lock(&self, file: &StoredFile) -> anyhow::Result<Lock> {
        let key = &file.key;
        match self {
            ObjectStore::Local { root, .. } => read_lock(&Self::local_path(root, key)).await,
            ObjectStore::S3 { client, bucket, .. } => {
                let head = client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(file.version.clone())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot look at {key} in S3: {}", describe(&e)))?;
                Ok(Lock {
                    retain_until: head
                        .object_lock_retain_until_date()
                        .and_then(|d| DateTime::from_timestamp(d.secs(), 0)),
                    mode: head
                        .object_lock_mode()
                        .map(|m| m.as_str().to_ascii_lowercase()),
                    legal_hold: head.object_lock_legal_hold_status()
                        == Some(&ObjectLockLegalHoldStatus::On),
                })
            }
        }
    }

    /// Places or releases a legal hold on a stored file: while it holds, the file is kept
    /// whatever its retention date.
    pub async fn set_legal_hold(&self, file: &StoredFile, on: bool) -> anyhow::Result<()> {
        let key = &file.key;
        match self {
            ObjectStore::Local { root, .. } => {
                let path = Self::local_path(root, key);
                let lock = Lock {
                    legal_hold: on,
                    ..read_lock(&path).await?
                };
                write_lock(&path, &lock).await
            }
            ObjectStore::S3 { client, bucket, .. } => {
                let status = if on {
                    ObjectLockLegalHoldStatus::On
                } else {
                    ObjectLockLegalHoldStatus::Off
                };
                client
                    .put_object_legal_hold()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(file.version.clone())
                    .legal_hold(ObjectLockLegalHold::builder().status(status).build())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        anyhow::anyhow!("S3 did not set the legal hold on {key}: {}", describe(&e))
                    })
            }
        }
    }
}

impl ObjectStore {
    /// Deletes a stored file whose retention is over at `now`: `false` when it must still
    /// be kept (locked until later, or under a legal hold) and stays. On S3 the version
    /// the receipt was stored as is deleted, and S3 itself refuses while it is locked.
    pub async fn delete(&self, file: &StoredFile, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let key = &file.key;
        match self {
            ObjectStore::Local { root, .. } => {
                let path = Self::local_path(root, key);
                if !tokio::fs::try_exists(&path).await? {
                    return Ok(true);
                }
                // Files stored before retention existed have no note: nothing locks them.
                let lock = read_lock(&path).await.ok();
                if lock.is_some_and(|l| l.legal_hold || l.retain_until.is_some_and(|u| u > now)) {
                    return Ok(false);
                }
                for gone in [path.clone(), lock_path(&path)] {
                    match tokio::fs::remove_file(&gone).await {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(e)
                                .with_context(|| format!("cannot delete {}", gone.display()))
                        }
                        _ => {}
                    }
                }
                Ok(true)
            }
            ObjectStore::S3 { client, bucket, .. } => {
                let lock = self.lock(file).await.ok();
                if lock.is_some_and(|l| l.legal_hold || l.retain_until.is_some_and(|u| u > now)) {
                    return Ok(false);
                }
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(file.version.clone())
                    .send()
                    .await
                    .map(|_| true)
                    .map_err(|e| anyhow::anyhow!("S3 did not delete {key}: {}", describe(&e)))
            }
        }
    }
}

/// Receipts must stay as long as the law says: a bucket that cannot lock objects is
/// refused rather than used without locks.
async fn require_object_lock(client: &Client, bucket: &str) -> anyhow::Result<()> {
    let enabled = client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
        .ok()
        .and_then(|c| c.object_lock_configuration)
        .and_then(|c| c.object_lock_enabled)
        == Some(ObjectLockEnabled::Enabled);
    anyhow::ensure!(
        enabled,
        "the receipts bucket {bucket} does not have S3 Object Lock enabled: receipts must be \
         kept RECEIPT_RETENTION_YEARS. Create the bucket with Object Lock (infra/deploy/terraform \
         does), or set RECEIPT_RETENTION_YEARS=0 to store receipts without a lock"
    );
    Ok(())
}

fn lock_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".retention.json");
    PathBuf::from(name)
}

async fn write_lock(file: &Path, lock: &Lock) -> anyhow::Result<()> {
    let path = lock_path(file);
    tokio::fs::write(&path, serde_json::to_vec(lock)?)
        .await
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn read_lock(file: &Path) -> anyhow::Result<Lock> {
    let path = lock_path(file);
    let text = tokio::fs::read(&path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_json::from_slice(&text)?)
}

/// The SDK's `Display` says only "service error"; the debug form names the cause.
fn describe(error: &impl std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    text.chars().take(500).collect()
}
