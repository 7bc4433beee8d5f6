//! The email worker: tells people what needs them or what happened to their things.
//!
//! - an expense submitted, or a step of its approval chain approved → whoever takes the
//!   step now awaited (the manager and their delegate of the day, or the active members
//!   of the step's roles; never the submitter nor who decided a step of the chain);
//! - a step awaited longer than `APPROVAL_REMIND_AFTER` → the same people, once per step
//!   and period ([`remind`]);
//! - approved or rejected (with the reason) → the expense's owner;
//! - a receipt that could not be read → its uploader.
//!
//! Each mail is recorded in the `email_ledger` by (event id, recipient) after the server
//! took it; a redelivered event finds the row and sends nothing again. A crash between
//! the server's acceptance and the row is the one window for a repeat, and the repeat
//! carries the same `Message-ID`. Failures are returned to the consumer, which retries
//! with growing delays and finally dead-letters the event.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use expensewise_domain::expense::{
    ExpenseEvent, ExpenseState, EXPENSE_APPROVED, EXPENSE_REJECTED, EXPENSE_STEP_APPROVED,
    EXPENSE_SUBMITTED,
};
use expensewise_domain::organization::{Member, Organization};
use expensewise_domain::policy::{ApprovalStep, Approver};
use expensewise_domain::receipt::{ReceiptState, AGGREGATE_TYPE as RECEIPT, RECEIPT_SCAN_FAILED};
use expensewise_domain::{Expense, Receipt};
use expensewise_infra::consumer::Handler;
use expensewise_infra::mail::{Mail, MailError, Mailer};
use expensewise_infra::{nats, on_database, on_writer, Database, EventStore, RecordedEvent};
use lettre::message::Mailbox;
use uuid::Uuid;

const EXPENSE: &str = expensewise_domain::expense::AGGREGATE_TYPE;

pub struct EmailWorker {
    pub store: Arc<EventStore>,
    pub db: Database,
    pub mailer: Mailer,
    /// The base of links in mails, without a trailing slash.
    pub public_url: String,
}

#[async_trait]
impl Handler for EmailWorker {
    fn name(&self) -> &'static str {
        "email"
    }

    fn handles(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (EXPENSE, EXPENSE_SUBMITTED),
            (EXPENSE, EXPENSE_STEP_APPROVED),
            (EXPENSE, EXPENSE_APPROVED),
            (EXPENSE, EXPENSE_REJECTED),
            (RECEIPT, RECEIPT_SCAN_FAILED),
        ]
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        let event_id = nats::event_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
        let mails = self.mails_for(event, event_id).await?;
        self.deliver(event_id, mails, &event.event_type).await
    }
}

impl EmailWorker {
    /// Sends each mail not sent before under `key` (an event's id, or a reminder's), and
    /// records it once the server took it.
    async fn deliver(&self, key: Uuid, mails: Vec<(Uuid, Mail)>, why: &str) -> anyhow::Result<()> {
        for (recipient, mail) in mails {
            if self.already_sent(key, recipient).await? {
                continue;
            }
            match self.mailer.send(&mail).await {
                Ok(()) => metrics::counter!("expensewise_emails_sent_total").increment(1),
                // Retrying cannot change a refusal; the others still get theirs.
                Err(MailError::Permanent(reason)) => {
                    metrics::counter!("expensewise_emails_failed_total", "reason" => "refused")
                        .increment(1);
                    tracing::warn!(%key, %recipient, reason, "mail refused for good");
                    continue;
                }
                Err(e) => {
                    metrics::counter!("expensewise_emails_failed_total", "reason" => "unavailable")
                        .increment(1);
                    return Err(e.into());
                }
            }
            self.record(key, recipient, &mail.message_id).await?;
            tracing::info!(%key, %recipient, why, "mail sent");
        }
        Ok(())
    }

