//! The receipts read model: each receipt's latest state, found by id, by uploader, or by
//! the digest of its bytes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use expensewise_domain::organization::{OrganizationEvent, AGGREGATE_TYPE as ORGANIZATION};
use expensewise_domain::personal::ERASED;
use expensewise_domain::receipt::fingerprint::Fingerprint;
use expensewise_domain::receipt::{ReceiptEvent, ReceiptState, AGGREGATE_TYPE};
use expensewise_domain::Receipt;
use expensewise_infra::db::Tx;
use expensewise_infra::{on_database, on_tx, Database, RecordedEvent};
use uuid::Uuid;

use crate::runner::Projection;

pub const NAME: &str = "receipts";
pub const TABLE: &str = "rm_receipts";

pub struct ReceiptsProjection {
    table: &'static str,
    checkpoint: &'static str,
}

impl ReceiptsProjection {
    pub fn live() -> Self {
        Self {
            table: TABLE,
            checkpoint: NAME,
        }
    }

    pub fn shadow() -> Self {
        Self {
            table: "rm_receipts_rebuild",
            checkpoint: "receipts.rebuild",
        }
    }
}

#[async_trait]
impl Projection for ReceiptsProjection {
    fn name(&self) -> &'static str {
        self.checkpoint
    }

    fn table(&self) -> &str {
        self.table
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[AGGREGATE_TYPE, ORGANIZATION]
    }

    /// Folds the batch with the domain's own aggregate, then writes each touched
    /// receipt once.
    async fn apply(&self, tx: &mut Tx, events: &[RecordedEvent]) -> anyhow::Result<()> {
        let table = self.table;
        let mut receipts: HashMap<Uuid, Receipt> = HashMap::new();
        let mut order = Vec::new();
        for event in events.iter().filter(|e| e.aggregate_type == AGGREGATE_TYPE) {
            let id = Uuid::parse_str(&event.aggregate_id)?;
            let receipt = match receipts.entry(id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    order.push(id);
                    e.insert(load(tx, table, id).await?.unwrap_or_default())
                }
            };
            // An event the row already includes changes nothing.
            if u64::try_from(event.sequence).unwrap_or_default() > receipt.version {
                let payload: ReceiptEvent = serde::Deserialize::deserialize(&*event.payload)?;
                receipt.apply(payload);
            }
        }
        let sql = format!(
            "INSERT INTO {table} (id, organization_id, uploader_id, sha256, status, expense_id, uploaded_at, version, state, fingerprint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET \
             status = excluded.status, expense_id = excluded.expense_id, version = excluded.version, state = excluded.state"
        );
        for id in order {
            let receipt = &receipts[&id];
            let Some(state) = receipt.state.as_ref() else {
                continue;
            };
            on_tx!(tx, |conn| {
                sqlx::query(&sql)
                    .bind(id.to_string())
                    .bind(state.organization_id.to_string())
                    .bind(state.uploader_id.to_string())
                    .bind(&state.sha256)
                    .bind(state.status.as_str())
                    .bind(state.expense_id.map(|e| e.to_string()))
                    .bind(state.uploaded_at)
                    .bind(i64::try_from(receipt.version)?)
                    .bind(serde_json::to_string(state)?)
                    .bind(state.fingerprint.map(|f| f.to_string()))
                    .execute(&mut *conn)
                    .await?;
            });
        }
        for event in events.iter().filter(|e| e.aggregate_type == ORGANIZATION) {
            let erased = match serde::Deserialize::deserialize(&*event.payload)? {
                OrganizationEvent::UserErased {
                    user_id, retained, ..
                } => {
                    let sql = format!("SELECT id FROM {table} WHERE uploader_id = $1");
                    let ids: Vec<String> = on_tx!(tx, |conn| {
                        sqlx::query_scalar(&sql)
                            .bind(user_id.to_string())
                            .fetch_all(&mut *conn)
                            .await?
                    });
                    let kept: HashSet<Uuid> = retained
                        .iter()
                        .filter(|r| r.aggregate_type == AGGREGATE_TYPE)
                        .map(|r| r.aggregate_id)
                        .collect();
                    ids.iter()
                        .filter_map(|id| Uuid::parse_str(id).ok())
                        .filter(|id| !kept.contains(id))
                        .collect()
                }
                OrganizationEvent::RetentionEnded {
                    aggregate_type,
                    aggregate_id,
                    ..
                } if aggregate_type == AGGREGATE_TYPE => vec![aggregate_id],
                _ => continue,
            };
            for id in erased {
                erase_text(tx, table, id).await?;
            }
        }
        Ok(())
    }
}

