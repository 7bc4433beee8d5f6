//! Receipts from upload to expense: storing the file and recording it, attaching it,
//! turning a settled reading into a draft expense, a person's review, and reading again.

use std::path::PathBuf;

use chrono::Utc;
use expensewise_domain::expense::{Context, ExpenseCommand, ExpenseDetails, ExpenseError};
use expensewise_domain::receipt::{ReceiptCommand, ReceiptState, ReviewedFields, Upload};
use expensewise_domain::{
    Actor, Currency, EventMetadata, Expense, Money, Receipt, Rejection, Role,
};
use expensewise_infra::event_store::{CommandError, Committed, Scope};
use expensewise_infra::object_store::{receipt_key, Lock, ObjectStore, StoredFile};
use expensewise_infra::{Database, EventStore, GlobalPosition};
use expensewise_projections::receipts as receipts_model;
use uuid::Uuid;

use expensewise_domain::receipt::fingerprint::{fingerprint, Fingerprint, Gray};

use crate::expenses::{judge_new, list_on_expense, parse_currency, parse_money};
use crate::{latest_today, UseCaseError, UseCaseResult};

/// The category of expenses made from receipts, for their owner to change.
pub const RECEIPT_CATEGORY: &str = "uncategorized";

/// Whether the actor may upload at all: checked before a file is received.
pub fn may_upload(actor: &Actor) -> UseCaseResult<()> {
    if actor.role.may_record_expenses() {
        Ok(())
    } else {
        Err(UseCaseError::forbidden("auditors cannot upload receipts"))
    }
}

/// A received file on local disk, removed when dropped unless storage took it.
pub struct StagedFile {
    path: Option<PathBuf>,
    pub size: u64,
    pub sha256: String,
    /// Decided from the bytes; `None` when they are no receipt file type.
    pub content_type: Option<&'static str>,
}

impl StagedFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            size: 0,
            sha256: String::new(),
            content_type: None,
        }
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A receipt to record, and what to do with it.
pub struct NewReceipt {
    /// Derived from the client's idempotency key, or random.
    pub id: Uuid,
    pub file: StagedFile,
    /// Attach to this draft (or rejected) expense of the uploader's.
    pub expense_id: Option<Uuid>,
    /// Once read, make a draft expense of it.
    pub create_expense: bool,
    /// What the uploader wrote with it: the draft's description.
    pub note: Option<String>,
}

/// The recorded receipt, and the store position a reader waits for to see it.
pub struct Uploaded {
    pub id: Uuid,
    pub receipt: ReceiptState,
    pub head: Option<GlobalPosition>,
}

