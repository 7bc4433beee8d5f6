//! Background workers that react to events: OCR of receipts, the process manager that
//! turns a scanned receipt into a draft expense, and mail, which run through the consumer
//! of `expensewise_infra::consumer` (JetStream or a tail of the store); and the notary,
//! which extends the audit log from the store itself.

pub mod email;
pub mod extract;
pub mod notary;
pub mod ocr;
pub mod prepare;
pub mod receipts;
pub mod webhooks;