/// What OCR read of the receipt reads erased, as the events do once its key is gone.
async fn erase_text(tx: &mut Tx, table: &str, id: Uuid) -> anyhow::Result<()> {
    let Some(mut state) = load(tx, table, id).await?.and_then(|r| r.state) else {
        return Ok(());
    };
    let Some(extraction) = state.extraction.as_mut() else {
        return Ok(());
    };
    extraction.text = ERASED.to_string();
    let sql = format!("UPDATE {table} SET state = $2 WHERE id = $1");
    let state = serde_json::to_string(&state)?;
    on_tx!(tx, |conn| {
        sqlx::query(&sql)
            .bind(id.to_string())
            .bind(state)
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

async fn load(tx: &mut Tx, table: &str, id: Uuid) -> anyhow::Result<Option<Receipt>> {
    let sql = format!("SELECT version, state FROM {table} WHERE id = $1");
    let row: Option<(i64, String)> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?
    });
    row.map(|(version, state)| {
        Ok(Receipt {
            state: Some(serde_json::from_str(&state)?),
            version: u64::try_from(version)?,
        })
    })
    .transpose()
}

/// A receipt of the organization as the read model has it (if it does), and the
/// receipt's version in the event store (0 when it has no events), read together: a
/// copy older than the store's, or none where the store has events, is behind.
pub async fn get(
    db: &Database,
    organization_id: Uuid,
    id: Uuid,
) -> anyhow::Result<(Option<(ReceiptState, u64)>, u64)> {
    let sql = format!(
        "SELECT {TABLE}.version, {TABLE}.state, store.store_version \
         FROM (SELECT COALESCE(MAX(sequence), 0) AS store_version FROM events \
               WHERE aggregate_type = $1 AND aggregate_id = $2) AS store \
         LEFT JOIN {TABLE} ON {TABLE}.id = $2 AND {TABLE}.organization_id = $3"
    );
    let (version, state, store_version): (Option<i64>, Option<String>, i64) =
        on_database!(db, |pool| {
            sqlx::query_as(&sql)
                .bind(AGGREGATE_TYPE)
                .bind(id.to_string())
                .bind(organization_id.to_string())
                .fetch_one(pool)
                .await?
        });
    let found = match (version, state) {
        (Some(version), Some(state)) => {
            Some((serde_json::from_str(&state)?, u64::try_from(version)?))
        }
        _ => None,
    };
    Ok((found, u64::try_from(store_version)?))
}

/// The organization's first receipt with these bytes, if any.
pub async fn first_with_digest(
    db: &Database,
    organization_id: Uuid,
    sha256: &str,
) -> anyhow::Result<Option<Uuid>> {
    let sql = format!(
        "SELECT id FROM {TABLE} WHERE organization_id = $1 AND sha256 = $2 \
         ORDER BY uploaded_at, id LIMIT 1"
    );
    let id: Option<String> = on_database!(db, |pool| {
        sqlx::query_scalar(&sql)
            .bind(organization_id.to_string())
            .bind(sha256)
            .fetch_optional(pool)
            .await?
    });
    Ok(id.map(|i| Uuid::parse_str(&i)).transpose()?)
}

/// Which receipts a list shows.
#[derive(Debug, Clone, Default)]
pub struct ReceiptFilter {
    /// A [`ScanStatus`](expensewise_domain::receipt::ScanStatus) as text.
    pub status: Option<String>,
    pub uploader_id: Option<Uuid>,
}

/// Where a page of receipts ended: the last row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCursor {
    pub uploaded_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ReceiptCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.uploaded_at.timestamp_micros(), self.id)
    }

    pub fn decode(text: &str) -> Option<ReceiptCursor> {
        let (micros, id) = text.split_once('_')?;
        Some(ReceiptCursor {
            uploaded_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Every receipt of an organization that `filter` lets through, page by page.
pub async fn list_all(
    db: &Database,
    organization_id: Uuid,
    filter: &ReceiptFilter,
) -> anyhow::Result<Vec<(Uuid, ReceiptState)>> {
    crate::all_pages(|cursor: Option<ReceiptCursor>, limit| async move {
        list(db, organization_id, filter, cursor.as_ref(), limit).await
    })
    .await
}

/// Receipts of an organization, newest upload first, `limit` per page.
pub async fn list(
    db: &Database,
    organization_id: Uuid,
    filter: &ReceiptFilter,
    cursor: Option<&ReceiptCursor>,
    limit: usize,
) -> anyhow::Result<(Vec<(Uuid, ReceiptState)>, Option<ReceiptCursor>)> {
    let sql = format!(
        "SELECT id, uploaded_at, state FROM {TABLE} WHERE organization_id = $1 \
         AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR uploader_id = $3) \
         AND ($4 IS NULL OR uploaded_at < $4 OR (uploaded_at = $4 AND id < $5)) \
         ORDER BY uploaded_at DESC, id DESC LIMIT $6"
    );
    let rows: Vec<(String, DateTime<Utc>, String)> = on_database!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(organization_id.to_string())
            .bind(filter.status.clone())
            .bind(filter.uploader_id.map(|u| u.to_string()))
            .bind(cursor.map(|c| c.uploaded_at))
            .bind(cursor.map(|c| c.id.to_string()))
            .bind(i64::try_from(limit)? + 1)
            .fetch_all(pool)
            .await?
    });
    let more = rows.len() > limit;
    let mut page = Vec::with_capacity(limit.min(rows.len()));
    let mut next = None;
    for (id, uploaded_at, state) in rows.into_iter().take(limit) {
        let id = Uuid::parse_str(&id)?;
        next = more.then_some(ReceiptCursor { uploaded_at, id });
        page.push((id, serde_json::from_str(&state)?));
    }
    Ok((page, next))
}

/// Every receipt in `status` (of one organization, or all), uploaded at or after
/// `since`, oldest first: what the operator's `receipts` commands work through.
pub async fn with_status(
    db: &Database,
    status: &str,
    since: Option<DateTime<Utc>>,
    organization_id: Option<Uuid>,
) -> anyhow::Result<Vec<(Uuid, ReceiptState)>> {
    let sql = format!(
        "SELECT id, state FROM {TABLE} WHERE status = $1 \
         AND ($2 IS NULL OR uploaded_at >= $2) AND ($3 IS NULL OR organization_id = $3) \
         ORDER BY uploaded_at, id"
    );
    let rows: Vec<(String, String)> = on_database!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(status)
            .bind(since)
            .bind(organization_id.map(|o| o.to_string()))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|(id, state)| Ok((Uuid::parse_str(&id)?, serde_json::from_str(&state)?)))
        .collect()
}

