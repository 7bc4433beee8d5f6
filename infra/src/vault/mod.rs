//! Crypto-shredding (docs/personal-data.md): the personal fields of events
//! (`expensewise_domain::personal`) are stored encrypted with a key of the person they
//! are about, so destroying that key erases them from the log, its copies on JetStream
//! and every backup, without rewriting one event.
//!
//! - **Data keys**: one AES-256-GCM key per data subject, made when their first
//!   personal field is written, stored in `data_keys` wrapped by the master key
//!   ([`MasterKey`]: a key file, or AWS KMS). Shredding deletes the wrapped key and
//!   remembers that it did, so no new key is ever made for that person.
//! - **Sealed fields** read `ew1:<subject>:<base64 of nonce and ciphertext>`, the
//!   ciphertext bound to the aggregate, event type and field it was written for: it
//!   cannot be moved elsewhere and read there.
//! - **On the way out** (aggregates loaded, consumers, history, audit, exports) sealed
//!   fields are opened; a shredded subject's read [`ERASED`]. A field stored before
//!   encryption existed is left as it is.
//! - **Keys are cached** unwrapped in this process for [`CACHE_FOR`] (a shredded key's
//!   absence for good), and never printed.

mod master;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use anyhow::{anyhow, Context as _};
use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use expensewise_domain::personal::{personal_fields, Subject, ERASED};
use rand::RngCore;
use serde_json::Value;
use uuid::Uuid;

pub use master::MasterKey;

use crate::config::KeysConfig;
use crate::db::Database;
use crate::event_store::RecordedEvent;
use crate::{on_database, on_writer};

/// How long an unwrapped data key is kept in memory. Shredding on another replica is
/// seen here within this time; until then this process may still read the person's
/// fields, and write new ones that nobody will be able to read.
pub const CACHE_FOR: Duration = Duration::from_secs(60);

const SEALED_PREFIX: &str = "ew1:";
const NONCE_LEN: usize = 12;
/// The name of the key e-mail claims' ids are derived with, in `vault_secrets`.
const CLAIM_KEY: &str = "email-claim";

/// Data keys, and the master key that wraps them. Cheap to clone; clones share the
/// cache.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    master: MasterKey,
    keys: Mutex<HashMap<Uuid, Cached>>,
    claim_key: [u8; 32],
}

/// A data key as last read: `None` once shredded.
#[derive(Clone)]
struct Cached {
    cipher: Option<Arc<Aes256Gcm>>,
    read_at: Instant,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("master_key", &self.inner.master.current_id())
            .finish_non_exhaustive()
    }
}

/// Whether a data key is to be made when the subject has none yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Writing,
    Reading,
}

impl Vault {
    /// The vault of `db` under `master`: the e-mail claim key is read, or made on the
    /// first start.
    pub async fn new(db: Database, master: MasterKey) -> anyhow::Result<Vault> {
        let claim_key = secret(&db, &master, CLAIM_KEY).await?;
        Ok(Vault {
            inner: Arc::new(Inner {
                db,
                master,
                keys: Mutex::new(HashMap::new()),
                claim_key,
            }),
        })
    }

    /// The vault of `db` under the master key `keys` names.
    pub async fn from_config(db: Database, keys: &KeysConfig) -> anyhow::Result<Vault> {
        Vault::new(db, MasterKey::open(keys).await?).await
    }

    /// Which master key wraps new data keys.
    pub fn master_key_id(&self) -> &str {
        self.inner.master.current_id()
    }

    /// The key e-mail claims' stream ids are derived with (a keyed hash of the address,
    /// so that holding the store does not tell whether an address was registered).
    pub fn claim_key(&self) -> &[u8; 32] {
        &self.inner.claim_key
    }

