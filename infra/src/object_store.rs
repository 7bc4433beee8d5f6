//! Receipt files: in an S3 bucket (AWS, or any S3-compatible server) or, on the embedded
//! default, in a local directory. Keys are made by the application
//! (`<organization id>/<receipt id>`), never taken from a client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use uuid::Uuid;

use crate::config::ReceiptStorage;

/// How long a presigned download link works.
pub const PRESIGNED_FOR: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub enum ObjectStore {
    Local { root: PathBuf },
    S3 { client: Client, bucket: String },
}

/// How a client gets a stored file.
pub enum Download {
    /// A short-lived link straight to the object storage.
    Redirect(String),
    /// The file itself, from the local directory.
    File(tokio::fs::File),
}

/// The key of a receipt's file.
pub fn receipt_key(organization_id: Uuid, receipt_id: Uuid) -> String {
    format!("{organization_id}/{receipt_id}")
}

impl ObjectStore {
    pub async fn open(storage: &ReceiptStorage) -> anyhow::Result<ObjectStore> {
        match storage {
            ReceiptStorage::Local(root) => {
                tokio::fs::create_dir_all(root)
                    .await
                    .with_context(|| format!("cannot create {}", root.display()))?;
                Ok(ObjectStore::Local { root: root.clone() })
            }
            ReceiptStorage::S3 {
                bucket,
                region,
                endpoint_url,
                credentials,
            } => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(region.clone()));
                if let Some((id, secret)) = credentials {
                    loader = loader.credentials_provider(Credentials::new(
                        id,
                        secret.expose(),
                        None,
                        None,
                        "expensewise-config",
                    ));
                }
                let shared = loader.load().await;
                let mut config = aws_sdk_s3::config::Builder::from(&shared);
                if let Some(url) = endpoint_url {
                    // S3-compatible servers rarely serve bucket names as host names.
                    config = config.endpoint_url(url).force_path_style(true);
                }
                Ok(ObjectStore::S3 {
                    client: Client::from_conf(config.build()),
                    bucket: bucket.clone(),
                })
            }
        }
    }

    fn local_path(root: &Path, key: &str) -> PathBuf {
        key.split('/')
            .fold(root.to_path_buf(), |p, part| p.join(part))
    }

    /// Stores the file at `path` (where an upload was streamed to) under `key`; the file
    /// at `path` is gone afterwards either way.
    pub async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> anyhow::Result<()> {
        match self {
            ObjectStore::Local { root } => {
                let target = Self::local_path(root, key);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::rename(path, &target)
                    .await
                    .with_context(|| format!("cannot store the receipt at {}", target.display()))?;
                Ok(())
            }
            ObjectStore::S3 { client, bucket } => {
                let body = ByteStream::from_path(path)
                    .await
                    .context("cannot read the uploaded file")?;
                let result = client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type(content_type)
                    .server_side_encryption(ServerSideEncryption::Aes256)
                    .body(body)
                    .send()
                    .await;
                let _ = tokio::fs::remove_file(path).await;
                result
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("S3 did not store {key}: {}", describe(&e)))
            }
        }
    }

    /// The whole file: for workers that read it (receipts are at most a few MiB).
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            ObjectStore::Local { root } => {
                let path = Self::local_path(root, key);
                tokio::fs::read(&path)
                    .await
                    .with_context(|| format!("cannot read {}", path.display()))
            }
            ObjectStore::S3 { client, bucket } => {
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
            ObjectStore::Local { root } => {
                let path = Self::local_path(root, key);
                let file = tokio::fs::File::open(&path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Ok(Download::File(file))
            }
            ObjectStore::S3 { client, bucket } => {
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
            ObjectStore::Local { root } => {
                tokio::fs::metadata(root)
                    .await
                    .with_context(|| format!("{} is not there", root.display()))?;
                Ok(())
            }
            ObjectStore::S3 { client, bucket } => client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("bucket {bucket}: {}", describe(&e))),
        }
    }
}

/// The SDK's `Display` says only "service error"; the debug form names the cause.
fn describe(error: &impl std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    text.chars().take(500).collect()
}
