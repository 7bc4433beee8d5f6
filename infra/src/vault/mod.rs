//! Crypto-shredding (docs/personal-data.md): the personal fields of events
//! (`expensewise_domain::personal`) are stored encrypted with a key of the person they
//! are about, so destroying that key erases them from the log, its copies on JetStream
//! and every backup, without rewriting one event.
//!
//! - **Data keys**: one 256-bit key per data subject, made when their first personal
//!   field is written, stored in `data_keys` wrapped by the master key ([`MasterKey`]: a
//!   key file, or AWS KMS). Fields are encrypted (AES-256-GCM) with keys derived from it
//!   (HMAC-SHA-256): one for what is about the person themselves (their name, address),
//!   one for each of their expenses and receipts. Shredding deletes the person's key and
//!   remembers that it did, so no new key is ever made for them.
//! - **Retention**: what the law requires keeping (booking vouchers) outlives the
//!   person's key: before it is shredded, the derived key of each such expense or receipt
//!   is stored on its own (`retained_keys`, wrapped by the master key, with the date its
//!   retention ends), and the sweeper shreds it then.
//! - **Sealed fields** read `ew1:<subject>[.a]:<base64 of nonce and ciphertext>` (`.a`:
//!   under the key of the event's aggregate), the ciphertext bound to the aggregate,
//!   event type and field it was written for: it cannot be moved elsewhere and read
//!   there.
//! - **On the way out** (aggregates loaded, consumers, history, audit, exports) sealed
//!   fields are opened; a shredded subject's read [`ERASED`]. A field stored before
//!   encryption existed is left as it is.
//! - **Keys are cached** unwrapped in this process for [`CACHE_FOR`] (a shredded
//!   person's absence for good), and never printed.

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
use sha2::Sha256;
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
/// Follows the subject in a field sealed under its aggregate's key.
const AGGREGATE_MARK: &str = ".a";
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
    keys: Mutex<HashMap<Stored, Cached>>,
    claim_key: [u8; 32],
}

/// A key as stored: a person's, or one kept for retention after the person's was
/// shredded (the person, and the aggregate's scope).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Stored {
    Person(Uuid),
    Retained(Uuid, String),
}

/// A stored key as last read: `None` once shredded.
#[derive(Clone)]
struct Cached {
    key: Option<Arc<[u8; 32]>>,
    read_at: Instant,
}

