-- The review queue (GET /v1/receipts?status=needs_review) and the operator's bulk
-- rescans look receipts up by status, newest first.
CREATE INDEX rm_receipts_by_status ON rm_receipts (organization_id, status, uploaded_at DESC, id DESC);
