//! The master key that wraps every data key (envelope encryption): a 256-bit key from a
//! file, or a key of AWS KMS (or a KMS-compatible server) that never leaves it.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_kms::primitives::Blob;
use sha2::{Digest, Sha256};

use crate::config::{KeysConfig, KmsConfig};

const NONCE_LEN: usize = 12;

/// One key able to wrap and unwrap data keys.
pub(super) enum Wrapper {
    /// AES-256-GCM under a key read from a file.
    File { id: String, cipher: Box<Aes256Gcm> },
    Kms {
        id: String,
        key_id: String,
        client: aws_sdk_kms::Client,
    },
}

/// The key new data keys are wrapped with, and the one before a rotation, which still
/// unwraps what it wrapped until `expensewise keys rotate` has wrapped it anew.
pub struct MasterKey {
    pub(super) current: Wrapper,
    pub(super) previous: Option<Wrapper>,
}

impl MasterKey {
    /// The master key the configuration names. Outside production a missing
    /// `DATA_KEY_FILE` is generated in the data directory.
    pub async fn open(config: &KeysConfig) -> anyhow::Result<MasterKey> {
        let current = match (&config.kms, &config.file) {
            (Some(kms), _) => kms_wrapper(kms).await?,
            (None, Some(file)) => {
                if config.generated {
                    crate::config::local_data_key(file)
                        .with_context(|| format!("cannot make {}", file.display()))?;
                }
                file_wrapper(file, "DATA_KEY_FILE")?
            }
            (None, None) => bail!("DATA_KEY_FILE or KMS_KEY_ID is required"),
        };
        let previous = config
            .previous_file
            .as_deref()
            .map(|f| file_wrapper(f, "DATA_KEY_PREVIOUS_FILE"))
            .transpose()?;
        Ok(MasterKey { current, previous })
    }

    /// A master key of the given 32 bytes (tests, and tools that bring their own).
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        MasterKey {
            current: Wrapper::file(bytes),
            previous: None,
        }
    }

    /// Which key new data keys are wrapped with (stored beside each wrapped key).
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Wraps `key`, bound to `context` (what the key is for: it cannot be unwrapped as
    /// anything else).
    pub(super) async fn wrap(&self, key: &[u8; 32], context: &str) -> anyhow::Result<Vec<u8>> {
        // Boxed, like `unwrap`: the KMS client's futures nest deep, and every event
        // store call would carry them inline.
        Box::pin(self.current.wrap(key, context)).await
    }

    pub(super) async fn unwrap(
        &self,
        wrapped_by: &str,
        wrapped: &[u8],
        context: &str,
    ) -> anyhow::Result<[u8; 32]> {
        let wrapper = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|w| w.id() == wrapped_by)
            .ok_or_else(|| {
                anyhow!(
                    "the key {wrapped_by} that wrapped a data key is not configured \
                     (DATA_KEY_FILE, DATA_KEY_PREVIOUS_FILE or KMS_KEY_ID)"
                )
            })?;
        Box::pin(wrapper.unwrap(wrapped, context)).await
    }
}

impl Wrapper {
    fn file(bytes: &[u8; 32]) -> Wrapper {
        let digest = format!("{:x}", Sha256::digest(bytes));
        Wrapper::File {
            id: format!("file:{}", &digest[..16]),
            cipher: Box::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes))),
        }
    }

    fn id(&self) -> &str {
        match self {
            Wrapper::File { id, .. } | Wrapper::Kms { id, .. } => id,
        }
    }

    async fn wrap(&self, key: &[u8; 32], context: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Wrapper::File { cipher, .. } => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let sealed = cipher
                    .encrypt(
                        &nonce,
                        Payload {
                            msg: key,
                            aad: context.as_bytes(),
                        },
                    )
                    .map_err(|_| anyhow!("cannot wrap a data key"))?;
                Ok([nonce.as_slice(), &sealed].concat())
            }
            Wrapper::Kms { key_id, client, .. } => {
                let out = client
                    .encrypt()
                    .key_id(key_id)
                    .plaintext(Blob::new(key.to_vec()))
                    .encryption_context("purpose", context)
                    .send()
                    .await
                    .context("KMS refused to wrap a data key")?;
                Ok(out
                    .ciphertext_blob
                    .ok_or_else(|| anyhow!("KMS answered without a ciphertext"))?
                    .into_inner())
            }
        }
    }

    async fn unwrap(&self, wrapped: &[u8], context: &str) -> anyhow::Result<[u8; 32]> {
        let plain = match self {
            Wrapper::File { cipher, .. } => {
                if wrapped.len() <= NONCE_LEN {
                    bail!("a wrapped data key is truncated");
                }
                let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
                cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: context.as_bytes(),
                        },
                    )
                    .map_err(|_| anyhow!("a data key does not unwrap: wrong master key"))?
            }
            Wrapper::Kms { key_id, client, .. } => client
                .decrypt()
                .key_id(key_id)
                .ciphertext_blob(Blob::new(wrapped.to_vec()))
                .encryption_context("purpose", context)
                .send()
                .await
                .context("KMS refused to unwrap a data key")?
                .plaintext
                .ok_or_else(|| anyhow!("KMS answered without a plaintext"))?
                .into_inner(),
        };
        plain
            .try_into()
            .map_err(|_| anyhow!("an unwrapped data key is not 256 bits"))
    }
}

/// Reads a master key file: 32 bytes written as 64 hexadecimal digits.
fn file_wrapper(path: &Path, variable: &str) -> anyhow::Result<Wrapper> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{variable}: cannot read {}", path.display()))?;
    let bytes = decode_hex_key(text.trim())
        .with_context(|| format!("{variable}: {} must hold 64 hex digits", path.display()))?;
    Ok(Wrapper::file(&bytes))
}

fn decode_hex_key(text: &str) -> anyhow::Result<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        bail!("not 64 hex digits");
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)?;
    }
    Ok(key)
}

async fn kms_wrapper(kms: &KmsConfig) -> anyhow::Result<Wrapper> {
    let shared = crate::aws::sdk_config(&kms.region, kms.credentials.as_ref()).await;
    let mut config = aws_sdk_kms::config::Builder::from(&shared);
    if let Some(url) = &kms.endpoint_url {
        config = config.endpoint_url(url);
    }
    let client = aws_sdk_kms::Client::from_conf(config.build());
    // A wrong key id or missing permission stops the process at start, not at the first
    // person registered.
    client
        .describe_key()
        .key_id(&kms.key_id)
        .send()
        .await
        .with_context(|| format!("KMS_KEY_ID {} cannot be used", kms.key_id))?;
    Ok(Wrapper::Kms {
        id: format!("kms:{}", kms.key_id),
        key_id: kms.key_id.clone(),
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrapped_key_unwraps_only_for_what_it_was_wrapped_for() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let wrapped = master.wrap(&[1; 32], "subject:a").await.unwrap();
        let id = master.current_id().to_string();
        assert_eq!(
            master.unwrap(&id, &wrapped, "subject:a").await.unwrap(),
            [1; 32]
        );
        assert!(master.unwrap(&id, &wrapped, "subject:b").await.is_err());
        let other = MasterKey::from_bytes(&[8; 32]);
        assert!(other.unwrap(&id, &wrapped, "subject:a").await.is_err());
    }

    #[test]
    fn key_files_hold_64_hex_digits() {
        assert_eq!(decode_hex_key(&"0f".repeat(32)).unwrap(), [15; 32]);
        assert!(decode_hex_key(&"0f".repeat(31)).is_err());
        assert!(decode_hex_key(&"zz".repeat(32)).is_err());
    }
}