/// What a derived key is for: the person themselves, or one of their aggregates
/// (`<aggregate type>/<aggregate id>`).
const PERSON: &str = "person";

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

    /// The database the keys are kept in.
    pub fn database(&self) -> &Database {
        &self.inner.db
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
            let scope = match personal.subject {
                Subject::Field(_) => PERSON.to_string(),
                Subject::Aggregate => aggregate_scope(&event.aggregate_type, &event.aggregate_id),
            };
            let key = Box::pin(self.key(subject, &scope, Need::Writing)).await?;
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
                        seal_text(cipher, subject, scope != PERSON, plain, &aad)?
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
            let Some((subject, of_aggregate, sealed)) = value.as_str().and_then(parse_sealed)
            else {
                continue;
            };
            let scope = match of_aggregate {
                true => aggregate_scope(aggregate_type, aggregate_id),
                false => PERSON.to_string(),
            };
            let opened = match Box::pin(self.key(subject, &scope, Need::Reading)).await? {
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
        // The payload is shared with the other consumers' copies of the event: it is
        // copied only where there may be something to open.
        if personal_fields(&event.event_type).is_some() {
            self.open_payload(
                &event.aggregate_type,
                &event.aggregate_id,
                &event.event_type,
                Arc::make_mut(&mut event.payload),
            )
            .await?;
        }
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
        self.remember(Stored::Person(subject), None);
        Ok(destroyed)
    }

    /// Keeps the key of `subject`'s aggregate (`aggregate_type`, `aggregate_id`) of
    /// `organization_id` until `until`, so that it outlives the person's own key: for
    /// what the law requires keeping. Keeping it again changes nothing, and once the
    /// person's key is shredded nothing can be kept any more (an erasure run again
    /// after it kept what it had to before shredding).
    pub async fn retain(
        &self,
        subject: Uuid,
        organization_id: Uuid,
        (aggregate_type, aggregate_id): (&str, &str),
        until: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let scope = aggregate_scope(aggregate_type, aggregate_id);
        let Some(root) = self.stored(&Stored::Person(subject), Need::Writing).await? else {
            return Ok(());
        };
        let key = derive(&root, &scope);
        let master = &self.inner.master;
        let wrapped = master
            .wrap(&key, &retained_context(subject, &scope))
            .await?;
        on_writer!(&self.inner.db, |pool| {
            sqlx::query(
                "INSERT INTO retained_keys (subject_id, scope, organization_id, wrapped, \
                 wrapped_by, retain_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (subject_id, scope) DO NOTHING",
            )
            .bind(subject.to_string())
            .bind(&scope)
            .bind(organization_id.to_string())
            .bind(&wrapped)
            .bind(master.current_id())
            .bind(until)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The kept keys whose retention ended at `as_of` and that are not shredded yet.
    pub async fn retention_ended(&self, as_of: DateTime<Utc>) -> anyhow::Result<Vec<Kept>> {
        let rows: Vec<(String, String, String, DateTime<Utc>)> =
            on_database!(&self.inner.db, |pool| {
                sqlx::query_as(
                    "SELECT subject_id, scope, organization_id, retain_until FROM retained_keys \
                     WHERE shredded_at IS NULL AND retain_until <= $1 ORDER BY retain_until",
                )
                .bind(as_of)
                .fetch_all(pool)
                .await?
            });
        rows.into_iter()
            .map(|(subject, scope, organization, until)| {
                let (aggregate_type, aggregate_id) = scope
                    .split_once('/')
                    .ok_or_else(|| anyhow!("a kept key's scope {scope} names no aggregate"))?;
                Ok(Kept {
                    subject_id: Uuid::parse_str(&subject)?,
                    organization_id: Uuid::parse_str(&organization)?,
                    aggregate_type: aggregate_type.to_string(),
                    aggregate_id: aggregate_id.to_string(),
                    until,
                })
            })
            .collect()
    }

    /// Shreds the kept key of `subject`'s aggregate: what it sealed reads [`ERASED`].
    pub async fn shred_retained(
        &self,
        subject: Uuid,
        (aggregate_type, aggregate_id): (&str, &str),
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let scope = aggregate_scope(aggregate_type, aggregate_id);
        on_writer!(&self.inner.db, |pool| {
            sqlx::query(
                "UPDATE retained_keys SET wrapped = NULL, wrapped_by = NULL, shredded_at = $3 \
                 WHERE subject_id = $1 AND scope = $2 AND shredded_at IS NULL",
            )
            .bind(subject.to_string())
            .bind(&scope)
            .bind(at)
            .execute(pool)
            .await?;
        });
        self.remember(Stored::Retained(subject, scope), None);
        Ok(())
    }

    /// Wraps every data key (and the claim key) not wrapped by the current master key
    /// with it: after a master key rotation, once this has run, the previous key can be
    /// retired. Returns how many keys were wrapped anew.
    pub async fn rotate(&self) -> anyhow::Result<usize> {
        let master = &self.inner.master;
        let current = master.current_id().to_string();
        let mut count = 0;
        for (table, name, purpose) in WRAPPED_KEYS {
            let select = format!(
                "SELECT {name}, wrapped, wrapped_by FROM {table} \
                 WHERE wrapped IS NOT NULL AND wrapped_by <> $1"
            );
            let stale: Vec<(String, Vec<u8>, String)> = on_database!(&self.inner.db, |pool| {
                sqlx::query_as(&select)
                    .bind(&current)
                    .fetch_all(pool)
                    .await?
            });
            let update = format!(
                "UPDATE {table} SET wrapped = $3, wrapped_by = $4 \
                 WHERE {name} = $1 AND wrapped_by = $2"
            );
            for (id, wrapped, wrapped_by) in stale {
                let context = format!("{purpose}{id}");
                let key = master.unwrap(&wrapped_by, &wrapped, &context).await?;
                let rewrapped = master.wrap(&key, &context).await?;
                on_writer!(&self.inner.db, |pool| {
                    sqlx::query(&update)
                        .bind(&id)
                        .bind(&wrapped_by)
                        .bind(&rewrapped)
                        .bind(&current)
                        .execute(pool)
                        .await?;
                });
                count += 1;
            }
        }
        Ok(count)
    }

    /// The key of `subject` for `scope`: derived from the person's key while it exists,
    /// else the one kept for that scope, if any; `None` when shredded.
    async fn key(
        &self,
        subject: Uuid,
        scope: &str,
        need: Need,
    ) -> anyhow::Result<Option<Aes256Gcm>> {
        let key = match self.stored(&Stored::Person(subject), need).await? {
            Some(root) => Some(derive(&root, scope)),
            None if scope != PERSON => self
                .stored(&Stored::Retained(subject, scope.to_string()), Need::Reading)
                .await?
                .map(|kept| *kept),
            None => None,
        };
        Ok(key.map(|k| Aes256Gcm::new(&k.into())))
    }

    /// A stored key, unwrapped: `None` once shredded (or, for a kept key, never kept).
    /// For writing, a person's key is made if they have none yet; for reading, a missing
    /// person's key is an error (sealed fields whose key never existed mean the store is
    /// not the one they were written to).
    async fn stored(&self, which: &Stored, need: Need) -> anyhow::Result<Option<Arc<[u8; 32]>>> {
        if let Some(cached) = self.cached(which) {
            return Ok(cached);
        }
        let key = match which {
            Stored::Person(subject) => self.person_key(*subject, need).await?,
            Stored::Retained(subject, scope) => {
                let row: Option<(Option<Vec<u8>>, Option<String>)> =
                    on_database!(&self.inner.db, |pool| {
                        sqlx::query_as(
                            "SELECT wrapped, wrapped_by FROM retained_keys \
                             WHERE subject_id = $1 AND scope = $2",
                        )
                        .bind(subject.to_string())
                        .bind(scope)
                        .fetch_optional(pool)
                        .await?
                    });
                match row {
                    Some((Some(wrapped), Some(by))) => Some(
                        self.inner
                            .master
                            .unwrap(&by, &wrapped, &retained_context(*subject, scope))
                            .await?,
                    ),
                    _ => None,
                }
            }
        };
        let key = key.map(Arc::new);
        self.remember(which.clone(), key.clone());
        Ok(key)
    }

    async fn person_key(&self, subject: Uuid, need: Need) -> anyhow::Result<Option<[u8; 32]>> {
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
        match stored {
            Some(StoredKey::Wrapped { wrapped, by }) => Ok(Some(
                self.inner
                    .master
                    .unwrap(&by, &wrapped, &subject_context(&subject.to_string()))
                    .await?,
            )),
            Some(StoredKey::Shredded) => Ok(None),
            None => Err(anyhow!("the data key of {subject} was not stored")),
        }
    }

    fn cached(&self, which: &Stored) -> Option<Option<Arc<[u8; 32]>>> {
        let keys = self.inner.keys.lock().unwrap_or_else(|e| e.into_inner());
        let cached = keys.get(which)?;
        (cached.key.is_none() || cached.read_at.elapsed() < CACHE_FOR).then(|| cached.key.clone())
    }

    fn remember(&self, which: Stored, key: Option<Arc<[u8; 32]>>) {
        let mut keys = self.inner.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(
            which,
            Cached {
                key,
                read_at: Instant::now(),
            },
        );
    }
}

/// A key kept for retention: whose, of what, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub subject_id: Uuid,
    pub organization_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub until: DateTime<Utc>,
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

/// The tables of wrapped keys: each row's name (as SQL), and the purpose the key is
/// wrapped for, which the name completes (see the `*_context` functions).
const WRAPPED_KEYS: [(&str, &str, &str); 3] = [
    ("data_keys", "subject_id", "data-key:"),
    ("retained_keys", "subject_id || '/' || scope", "retained:"),
    ("vault_secrets", "name", "secret:"),
];

fn aggregate_scope(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}/{aggregate_id}")
}

fn retained_context(subject: Uuid, scope: &str) -> String {
    format!("retained:{subject}/{scope}")
}

/// The key for `scope` derived from a person's key: HMAC-SHA-256 as a pseudo-random
/// function, so that one scope's key tells nothing of the person's or another's.
fn derive(root: &[u8; 32], scope: &str) -> [u8; 32] {
    use hmac::{Mac, SimpleHmac};
    let mut mac = <SimpleHmac<Sha256> as Mac>::new_from_slice(root)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"expensewise data key\0");
    mac.update(scope.as_bytes());
    mac.finalize().into_bytes().into()
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

fn seal_text(
    cipher: &Aes256Gcm,
    subject: Uuid,
    of_aggregate: bool,
    plain: &str,
    aad: &str,
) -> anyhow::Result<String> {
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
    let scope = if of_aggregate { AGGREGATE_MARK } else { "" };
    Ok(format!(
        "{SEALED_PREFIX}{}{scope}:{}",
        subject.simple(),
        BASE64.encode(bytes)
    ))
}

/// The subject, whether the key was the aggregate's, and the nonce-and-ciphertext of a
/// sealed field; `None` for a value that is not one (a field stored before encryption,
/// or already opened).
fn parse_sealed(value: &str) -> Option<(Uuid, bool, Vec<u8>)> {
    let rest = value.strip_prefix(SEALED_PREFIX)?;
    let (key, sealed) = rest.split_once(':')?;
    let (subject, of_aggregate) = match key.strip_suffix(AGGREGATE_MARK) {
        Some(subject) => (subject, true),
        None => (key, false),
    };
    let subject = Uuid::try_parse(subject).ok()?;
    let bytes = BASE64.decode(sealed).ok()?;
    (bytes.len() > NONCE_LEN).then_some((subject, of_aggregate, bytes))
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
        let sealed = seal_text(
            &cipher,
            subject,
            true,
            "Taxi to the airport",
            "expense/1/E/d",
        )
        .unwrap();
        assert!(!sealed.contains("Taxi"));
        let (parsed_subject, of_aggregate, bytes) = parse_sealed(&sealed).unwrap();
        assert_eq!(parsed_subject, subject);
        assert!(of_aggregate);
        assert_eq!(
            open_text(&cipher, &bytes, "expense/1/E/d").unwrap(),
            "Taxi to the airport"
        );
        assert!(open_text(&cipher, &bytes, "expense/2/E/d").is_err());
    }

    #[test]
    fn each_scope_has_a_key_of_its_own() {
        let root = [9u8; 32];
        assert_ne!(derive(&root, PERSON), derive(&root, "expense/1"));
        assert_ne!(derive(&root, "expense/1"), derive(&root, "expense/2"));
        assert_eq!(derive(&root, "expense/1"), derive(&root, "expense/1"));
        assert_ne!(derive(&root, PERSON), root);
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
