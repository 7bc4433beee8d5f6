//! Erasure (GDPR art. 17) that respects retention law (docs/personal-data.md).
//!
//! Erasing a user closes their account for good and destroys their key, so that
//! everything personal of theirs in the log reads `[erased]` — except booking vouchers:
//! expenses that were submitted, their receipts and the decisions on them, which tax law
//! requires keeping (§147 AO, §257 HGB). Those keep a key of their own until the end of
//! the calendar year they were last changed in plus the retention years; the sweeper
//! then ends their retention — a receipt's file is deleted — unless a legal hold stands.
//!
//! Every step is an event (`UserErased` with the plan, `EmailReleased`,
//! `RetentionEnded`), and each step can be run again: an erasure cut short is finished
//! by asking for it again.

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use expensewise_domain::email_claim::{EmailClaim, EmailClaimCommand, ReleaseEmail};
use expensewise_domain::expense::{ExpenseStatus, AGGREGATE_TYPE as EXPENSE};
use expensewise_domain::organization::{
    Erasure, OrganizationCommand, Retention, VOUCHER_RETENTION_BASIS,
};
use expensewise_domain::receipt::AGGREGATE_TYPE as RECEIPT;
use expensewise_domain::{Actor, EventMetadata, Expense, Organization, Receipt, Role};
use expensewise_infra::event_store::{Committed, Scope};
use expensewise_infra::object_store::{ObjectStore, StoredFile};
use expensewise_infra::EventStore;
use uuid::Uuid;

use crate::{UseCaseError, UseCaseResult};

fn technical(e: impl Into<anyhow::Error>) -> UseCaseError {
    UseCaseError::Technical(e.into())
}

/// Why a receipt under a legal hold is kept.
const LEGAL_HOLD_BASIS: &str = "legal hold: kept while the hold stands";
/// Why a receipt that is no voucher is kept.
const FILE_LOCK_BASIS: &str =
    "its file is locked until then (S3 Object Lock, set when it was stored); not a voucher";