    /// Encrypts the personal fields of `events` (about to be appended), made by an
    /// aggregate whose subject is `aggregate_subject`.
    pub async fn seal(
        &self,
        events: &mut [SerializedEvent],
        aggregate_subject: Option<Uuid>,
    ) -> anyhow::Result<()> {
        for event in events {
            let Some(personal) = personal_fields(&event.event_type) else {
                continue;
            };
            let Some(body) = event
                .payload
                .get_mut(&event.event_type)
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let subject = match personal.subject {
                Subject::Field(name) => body
                    .get(name)
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok()),
                Subject::Aggregate => aggregate_subject,
            }
            .ok_or_else(|| anyhow!("whose personal data {} holds is unknown", event.event_type))?;
            let key = Box::pin(self.key(subject, Need::Writing)).await?;
            for field in personal.fields {
                let Some(value) = field_mut(body, field) else {
                    continue;
                };
                let Value::String(plain) = value else {
                    continue;
                };
                let sealed = match &key {
                    Some(cipher) => {
                        let aad = binding(
                            &event.aggregate_type,
                            &event.aggregate_id,
                            &event.event_type,
                            field,
                        );
                        seal_text(cipher, subject, plain, &aad)?
                    }
                    // The person was erased: nothing personal of theirs is written again.
                    None => ERASED.to_string(),
                };
                *value = Value::String(sealed);
            }
        }
        Ok(())
    }

    /// Opens the sealed personal fields of one stored payload in place.
    pub async fn open_payload(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &mut Value,
    ) -> anyhow::Result<()> {
        let Some(personal) = personal_fields(event_type) else {
            return Ok(());
        };
        let Some(body) = payload.get_mut(event_type).and_then(Value::as_object_mut) else {
            return Ok(());
        };
        for field in personal.fields {
            let Some(value) = field_mut(body, field) else {
                continue;
            };
            let Some((subject, sealed)) = value.as_str().and_then(parse_sealed) else {
                continue;
            };
            let opened = match Box::pin(self.key(subject, Need::Reading)).await? {
                Some(cipher) => {
                    let aad = binding(aggregate_type, aggregate_id, event_type, field);
                    open_text(&cipher, &sealed, &aad).with_context(|| {
                        format!("{field} of {event_type} in {aggregate_type} {aggregate_id}")
                    })?
                }
                None => ERASED.to_string(),
            };
            *value = Value::String(opened);
        }
        Ok(())
    }

    /// Opens the sealed personal fields of events loaded for an aggregate.
    pub async fn open_serialized(&self, events: &mut [SerializedEvent]) -> anyhow::Result<()> {
        for event in events {
            self.open_payload(
                &event.aggregate_type,
                &event.aggregate_id,
                &event.event_type,
                &mut event.payload,
            )
            .await?;
        }
        Ok(())
    }

    /// A stored event with its personal fields opened, in the version it was stored in
    /// (what the history and the audit log show).
    pub async fn open(&self, mut event: RecordedEvent) -> anyhow::Result<RecordedEvent> {
        self.open_payload(
            &event.aggregate_type,
            &event.aggregate_id,
            &event.event_type,
            &mut event.payload,
        )
        .await?;
        Ok(event)
    }

    /// A stored event as consumers want it: personal fields opened, older versions
    /// upcast to the current shape.
    pub async fn reveal(&self, event: RecordedEvent) -> anyhow::Result<RecordedEvent> {
        Ok(self.open(event).await?.upcast())
    }

    /// [`Vault::open`] for many events.
    pub async fn open_all(&self, events: Vec<RecordedEvent>) -> anyhow::Result<Vec<RecordedEvent>> {
        let mut opened = Vec::with_capacity(events.len());
        for event in events {
            opened.push(self.open(event).await?);
        }
        Ok(opened)
    }

    /// [`Vault::reveal`] for many events.
    pub async fn reveal_all(
        &self,
        events: Vec<RecordedEvent>,
    ) -> anyhow::Result<Vec<RecordedEvent>> {
        let mut revealed = Vec::with_capacity(events.len());
        for event in events {
            revealed.push(self.reveal(event).await?);
        }
        Ok(revealed)
    }

    /// Destroys `subject`'s data key, for good: their sealed fields read [`ERASED`]
    /// from now on, and nothing personal of theirs is sealed again. Returns whether a
    /// key was destroyed (false: there was none, or it was destroyed before).
    pub async fn shred(&self, subject: Uuid, at: DateTime<Utc>) -> anyhow::Result<bool> {
        let destroyed = on_writer!(&self.inner.db, |pool| {
            let updated = sqlx::query(
                "UPDATE data_keys SET wrapped = NULL, wrapped_by = NULL, shredded_at = $2 \
                 WHERE subject_id = $1 AND shredded_at IS NULL",
            )
            .bind(subject.to_string())
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
            // A person with no key yet gets a shredded one, so none is made later.
            sqlx::query(
                "INSERT INTO data_keys (subject_id, wrapped, wrapped_by, created_at, \
                 shredded_at) VALUES ($1, NULL, NULL, $2, $2) ON CONFLICT (subject_id) DO NOTHING",
            )
            .bind(subject.to_string())
            .bind(at)
            .execute(pool)
            .await?;
            updated > 0
        });
        self.remember(subject, None);
        Ok(destroyed)
    }

    /// Wraps every data key (and the claim key) not wrapped by the current master key
    /// with it: after a master key rotation, once this has run, the previous key can be
    /// retired. Returns how many keys were wrapped anew.
    pub async fn rotate(&self) -> anyhow::Result<usize> {
        let master = &self.inner.master;
        let current = master.current_id().to_string();
        let stale: Vec<(String, Vec<u8>, String)> = on_database!(&self.inner.db, |pool| {
            sqlx::query_as(
                "SELECT subject_id, wrapped, wrapped_by FROM data_keys \
                 WHERE wrapped IS NOT NULL AND wrapped_by <> $1",
            )
            .bind(&current)
            .fetch_all(pool)
            .await?
        });
        let mut count = 0;
        for (subject, wrapped, wrapped_by) in stale {
            let context = subject_context(&subject);
            let key = master.unwrap(&wrapped_by, &wrapped, &context).await?;
            let rewrapped = master.wrap(&key, &context).await?;
            on_writer!(&self.inner.db, |pool| {
                sqlx::query(
                    "UPDATE data_keys SET wrapped = $3, wrapped_by = $4 \
                     WHERE subject_id = $1 AND wrapped_by = $2",
                )
                .bind(&subject)
                .bind(&wrapped_by)
                .bind(&rewrapped)
                .bind(&current)
                .execute(pool)
                .await?;
            });
            count += 1;
        }
        let secrets: Vec<(String, Vec<u8>, String)> = on_database!(&self.inner.db, |pool| {
            sqlx::query_as(
                "SELECT name, wrapped, wrapped_by FROM vault_secrets WHERE wrapped_by <> $1",
            )
            .bind(&current)
            .fetch_all(pool)
            .await?
        });
        for (name, wrapped, wrapped_by) in secrets {
            let context = secret_context(&name);
            let key = master.unwrap(&wrapped_by, &wrapped, &context).await?;
            let rewrapped = master.wrap(&key, &context).await?;
            on_writer!(&self.inner.db, |pool| {
                sqlx::query(
                    "UPDATE vault_secrets SET wrapped = $2, wrapped_by = $3 WHERE name = $1",
                )
                .bind(&name)
                .bind(&rewrapped)
                .bind(&current)
                .execute(pool)
                .await?;
            });
            count += 1;
        }
        Ok(count)
    }

    /// `subject`'s data key: `None` once shredded. For writing, one is made if the
    /// subject has none yet; for reading, a missing key is an error (sealed fields
    /// whose key never existed mean the store is not the one they were written to).
    async fn key(&self, subject: Uuid, need: Need) -> anyhow::Result<Option<Arc<Aes256Gcm>>> {
        if let Some(cached) = self.cached(subject) {
            return Ok(cached);
        }
        let db = &self.inner.db;
        let mut stored = stored_key(db, subject).await?;
        if stored.is_none() {
            if need == Need::Reading {
                return Err(anyhow!("no data key was ever made for subject {subject}"));
            }
            let mut key = [0u8; 32];
            OsRng.fill_bytes(&mut key);
            let master = &self.inner.master;
            let wrapped = master
                .wrap(&key, &subject_context(&subject.to_string()))
                .await?;
            on_writer!(db, |pool| {
                sqlx::query(
                    "INSERT INTO data_keys (subject_id, wrapped, wrapped_by, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (subject_id) DO NOTHING",
                )
                .bind(subject.to_string())
                .bind(&wrapped)
                .bind(master.current_id())
                .bind(Utc::now())
                .execute(pool)
                .await?;
            });
            // Another writer may have made one first: theirs is the one that counts.
            stored = stored_key(db, subject).await?;
        }
        let cipher = match stored {
            Some(StoredKey::Wrapped { wrapped, by }) => {
                let key = self
                    .inner
                    .master
                    .unwrap(&by, &wrapped, &subject_context(&subject.to_string()))
                    .await?;
                Some(Arc::new(Aes256Gcm::new(&key.into())))
            }
            Some(StoredKey::Shredded) => None,
            None => return Err(anyhow!("the data key of {subject} was not stored")),
        };
        self.remember(subject, cipher.clone());
        Ok(cipher)
    }

    fn cached(&self, subject: Uuid) -> Option<Option<Arc<Aes256Gcm>>> {
        let keys = self.inner.keys.lock().unwrap_or_else(|e| e.into_inner());
        let cached = keys.get(&subject)?;
        (cached.cipher.is_none() || cached.read_at.elapsed() < CACHE_FOR)
            .then(|| cached.cipher.clone())
    }

    fn remember(&self, subject: Uuid, cipher: Option<Arc<Aes256Gcm>>) {
        let mut keys = self.inner.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(
            subject,
            Cached {
                cipher,
                read_at: Instant::now(),
            },
        );
    }
}