/// Stores the file, records the receipt, and attaches it when asked. A retry with the
/// same key answers with the receipt the first attempt made.
pub async fn upload(
    store: &EventStore,
    objects: &ObjectStore,
    db: &Database,
    actor: Actor,
    metadata: &EventMetadata,
    mut new: NewReceipt,
) -> UseCaseResult<Uploaded> {
    // An upload is streamed, so it never runs twice: it reads everything afresh.
    let scope = &Scope::none();
    may_upload(&actor)?;
    if new.file.size == 0 {
        return Err(UseCaseError::invalid("file", "is empty"));
    }
    let content_type = new.file.content_type.ok_or_else(|| {
        UseCaseError::Rejected(Rejection::Invalid(vec![
            expensewise_domain::FieldError::new(
                "file",
                "is not a PNG, JPEG, WebP, TIFF or PDF (told by its bytes, not its name)",
            ),
        ]))
    })?;
    if new.create_expense && new.expense_id.is_some() {
        return Err(UseCaseError::invalid(
            "create_expense",
            "cannot be combined with expense_id",
        ));
    }
    if let Some(expense_id) = new.expense_id {
        let expense: Expense = store.load(&expense_id.to_string()).await?;
        let owned = expense
            .visible_to(&actor)
            .filter(|s| s.owner_id == actor.user_id)
            .ok_or_else(|| UseCaseError::not_found("no such expense of yours"))?;
        if !owned.status.editable() {
            return Err(UseCaseError::conflict(format!(
                "a {} expense takes no more receipts",
                owned.status.as_str()
            )));
        }
    }
    let id = new.id;
    // A retry of an upload answers what the first one made, and changes nothing; the
    // same retry key with another file is refused before anything is stored.
    let earlier = store.current::<Receipt>(&id.to_string()).await?;
    if let Some(state) = earlier.aggregate.state.as_ref() {
        if earlier.aggregate.visible_to(&actor).map(|s| s.uploader_id) != Some(actor.user_id) {
            return Err(UseCaseError::conflict("the receipt already exists"));
        }
        if state.sha256 != new.file.sha256 {
            return Err(UseCaseError::invalid(
                "Idempotency-Key",
                "was already used for a different request",
            ));
        }
        let receipt = state.clone();
        return Ok(Uploaded {
            id,
            receipt,
            head: earlier.head,
        });
    }
    let duplicate_of =
        receipts_model::first_with_digest(db, actor.organization_id, &new.file.sha256)
            .await?
            .filter(|d| *d != id);
    let key = receipt_key(actor.organization_id, id);
    // The file is stored before the event that points at it is written: an event never
    // names a file that is not there. (A crash in between leaves an unreferenced file.)
    let path = new
        .file
        .path
        .take()
        .ok_or_else(|| anyhow::anyhow!("the staged file was handed on already"))?;
    let fingerprint = if content_type.starts_with("image/") {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the staged file: {e}"))?;
        tokio::task::spawn_blocking(move || fingerprint_of(&bytes))
            .await
            .map_err(|e| anyhow::anyhow!("fingerprinting failed: {e}"))?
    } else {
        None
    };
    let storage_version = objects.put_file(&key, &path, content_type).await?;
    let command = ReceiptCommand::RecordUpload {
        actor,
        upload: Upload {
            content_type: content_type.to_string(),
            size: new.file.size,
            sha256: new.file.sha256.clone(),
            storage_key: key.clone(),
            storage_version,
            duplicate_of,
            expense_id: new.expense_id,
            create_expense: new.create_expense,
            fingerprint,
            note: new.note.clone(),
        },
        at: Utc::now(),
    };
    let committed = match store
        .execute::<Receipt>(scope, &id.to_string(), command, metadata)
        .await
    {
        Err(CommandError::Rejected(expensewise_domain::receipt::ReceiptError::AlreadyExists)) => {
            // Another upload of this id won the race: the same file, or a refusal. (Its
            // file and ours share one storage key, so two different files racing under
            // one retry key can still leave the loser's bytes there: not guarded yet.)
            let existing = store.current::<Receipt>(&id.to_string()).await?;
            let theirs = existing.aggregate.visible_to(&actor);
            if theirs.map(|s| s.uploader_id) != Some(actor.user_id) {
                return Err(UseCaseError::conflict("the receipt already exists"));
            }
            if theirs.is_some_and(|s| s.sha256 != new.file.sha256) {
                return Err(UseCaseError::invalid(
                    "Idempotency-Key",
                    "was already used for a different request",
                ));
            }
            existing
        }
        other => other?,
    };
    let mut head = committed.head;
    if let Some(expense_id) = new.expense_id {
        // The receipt names its expense from its upload on; the expense lists it now.
        // Written after the receipt: its position covers both.
        head = list_on_expense(store, scope, actor, metadata, expense_id, id)
            .await?
            .head;
    }
    let receipt = committed
        .aggregate
        .state
        .ok_or_else(|| anyhow::anyhow!("a stored receipt has no state"))?;
    Ok(Uploaded { id, receipt, head })
}

/// A receipt the actor may attach: theirs, in their organization.
pub(crate) async fn attachable_receipt(
    store: &EventStore,
    actor: &Actor,
    receipt_id: Uuid,
) -> UseCaseResult<ReceiptState> {
    let receipt: Receipt = store.load(&receipt_id.to_string()).await?;
    receipt
        .visible_to(actor)
        .filter(|r| r.uploader_id == actor.user_id)
        .cloned()
        .ok_or_else(|| UseCaseError::invalid("receipt_id", "no receipt of yours has this id"))
}

/// The receipt's side of an attachment: it names its expense.
pub(crate) async fn mark_attached(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    receipt_id: Uuid,
    expense_id: Uuid,
) -> UseCaseResult<()> {
    // The OCR worker records what it read on the same receipt, often at the very moment
    // it is attached: the attachment is decided again on the receipt as it then is,
    // rather than the client being told of a conflict it did not cause.
    let mut attempts = 0;
    loop {
        let attach = ReceiptCommand::AttachToExpense {
            actor,
            expense_id,
            at: Utc::now(),
        };
        match store
            .execute::<Receipt>(scope, &receipt_id.to_string(), attach, metadata)
            .await
        {
            Err(CommandError::Conflict) if attempts < 3 => attempts += 1,
            outcome => {
                outcome?;
                return Ok(());
            }
        }
    }
}