    /// The mails an event calls for, each with its recipient's user id.
    async fn mails_for(
        &self,
        event: &RecordedEvent,
        event_id: Uuid,
    ) -> anyhow::Result<Vec<(Uuid, Mail)>> {
        if event.aggregate_type == RECEIPT {
            let receipt: Receipt = self.store.load(&event.aggregate_id).await?;
            let Some(receipt) = receipt.state else {
                anyhow::bail!("receipt {} is not in the store", event.aggregate_id);
            };
            return self.scan_failed(event, event_id, &receipt).await;
        }
        let expense: Expense = self.store.load(&event.aggregate_id).await?;
        let Some(expense) = expense.state else {
            anyhow::bail!("expense {} is not in the store", event.aggregate_id);
        };
        let organization = self
            .store
            .load_organization(&expense.organization_id.to_string())
            .await?;
        let owner = organization.member(expense.owner_id);
        let link = format!("{}/v1/expenses/{}", self.public_url, event.aggregate_id);
        let what = describe(&expense);
        let payload: ExpenseEvent =
            serde_json::from_value(serde_json::Value::clone(&event.payload))?;
        // Decisions go to the owner, while they are still active.
        let to_owner = |subject: String, text: String| -> anyhow::Result<Vec<(Uuid, Mail)>> {
            active(owner)
                .map(|m| mail(m, subject, text, event_id, expense.owner_id))
                .transpose()
                .map(|m| m.map(|m| (expense.owner_id, m)).into_iter().collect())
        };
        let mails = match payload {
            ExpenseEvent::ExpenseSubmitted { .. } | ExpenseEvent::ExpenseStepApproved { .. } => {
                let from = owner.map_or("Someone", |m| m.name.as_str());
                let Some((n, step)) = expense.pending_step() else {
                    // Decided or withdrawn since: nobody is waited for.
                    return Ok(Vec::new());
                };
                let of = expense.chain().len();
                let text = format!(
                    "{from} submitted an expense for approval (step {} of {of}):\n\n{what}\n\n\
                     Review it: {link}\n",
                    n + 1
                );
                takers(&organization, &expense, &step)
                    .into_iter()
                    .map(|(id, member)| {
                        let subject = format!("Expense to approve: {what}");
                        Ok((id, mail(member, subject, text.clone(), event_id, id)?))
                    })
                    .collect::<anyhow::Result<_>>()?
            }
            ExpenseEvent::ExpenseApproved { comment, .. } => {
                let comment = comment
                    .map(|c| format!("\nComment: {c}\n"))
                    .unwrap_or_default();
                let text =
                    format!("Your expense was approved:\n\n{what}\n{comment}\nSee it: {link}\n");
                to_owner(format!("Approved: {what}"), text)?
            }
            ExpenseEvent::ExpenseRejected { reason, .. } => {
                let text = format!(
                    "Your expense was rejected:\n\n{what}\n\nReason: {reason}\n\n\
                     You can change it and submit it again: {link}\n"
                );
                to_owner(format!("Rejected: {what}"), text)?
            }
            _ => Vec::new(),
        };
        Ok(mails)
    }

    async fn scan_failed(
        &self,
        event: &RecordedEvent,
        event_id: Uuid,
        receipt: &ReceiptState,
    ) -> anyhow::Result<Vec<(Uuid, Mail)>> {
        let organization = self
            .store
            .load_organization(&receipt.organization_id.to_string())
            .await?;
        let Some(uploader) = active(organization.member(receipt.uploader_id)) else {
            return Ok(Vec::new());
        };
        let reason = receipt
            .failure_reason
            .as_deref()
            .unwrap_or("the receipt could not be read");
        let link = format!("{}/v1/receipts/{}", self.public_url, event.aggregate_id);
        let text = format!(
            "The receipt you uploaded on {} could not be read: {reason}.\n\n\
             You can enter the expense by hand, or upload a clearer picture.\n\nThe receipt: {link}\n",
            receipt.uploaded_at.format("%Y-%m-%d %H:%M UTC")
        );
        Ok(vec![(
            receipt.uploader_id,
            mail(
                uploader,
                "Your receipt could not be read".to_string(),
                text,
                event_id,
                receipt.uploader_id,
            )?,
        )])
    }

