//! Receipts by e-mail (issue 20, docs/receipts-by-email.md): a message a member of the
//! organization sent — forwarded by the mail front-end with the organization's token —
//! becomes one receipt per image or PDF attached, each read by OCR as an upload is. The
//! receipts' ids are derived from the message's `Message-ID`, so a message delivered twice
//! makes its receipts (and their drafts) once.

use std::path::Path;

use expensewise_domain::receipt::{sniff_content_type, MAX_NOTE, SNIFF_LEN};
use expensewise_domain::{Actor, EventMetadata, Rejection, Role};
use expensewise_infra::object_store::ObjectStore;
use expensewise_infra::{Database, EventStore};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::receipts::{self, NewReceipt, StagedFile, Uploaded};
use crate::{UseCaseError, UseCaseResult};

/// Receipt ids derived from a message live in a namespace of their own.
const MESSAGE_RECEIPTS: Uuid = Uuid::from_u128(0x2f8e_51c4_9a07_4d6b_b3e1_6c5d_08f4_a972);

/// A message as it arrived, read.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Its `Message-ID`, or a digest of its bytes when it has none.
    pub message_id: String,
    /// The sender's address (the first of `From`), in lower case.
    pub from: String,
    pub subject: String,
    /// The text of its body (its first text part, or the HTML one's text).
    pub text: String,
    pub attachments: Vec<Vec<u8>>,
}

/// Reads a raw RFC 5322 message; `None` when it is none.
pub fn read_message(raw: &[u8]) -> Option<Inbound> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())?;
    let message_id = match message.message_id() {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => format!("{:x}", Sha256::digest(raw)),
    };
    Some(Inbound {
        message_id,
        from,
        subject: message.subject().unwrap_or_default().to_string(),
        text: message
            .body_text(0)
            .map(|t| t.trim().to_string())
            .unwrap_or_default(),
        attachments: message
            .attachments()
            .map(|part| part.contents().to_vec())
            .collect(),
    })
}

/// Why a message was not taken: said to the caller and, by mail, to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownSender,
    NoReceipts,
}

impl Refusal {
    pub fn explain(&self) -> &'static str {
        match self {
            Refusal::UnknownSender => {
                "the sender's address is not that of an active member of the organization \
                 who may record expenses"
            }
            Refusal::NoReceipts => {
                "the message has no image (PNG, JPEG, WebP, TIFF) or PDF attached"
            }
        }
    }
}

/// What became of a message.
pub enum Received {
    Taken {
        sender: Actor,
        receipts: Vec<Uploaded>,
    },
    Refused(Refusal),
}

/// Where received receipts go.
pub struct Mailroom<'a> {
    pub store: &'a EventStore,
    pub objects: &'a ObjectStore,
    pub db: &'a Database,
    /// Where attachments wait while they are stored.
    pub staging: &'a Path,
    /// The largest receipt taken.
    pub max_bytes: u64,
}

/// Takes `message` for the organization of `integration` (an admin's token): the
/// sender must be an active member who may upload receipts; every attachment that is an
/// image or PDF becomes a receipt of theirs (a draft expense too, with
/// `create_expense`).
pub async fn receive(
    room: &Mailroom<'_>,
    integration: Actor,
    metadata: &EventMetadata,
    message: Inbound,
    create_expense: bool,
) -> UseCaseResult<Received> {
    let Mailroom {
        store,
        objects,
        db,
        staging,
        max_bytes,
    } = *room;
    if integration.role != Role::Admin {
        return Err(UseCaseError::Rejected(Rejection::Forbidden(
            "only an admin's token forwards receipts by e-mail".into(),
        )));
    }
    let organization = store
        .load_organization(&integration.organization_id.to_string())
        .await?;
    let sender = organization
        .members()
        .find(|(_, m)| m.active && m.email.to_lowercase() == message.from)
        .map(|(id, m)| Actor {
            user_id: *id,
            organization_id: integration.organization_id,
            role: m.role,
        });
    let Some(sender) = sender.filter(|s| receipts::may_upload(s).is_ok()) else {
        return Ok(Received::Refused(Refusal::UnknownSender));
    };
    let files: Vec<&Vec<u8>> = message
        .attachments
        .iter()
        .filter(|bytes| sniff_content_type(&bytes[..bytes.len().min(SNIFF_LEN)]).is_some())
        .collect();
    if files.is_empty() {
        return Ok(Received::Refused(Refusal::NoReceipts));
    }
    if let Some(i) = files.iter().position(|f| f.len() as u64 > max_bytes) {
        return Err(UseCaseError::Rejected(Rejection::Invalid(vec![
            expensewise_domain::FieldError::new(
                format!("attachments[{i}]"),
                format!("is larger than the limit of {max_bytes} bytes"),
            ),
        ])));
    }
    tokio::fs::create_dir_all(staging)
        .await
        .map_err(|e| anyhow::anyhow!("cannot make {}: {e}", staging.display()))?;
    let metadata = EventMetadata {
        actor_id: Some(sender.user_id),
        ..metadata.clone()
    };
    // The body's text describes the receipts: cut to what a note keeps, never refused.
    let note = Some(
        message
            .text
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .take(MAX_NOTE)
            .collect::<String>(),
    )
    .filter(|n| !n.trim().is_empty());
    let mut receipts = Vec::with_capacity(files.len());
    for (i, bytes) in files.into_iter().enumerate() {
        let mut staged = StagedFile::new(staging.join(Uuid::new_v4().to_string()));
        let path = staged
            .path()
            .ok_or_else(|| anyhow::anyhow!("a new staged file has no path"))?;
        tokio::fs::write(path, bytes)
            .await
            .map_err(|e| anyhow::anyhow!("cannot stage an attachment: {e}"))?;
        staged.size = bytes.len() as u64;
        staged.sha256 = format!("{:x}", Sha256::digest(bytes));
        staged.content_type = sniff_content_type(&bytes[..bytes.len().min(SNIFF_LEN)]);
        let name = format!(
            "{}\n{}\n{i}",
            integration.organization_id, message.message_id
        );
        let new = NewReceipt {
            id: Uuid::new_v5(&MESSAGE_RECEIPTS, name.as_bytes()),
            file: staged,
            expense_id: None,
            create_expense,
            note: note.clone(),
        };
        receipts.push(receipts::upload(store, objects, db, sender, &metadata, new).await?);
    }
    Ok(Received::Taken { sender, receipts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_for_its_sender_text_and_attachments() {
        let raw = b"From: Eve Example <Eve@Acme.test>\r\n\
            To: receipts@acme.test\r\n\
            Subject: Taxi\r\n\
            Message-ID: <abc@mail.test>\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\
            \r\n\
            --b\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            \r\n\
            Taxi to the airport\r\n\
            --b\r\n\
            Content-Type: application/pdf\r\n\
            Content-Disposition: attachment; filename=\"taxi.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            JVBERi0xLjQK\r\n\
            --b--\r\n";
        let message = read_message(raw).unwrap();
        assert_eq!(message.from, "eve@acme.test");
        assert_eq!(message.message_id, "abc@mail.test");
        assert_eq!(message.subject, "Taxi");
        assert_eq!(message.text, "Taxi to the airport");
        assert_eq!(message.attachments, vec![b"%PDF-1.4\n".to_vec()]);
        assert!(read_message(b"").is_none());
    }
}