/// The id of the expense made from a receipt: one receipt, one expense, however often
/// the receipt is read, reviewed, or its events delivered.
pub fn expense_from_receipt(receipt_id: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x2b7f_91c4_0d3e_4a58_a6e2_58f1_c93d_047b);
    Uuid::new_v5(&NAMESPACE, receipt_id.as_bytes())
}

/// Makes the draft expense of a receipt uploaded with `create_expense`, once its fields
/// are settled (read with confidence, or reviewed by a person); `None` when no expense
/// is to be made (yet).
pub async fn draft_from_receipt(
    store: &EventStore,
    receipt_id: Uuid,
    metadata: &EventMetadata,
) -> UseCaseResult<Option<Uuid>> {
    // Workers are not requests: nothing is decided on what this process remembers.
    let scope = &Scope::none();
    let receipt: Receipt = store.load(&receipt_id.to_string()).await?;
    let receipt = receipt
        .state
        .ok_or_else(|| anyhow::anyhow!("receipt {receipt_id} is not in the store"))?;
    if !receipt.create_expense || !receipt.settled() {
        return Ok(None);
    }
    let fields = receipt.fields();
    let Some(money) = fields.total else {
        // An expense needs an amount; the receipt shows what was read instead.
        tracing::info!(receipt = %receipt_id, "no total on the receipt: no expense made");
        return Ok(None);
    };
    let organization = store
        .load_organization(&receipt.organization_id.to_string())
        .await?;
    let Some(member) = organization
        .member(receipt.uploader_id)
        .filter(|m| m.active)
    else {
        tracing::info!(receipt = %receipt_id, "the uploader is no longer active: no expense made");
        return Ok(None);
    };
    let actor = Actor {
        user_id: receipt.uploader_id,
        organization_id: receipt.organization_id,
        role: member.role,
    };
    let today = latest_today();
    // A date misread into the future is no date.
    let spent_on = fields
        .date
        .filter(|d| *d <= today)
        .unwrap_or_else(|| receipt.uploaded_at.date_naive());
    let expense_id = expense_from_receipt(receipt_id);
    let details = ExpenseDetails {
        money,
        merchant: fields
            .merchant
            .unwrap_or_else(|| "Unknown merchant".to_string()),
        category: RECEIPT_CATEGORY.to_string(),
        spent_on,
        description: Some(
            receipt
                .note
                .clone()
                .unwrap_or_else(|| "Pre-filled from a scanned receipt".to_string()),
        ),
        mileage: None,
    };
    let (valuation, assessment) = judge_new(
        store,
        scope,
        actor,
        expense_id,
        &details,
        &[receipt_id],
        None,
    )
    .await?;
    let command = ExpenseCommand::CreateExpense {
        ctx: Context {
            actor,
            at: Utc::now(),
            expected_version: None,
        },
        details,
        receipt_id: Some(receipt_id),
        today,
        valuation,
        assessment,
    };
    match store
        .execute::<Expense>(scope, &expense_id.to_string(), command, metadata)
        .await
    {
        Ok(_) | Err(CommandError::Rejected(ExpenseError::AlreadyExists)) => {}
        Err(e) => return Err(e.into()),
    }
    mark_attached(store, scope, actor, metadata, receipt_id, expense_id).await?;
    Ok(Some(expense_id))
}

/// A reviewer's answer: what they leave out is confirmed as read.
#[derive(Debug, Default)]
pub struct ReviewInput {
    pub merchant: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    pub amount: Option<String>,
    pub currency: Option<String>,
}