    async fn already_sent(&self, event_id: Uuid, recipient: Uuid) -> anyhow::Result<bool> {
        let found: Option<(String,)> = on_database!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT message_id FROM email_ledger WHERE event_id = $1 AND recipient = $2",
            )
            .bind(event_id.to_string())
            .bind(recipient.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    async fn record(
        &self,
        event_id: Uuid,
        recipient: Uuid,
        message_id: &str,
    ) -> anyhow::Result<()> {
        on_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO email_ledger (event_id, recipient, message_id, sent_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (event_id, recipient) DO NOTHING",
            )
            .bind(event_id.to_string())
            .bind(recipient.to_string())
            .bind(message_id)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

/// Who takes `step` of the expense's chain today: its manager and whoever decides for them
/// today, or the active members of its roles — never the owner, nor anyone who decided a
/// step of this chain.
fn takers<'a>(
    organization: &'a Organization,
    expense: &ExpenseState,
    step: &ApprovalStep,
) -> Vec<(Uuid, &'a Member)> {
    let today = Utc::now().date_naive();
    let decided = |id: Uuid| {
        expense
            .approvals
            .iter()
            .any(|a| a.approver_id == id || a.on_behalf_of == Some(id))
    };
    let mut people: Vec<Uuid> = match step.approver {
        Approver::Manager => step.user_id.into_iter().collect(),
        other => organization
            .members()
            .filter(|(_, m)| other.roles().contains(&m.role))
            .map(|(id, _)| *id)
            .collect(),
    };
    if step.approver == Approver::Manager {
        let stand_ins = people.iter().filter_map(|p| {
            organization
                .member(*p)
                .and_then(|m| m.delegation.as_ref())
                .filter(|d| d.covers(today))
                .map(|d| d.delegate_id)
        });
        people = people
            .iter()
            .copied()
            .chain(stand_ins.collect::<Vec<_>>())
            .collect();
    }
    people
        .into_iter()
        .filter(|id| *id != expense.owner_id && !decided(*id))
        .filter_map(|id| active(organization.member(id)).map(|m| (id, m)))
        .collect()
}

/// Mails a reminder for each step awaited longer than `after`, once per step and period:
/// the mail's key names the expense, the step and how many periods it has waited, so a
/// step waiting two periods is reminded twice, and each reminder only once whatever
/// replica sends it.
pub async fn remind(worker: &EmailWorker, after: std::time::Duration) -> anyhow::Result<usize> {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_0b7a_52d4_4e0f_9a3b_7d2e_11c8_f4a5);
    let now = Utc::now();
    let after = chrono::Duration::from_std(after)?;
    let due =
        expensewise_projections::expenses::waiting_since(&worker.db, now - after, 500).await?;
    let mut sent = 0;
    for (organization_id, row) in due {
        let expense: Expense = worker.store.load(&row.id.to_string()).await?;
        let Some(expense) = expense.state else {
            continue;
        };
        let (Some((n, step)), Some(since)) = (expense.pending_step(), expense.step_since) else {
            continue;
        };
        let periods = (now - since).num_seconds() / after.num_seconds().max(1);
        if periods < 1 {
            continue;
        }
        let key = Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{}/{}", row.id, n + 1, periods).as_bytes(),
        );
        let organization = worker
            .store
            .load_organization(&organization_id.to_string())
            .await?;
        let what = describe(&expense);
        let link = format!("{}/v1/expenses/{}", worker.public_url, row.id);
        let waited = (now - since).num_hours();
        let text = format!(
            "An expense has waited {waited} hours for step {} of its approval:\n\n{what}\n\n\
             Review it: {link}\n",
            n + 1
        );
        let mails = takers(&organization, &expense, &step)
            .into_iter()
            .map(|(id, member)| {
                let subject = format!("Reminder: expense to approve: {what}");
                Ok((id, mail(member, subject, text.clone(), key, id)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        sent += mails.len();
        worker.deliver(key, mails, "approval reminder").await?;
    }
    Ok(sent)
}

fn active(member: Option<&Member>) -> Option<&Member> {
    member.filter(|m| m.active)
}

/// "Hotel Adler, 124.00 EUR, 2026-06-05 (travel)".
fn describe(expense: &ExpenseState) -> String {
    format!(
        "{}, {} {}, {} ({})",
        expense.merchant,
        expense.money.amount_string(),
        expense.money.currency().code(),
        expense.spent_on,
        expense.category
    )
}

/// A mail with a plain-text body and the same text as HTML; its `Message-ID` names the
/// event and the recipient.
pub(crate) fn mail(
    to: &Member,
    subject: String,
    text: String,
    event_id: Uuid,
    recipient: Uuid,
) -> anyhow::Result<Mail> {
    // Addresses were validated when the user was added: a failure here means an event
    // written by something else, which a person should look at (dead letter).
    let address = to
        .email
        .parse()
        .map_err(|e| anyhow::anyhow!("user {recipient} has no usable address: {e}"))?;
    Ok(letter(
        Mailbox::new(Some(to.name.clone()), address),
        subject,
        text,
        format!("{event_id}.{recipient}@expensewise"),
    ))
}

/// A mail to `to` with a plain-text body and the same text as HTML (what users wrote
/// escaped, URLs linked).
pub fn letter(to: Mailbox, subject: String, text: String, message_id: String) -> Mail {
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family: sans-serif\">{}</body></html>",
        text.trim_end()
            .split("\n\n")
            .map(|paragraph| {
                let lines: Vec<String> = paragraph.lines().map(|l| linkify(&escape(l))).collect();
                format!("<p>{}</p>", lines.join("<br>"))
            })
            .collect::<String>()
    );
    Mail {
        to,
        subject,
        text,
        html,
        message_id,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Turns the http(s) URLs of an escaped paragraph into links.
fn linkify(escaped: &str) -> String {
    escaped
        .split(' ')
        .map(|word| {
            if word.starts_with("http://") || word.starts_with("https://") {
                format!("<a href=\"{word}\">{word}</a>")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_escape_what_users_wrote_and_link_urls() {
        let member = Member {
            name: "Eve <Evil>".into(),
            email: "eve@acme.test".into(),
            role: expensewise_domain::Role::Employee,
            active: true,
            erasure: None,
            manager_id: None,
            delegation: None,
        };
        let id = Uuid::nil();
        let m = mail(
            &member,
            "Rejected".into(),
            "Reason: <script>alert(1)</script> & more\n\nSee it: https://ew.test/v1/expenses/1\n"
                .into(),
            id,
            id,
        )
        .unwrap();
        assert!(m
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(!m.html.contains("<script>"));
        assert!(m.html.contains(
            "<a href=\"https://ew.test/v1/expenses/1\">https://ew.test/v1/expenses/1</a>"
        ));
        assert_eq!(m.message_id, format!("{id}.{id}@expensewise"));
        assert_eq!(m.to.email.to_string(), "eve@acme.test");
    }
}
