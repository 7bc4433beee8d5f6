-- Issue 19, approval chains: a user's manager in the users read model, and in the
-- expenses read model the chain of the current submission, the steps approved so far,
-- and the step now awaited — by role (`approver`, `finance`, `admin`) or by a person
-- (`manager` and `pending_user`) — since when, for the approvals queue and reminders.
ALTER TABLE rm_users ADD COLUMN manager_id text;

ALTER TABLE rm_expenses ADD COLUMN approval_steps text NOT NULL DEFAULT '[]';
ALTER TABLE rm_expenses ADD COLUMN approvals text NOT NULL DEFAULT '[]';
ALTER TABLE rm_expenses ADD COLUMN pending_approver text;
ALTER TABLE rm_expenses ADD COLUMN pending_user text;
ALTER TABLE rm_expenses ADD COLUMN step_since timestamptz;

CREATE INDEX rm_expenses_pending ON rm_expenses (organization_id, pending_approver, submitted_at, id)
    WHERE status = 'submitted';
CREATE INDEX rm_expenses_waiting ON rm_expenses (step_since) WHERE status = 'submitted';