/// Confirms or corrects a receipt that needs review (or failed to scan): the uploader,
/// an approver or an admin. The draft expense, when one was asked for, follows from the
/// recorded review (see [`draft_from_receipt`]).
pub async fn review(
    store: &EventStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    receipt_id: Uuid,
    input: ReviewInput,
) -> UseCaseResult<Committed<Receipt>> {
    let loaded = store
        .load_for_command::<Receipt>(scope, &receipt_id.to_string())
        .await?;
    // Employees do not learn of other employees' receipts.
    let state = loaded
        .aggregate()
        .visible_to(&actor)
        .filter(|s| s.uploader_id == actor.user_id || actor.role != Role::Employee)
        .ok_or_else(|| UseCaseError::not_found("no such receipt"))?;
    let read = state.fields();
    let mut errors = Vec::new();
    let currency: Option<Currency> = match input.currency.as_deref() {
        Some(code) => parse_currency(code).map_err(|e| errors.push(e)).ok(),
        None => read.total.map(|m| m.currency()),
    };
    let total: Option<Money> = match (input.amount.as_deref(), currency) {
        (Some(amount), Some(c)) => parse_money(amount, c).map_err(|e| errors.push(e)).ok(),
        (None, Some(c)) => match read.total {
            Some(m) if m.currency() == c => Some(m),
            Some(m) => parse_money(&m.amount().to_string(), c)
                .map_err(|e| errors.push(e))
                .ok(),
            None => None,
        },
        (_, None) => None,
    };
    let merchant = input.merchant.or(read.merchant);
    let date = input.date.or(read.date);
    if total.is_none() && errors.is_empty() {
        errors.push(expensewise_domain::FieldError::new(
            "amount",
            "nothing was read: give the amount and currency",
        ));
    }
    if merchant.is_none() {
        errors.push(expensewise_domain::FieldError::new(
            "merchant",
            "nothing was read: give the merchant",
        ));
    }
    if date.is_none() {
        errors.push(expensewise_domain::FieldError::new(
            "date",
            "nothing was read: give the date",
        ));
    }
    let (Some(total), Some(merchant), Some(date), true) =
        (total, merchant, date, errors.is_empty())
    else {
        return Err(UseCaseError::Rejected(Rejection::Invalid(errors)));
    };
    let command = ReceiptCommand::Review {
        actor,
        fields: ReviewedFields {
            merchant,
            date,
            total,
        },
        today: latest_today(),
        at: Utc::now(),
    };
    Ok(store.execute_loaded(loaded, command, metadata).await?)
}

/// Reads a receipt again (a failed, unsure or scanned one). `actor` is `None` for an
/// operator. The expense made of it, if any, stays the one expense.
pub async fn rescan(
    store: &EventStore,
    scope: &Scope,
    actor: Option<Actor>,
    metadata: &EventMetadata,
    receipt_id: Uuid,
) -> UseCaseResult<Committed<Receipt>> {
    let command = ReceiptCommand::RequestRescan {
        actor,
        at: Utc::now(),
    };
    Ok(store
        .execute::<Receipt>(scope, &receipt_id.to_string(), command, metadata)
        .await?)
}

/// A legal hold to place (`on`, with why) or release.
pub struct LegalHold {
    pub on: bool,
    pub reason: Option<String>,
}

/// An admin or auditor places (with a reason) or releases a legal hold on a receipt's
/// file; the answer says how the file is kept now. Placing one locks the file before the
/// history records it, releasing records it before unlocking: a step that fails halfway
/// leaves the file kept longer, never shorter.
pub async fn set_legal_hold(
    store: &EventStore,
    objects: &ObjectStore,
    scope: &Scope,
    actor: Actor,
    metadata: &EventMetadata,
    receipt_id: Uuid,
    LegalHold { on, reason }: LegalHold,
) -> UseCaseResult<(Committed<Receipt>, Lock)> {
    let receipt: Receipt = store.load(&receipt_id.to_string()).await?;
    let stored = receipt
        .visible_to(&actor)
        .ok_or_else(|| UseCaseError::not_found("no such receipt"))?;
    let file = StoredFile {
        key: stored.storage_key.clone(),
        version: stored.storage_version.clone(),
    };
    if !matches!(actor.role, Role::Admin | Role::Auditor) {
        return Err(UseCaseError::forbidden(
            "only admins and auditors place or release legal holds",
        ));
    }
    if on && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(UseCaseError::invalid(
            "reason",
            "say why the receipt is held",
        ));
    }
    if on {
        objects.set_legal_hold(&file, true).await?;
    }
    // OCR may record its reading of the receipt meanwhile; the hold is decided again on
    // the receipt as it then stands.
    let mut attempts = 0;
    let committed = loop {
        attempts += 1;
        let command = ReceiptCommand::SetLegalHold {
            actor,
            on,
            reason: reason.clone(),
            at: Utc::now(),
        };
        match store
            .execute::<Receipt>(scope, &receipt_id.to_string(), command, metadata)
            .await
        {
            Err(CommandError::Conflict) if attempts < 3 => continue,
            outcome => break outcome?,
        }
    };
    if !on {
        objects.set_legal_hold(&file, false).await?;
    }
    Ok((committed, objects.lock(&file).await?))
}

/// The fingerprint of a receipt image (PNG, JPEG, WebP, TIFF), for finding the same
/// receipt again; `None` for PDFs, undecodable files and images without print.
pub fn fingerprint_of(bytes: &[u8]) -> Option<Fingerprint> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let gray = reader.decode().ok()?.into_luma8();
    fingerprint(&Gray {
        pixels: gray.as_raw(),
        width: gray.width() as usize,
        height: gray.height() as usize,
    })
}
