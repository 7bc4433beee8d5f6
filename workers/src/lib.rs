//! Background workers that react to events: OCR of receipts and the process manager that
//! turns a scanned receipt into a draft expense. They run through the consumer of
//! `expensewise_infra::consumer` (JetStream or a tail of the store).

pub mod extract;
pub mod ocr;
pub mod prepare;
pub mod receipts;
