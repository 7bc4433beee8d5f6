//! The receipts read model: each receipt's latest state, found by id, by uploader, or by
//! the digest of its bytes.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;
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

    fn table(&self) -> &'static str {
        self.table
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
                let payload: ReceiptEvent = serde_json::from_value(event.payload.clone())?;
                receipt.apply(payload);
            }
        }
        let sql = format!(
            "INSERT INTO {table} (id, organization_id, uploader_id, sha256, status, expense_id, uploaded_at, version, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET \
             status = excluded.status, expense_id = excluded.expense_id, version = excluded.version, state = excluded.state"
        );
        for id in order {
            let receipt = &receipts[&id];
            let Some(state) = receipt.state.as_ref() else {
                continue;
            };
            let status = serde_json::to_value(state.status)?;
            on_tx!(tx, |conn| {
                sqlx::query(&sql)
                    .bind(id.to_string())
                    .bind(state.organization_id.to_string())
                    .bind(state.uploader_id.to_string())
                    .bind(&state.sha256)
                    .bind(status.as_str().unwrap_or_default())
                    .bind(state.expense_id.map(|e| e.to_string()))
                    .bind(state.uploaded_at)
                    .bind(i64::try_from(receipt.version)?)
                    .bind(serde_json::to_string(state)?)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        Ok(())
    }
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
