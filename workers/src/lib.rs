//! Background workers that react to events: OCR of receipts, e-mail notifications and
//! process managers (a scanned receipt becoming a draft expense). They arrive with the
//! receipts and notifications issues.