enum StoredKey {
    Wrapped { wrapped: Vec<u8>, by: String },
    Shredded,
}

async fn stored_key(db: &Database, subject: Uuid) -> anyhow::Result<Option<StoredKey>> {
    let row: Option<(Option<Vec<u8>>, Option<String>)> = on_database!(db, |pool| {
        sqlx::query_as("SELECT wrapped, wrapped_by FROM data_keys WHERE subject_id = $1")
            .bind(subject.to_string())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|row| match row {
        (Some(wrapped), Some(by)) => StoredKey::Wrapped { wrapped, by },
        _ => StoredKey::Shredded,
    }))
}

/// A named secret of the vault, made and stored wrapped on first use.
async fn secret(db: &Database, master: &MasterKey, name: &str) -> anyhow::Result<[u8; 32]> {
    let read = || async {
        let row: Option<(Vec<u8>, String)> = on_database!(db, |pool| {
            sqlx::query_as("SELECT wrapped, wrapped_by FROM vault_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        anyhow::Ok(row)
    };
    let context = secret_context(name);
    if read().await?.is_none() {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let wrapped = master.wrap(&key, &context).await?;
        on_writer!(db, |pool| {
            sqlx::query(
                "INSERT INTO vault_secrets (name, wrapped, wrapped_by, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&wrapped)
            .bind(master.current_id())
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
    }
    let (wrapped, by) = read()
        .await?
        .ok_or_else(|| anyhow!("the vault secret {name} was not stored"))?;
    master
        .unwrap(&by, &wrapped, &context)
        .await
        .with_context(|| format!("the vault secret {name}"))
}

fn subject_context(subject: &str) -> String {
    format!("data-key:{subject}")
}

fn secret_context(name: &str) -> String {
    format!("secret:{name}")
}

/// What a sealed field is bound to.
fn binding(aggregate_type: &str, aggregate_id: &str, event_type: &str, field: &str) -> String {
    format!("{aggregate_type}/{aggregate_id}/{event_type}/{field}")
}

/// The value at `path` (names joined by `.`) inside an event's body.
fn field_mut<'a>(
    body: &'a mut serde_json::Map<String, Value>,
    path: &str,
) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let mut value = body.get_mut(parts.next()?)?;
    for part in parts {
        value = value.get_mut(part)?;
    }
    Some(value)
}

fn seal_text(cipher: &Aes256Gcm, subject: Uuid, plain: &str, aad: &str) -> anyhow::Result<String> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plain.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| anyhow!("cannot encrypt a personal field"))?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    Ok(format!(
        "{SEALED_PREFIX}{}:{}",
        subject.simple(),
        BASE64.encode(bytes)
    ))
}

/// The subject and the nonce-and-ciphertext of a sealed field; `None` for a value
/// that is not one (a field stored before encryption, or already opened).
fn parse_sealed(value: &str) -> Option<(Uuid, Vec<u8>)> {
    let rest = value.strip_prefix(SEALED_PREFIX)?;
    let (subject, sealed) = rest.split_once(':')?;
    let subject = Uuid::try_parse(subject).ok()?;
    let bytes = BASE64.decode(sealed).ok()?;
    (bytes.len() > NONCE_LEN).then_some((subject, bytes))
}

fn open_text(cipher: &Aes256Gcm, sealed: &[u8], aad: &str) -> anyhow::Result<String> {
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| anyhow!("a sealed field does not open: altered, or moved from elsewhere"))?;
    String::from_utf8(plain).context("a sealed field is not text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_where_it_was_written() {
        let cipher = Aes256Gcm::new(&[3u8; 32].into());
        let subject = Uuid::new_v4();
        let sealed = seal_text(&cipher, subject, "Taxi to the airport", "expense/1/E/d").unwrap();
        assert!(!sealed.contains("Taxi"));
        let (parsed_subject, bytes) = parse_sealed(&sealed).unwrap();
        assert_eq!(parsed_subject, subject);
        assert_eq!(
            open_text(&cipher, &bytes, "expense/1/E/d").unwrap(),
            "Taxi to the airport"
        );
        assert!(open_text(&cipher, &bytes, "expense/2/E/d").is_err());
    }

    #[test]
    fn plain_text_is_not_taken_for_a_sealed_field() {
        assert_eq!(parse_sealed("Lunch with a client"), None);
        assert_eq!(parse_sealed("ew1: not really"), None);
        assert_eq!(parse_sealed("ew1:0123:AAAA"), None);
    }

    #[test]
    fn nested_fields_are_found_by_their_path() {
        let mut body = serde_json::json!({"extraction": {"text": "TOTAL 12.00"}})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            field_mut(&mut body, "extraction.text").map(|v| v.clone()),
            Some(Value::String("TOTAL 12.00".into()))
        );
        assert_eq!(field_mut(&mut body, "extraction.merchant"), None);
    }
}
