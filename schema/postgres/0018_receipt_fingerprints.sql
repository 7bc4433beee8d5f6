-- Issue 19, duplicate detection: each receipt image's fingerprint (32 hex digits, none
-- for PDFs), compared against those of the organization's receipts on other expenses.
ALTER TABLE rm_receipts ADD COLUMN fingerprint text;

CREATE INDEX rm_receipts_fingerprinted ON rm_receipts (organization_id)
    WHERE fingerprint IS NOT NULL AND expense_id IS NOT NULL;