/// The end of a booking voucher's retention: 1 January after the year it was last
/// changed in, plus `years`.
pub fn retained_until(last_changed: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    let year = last_changed.year() + 1 + years as i32;
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Who erases: an admin of the organization, or an operator's command line.
pub enum Eraser<'a> {
    Admin(&'a Actor),
    Operator { organization_id: Uuid },
}

/// Erases `user_id`; `retention_years` is how long booking vouchers are kept
/// (`RECEIPT_RETENTION_YEARS`). Returns the erasure as recorded.
pub async fn erase_user(
    store: &EventStore,
    objects: &ObjectStore,
    eraser: Eraser<'_>,
    metadata: &EventMetadata,
    user_id: Uuid,
    retention_years: u32,
) -> UseCaseResult<(Erasure, Committed<Organization>)> {
    let (organization_id, actor_id) = match eraser {
        Eraser::Admin(actor) if actor.role != Role::Admin => {
            return Err(UseCaseError::forbidden("only admins erase users"))
        }
        Eraser::Admin(actor) => (actor.organization_id, Some(actor.user_id)),
        Eraser::Operator { organization_id } => (organization_id, None),
    };
    let organization: Organization = store
        .load_organization(&organization_id.to_string())
        .await?;
    let member = organization
        .member(user_id)
        .cloned()
        .ok_or_else(|| UseCaseError::not_found("no such user in this organization"))?;
    let Plan { retained, files } = match &member.erasure {
        Some(erasure) => Plan {
            retained: erasure
                .retained
                .iter()
                .map(|r| r.retention.clone())
                .collect(),
            files: Vec::new(),
        },
        None => {
            Box::pin(plan(
                store,
                objects,
                organization_id,
                user_id,
                retention_years,
            ))
            .await?
        }
    };
    let at = Utc::now();
    let committed = store
        .execute::<Organization>(
            &Scope::none(),
            &organization_id.to_string(),
            OrganizationCommand::EraseUser {
                actor_id,
                user_id,
                retained: retained.clone(),
                at,
            },
            metadata,
        )
        .await?;
    for file in &files {
        objects.delete(file, at).await.map_err(technical)?;
    }
    if member.erasure.is_none() {
        // The address as it was before this erasure; one erasure cut short before this
        // step leaves the address claimed (the person is erased all the same).
        release_email(store, metadata, &member.email, user_id).await?;
    }
    let vault = store.vault();
    // Before the key is destroyed: the vouchers' own keys are derived from it.
    for r in &retained {
        vault
            .retain(
                user_id,
                organization_id,
                (&r.aggregate_type, &r.aggregate_id.to_string()),
                r.until,
            )
            .await
            .map_err(technical)?;
    }
    vault.shred(user_id, at).await.map_err(technical)?;
    // Snapshots hold the aggregates as loaded, the person's fields in clear.
    let mut snapshotted = vec![(
        expensewise_domain::organization::AGGREGATE_TYPE,
        organization_id.to_string(),
    )];
    snapshotted.extend(
        super::theirs(store, organization_id, user_id)
            .await?
            .0
            .into_iter()
            .map(|row| (EXPENSE, row.id.to_string())),
    );
    store
        .forget_snapshots(&snapshotted)
        .await
        .map_err(technical)?;
    let erasure = committed
        .aggregate
        .member(user_id)
        .and_then(|m| m.erasure.clone())
        .ok_or_else(|| technical(anyhow::anyhow!("the erasure was not recorded")))?;
    Ok((erasure, committed))
}

/// The erasure of `user_id` as recorded, if they were erased (admins, and auditors).
pub fn erasure_of(
    actor: &Actor,
    organization: &Organization,
    user_id: Uuid,
) -> UseCaseResult<Option<Erasure>> {
    if !matches!(actor.role, Role::Admin | Role::Auditor) {
        return Err(UseCaseError::forbidden(
            "only admins and auditors see erasures",
        ));
    }
    let member = organization
        .member(user_id)
        .ok_or_else(|| UseCaseError::not_found("no such user in this organization"))?;
    Ok(member.erasure.clone())
}

/// The person's expenses that were ever submitted, and the receipts they uploaded that
/// belong to one: booking vouchers, with the date their retention ends.
/// What an erasure keeps, and the receipt files it deletes (once it is recorded).
struct Plan {
    retained: Vec<Retention>,
    files: Vec<StoredFile>,
}

async fn plan(
    store: &EventStore,
    objects: &ObjectStore,
    organization_id: Uuid,
    user_id: Uuid,
    retention_years: u32,
) -> UseCaseResult<Plan> {
    let mut retained = Vec::new();
    let mut files = Vec::new();
    let now = Utc::now();
    let mut until_of_expense = std::collections::HashMap::new();
    let (owned, uploaded) = super::theirs(store, organization_id, user_id).await?;
    for id in owned.into_iter().map(|row| row.id) {
        // The store decides, not the read model, which may not have seen the latest
        // submission yet: a voucher is never lost to a lagging projection.
        let expense: Expense = store.load(&id.to_string()).await?;
        let Some(state) = expense.state.as_ref().filter(|_| !expense.deleted) else {
            continue;
        };
        if state.status == ExpenseStatus::Draft && state.submitted_at.is_none() {
            continue;
        }
        let until = retained_until(state.updated_at, retention_years);
        until_of_expense.insert(id, until);
        retained.push(Retention {
            aggregate_type: EXPENSE.to_string(),
            aggregate_id: id,
            basis: VOUCHER_RETENTION_BASIS.to_string(),
            until,
        });
    }
    for (id, _) in uploaded {
        let receipt: Receipt = store.load(&id.to_string()).await?;
        let Some(state) = receipt.state.as_ref() else {
            continue;
        };
        let voucher = state.expense_id.and_then(|e| until_of_expense.get(&e));
        let file = StoredFile {
            key: state.storage_key.clone(),
            version: state.storage_version.clone(),
        };
        let (basis, until) = match voucher {
            Some(until) => (VOUCHER_RETENTION_BASIS, *until),
            // Held for a case: kept while the hold stands, the sweeper's first look
            // after its release erases it.
            None if state.legal_hold => (LEGAL_HOLD_BASIS, now),
            None => {
                // Every file is locked as it is stored, a voucher or not yet: one whose
                // lock outlasts this erasure is kept until the lock ends (what OCR read
                // of it with it: the file says as much), the rest go now.
                let locked = objects
                    .lock(&file)
                    .await
                    .ok()
                    .and_then(|l| l.retain_until)
                    .filter(|until| *until > now);
                match locked {
                    Some(until) => (FILE_LOCK_BASIS, until),
                    None => {
                        files.push(file);
                        continue;
                    }
                }
            }
        };
        retained.push(Retention {
            aggregate_type: RECEIPT.to_string(),
            aggregate_id: id,
            basis: basis.to_string(),
            until,
        });
    }
    Ok(Plan { retained, files })
}

/// Frees the person's address: it may be registered again, by anyone.
async fn release_email(
    store: &EventStore,
    metadata: &EventMetadata,
    email: &str,
    user_id: Uuid,
) -> UseCaseResult<()> {
    let (claim_id, _) = Box::pin(super::claim_of(store, email)).await?;
    store
        .execute::<EmailClaim>(
            &Scope::none(),
            &claim_id,
            EmailClaimCommand::Release(ReleaseEmail {
                user_id,
                at: Utc::now(),
            }),
            metadata,
        )
        .await?;
    Ok(())
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Retentions ended: their keys shredded.
    pub ended: usize,
    /// Receipts whose retention is over but that a legal hold (or their file's own
    /// lock) keeps.
    pub held: usize,
}

/// Ends every retention that is over at `as_of`: a receipt's file is deleted, then the
/// end recorded (`RetentionEnded`) and the kept key shredded. A receipt under a legal
/// hold, or whose file is still locked, is kept, and looked at again by the next sweep.
pub async fn sweep(
    store: &EventStore,
    objects: &ObjectStore,
    as_of: DateTime<Utc>,
) -> UseCaseResult<Swept> {
    let vault = store.vault();
    let mut swept = Swept::default();
    for kept in vault.retention_ended(as_of).await.map_err(technical)? {
        let aggregate_id = Uuid::parse_str(&kept.aggregate_id).map_err(technical)?;
        if kept.aggregate_type == RECEIPT {
            let receipt: Receipt = store.load(&kept.aggregate_id).await?;
            let deleted = match receipt.state.as_ref() {
                Some(s) if s.legal_hold => false,
                Some(s) => {
                    let file = StoredFile {
                        key: s.storage_key.clone(),
                        version: s.storage_version.clone(),
                    };
                    objects.delete(&file, as_of).await.map_err(technical)?
                }
                None => true,
            };
            if !deleted {
                swept.held += 1;
                continue;
            }
        }
        let metadata = crate::operator_metadata(kept.organization_id, Uuid::new_v4());
        store
            .execute::<Organization>(
                &Scope::none(),
                &kept.organization_id.to_string(),
                OrganizationCommand::EndRetention {
                    user_id: kept.subject_id,
                    aggregate_type: kept.aggregate_type.clone(),
                    aggregate_id,
                    at: as_of,
                },
                &metadata,
            )
            .await?;
        vault
            .shred_retained(
                kept.subject_id,
                (&kept.aggregate_type, &kept.aggregate_id),
                as_of,
            )
            .await
            .map_err(technical)?;
        if kept.aggregate_type == EXPENSE {
            store
                .forget_snapshots(&[(EXPENSE, kept.aggregate_id.clone())])
                .await
                .map_err(technical)?;
        }
        swept.ended += 1;
    }
    Ok(swept)
}