/// The expenses other than `except` that receipts of the organization with one of these
/// digests are attached to.
pub async fn expenses_with_digests(
    db: &Database,
    organization_id: Uuid,
    digests: &[String],
    except: Uuid,
) -> anyhow::Result<Vec<Uuid>> {
    let mut found = Vec::new();
    for digest in digests {
        let sql = format!(
            "SELECT DISTINCT expense_id FROM {TABLE} WHERE organization_id = $1 AND sha256 = $2 \
             AND expense_id IS NOT NULL AND expense_id <> $3"
        );
        let ids: Vec<String> = on_database!(db, |pool| {
            sqlx::query_scalar(&sql)
                .bind(organization_id.to_string())
                .bind(digest)
                .bind(except.to_string())
                .fetch_all(pool)
                .await?
        });
        for id in ids {
            let id = Uuid::parse_str(&id)?;
            if !found.contains(&id) {
                found.push(id);
            }
        }
    }
    Ok(found)
}

/// The fingerprints of the organization's receipt images attached to expenses other than
/// `except`, with their expense.
pub async fn fingerprints_elsewhere(
    db: &Database,
    organization_id: Uuid,
    except: Uuid,
) -> anyhow::Result<Vec<(Uuid, Fingerprint)>> {
    let sql = format!(
        "SELECT expense_id, fingerprint FROM {TABLE} WHERE organization_id = $1 \
         AND fingerprint IS NOT NULL AND expense_id IS NOT NULL AND expense_id <> $2"
    );
    let rows: Vec<(String, String)> = on_database!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(organization_id.to_string())
            .bind(except.to_string())
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|(expense, print)| Ok((Uuid::parse_str(&expense)?, print.parse()?)))
        .collect()
}
