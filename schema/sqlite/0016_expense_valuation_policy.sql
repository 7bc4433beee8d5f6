-- Issue 19: an expense's amount in its organization's currency and the rate that made
-- it, and its latest policy evaluation (of the submission once submitted). Expenses
-- recorded before have no amount in the base currency (NULL) and met no policy (0).
ALTER TABLE rm_expenses ADD COLUMN base_amount text;
-- In the base currency's minor units, for exact sums.
ALTER TABLE rm_expenses ADD COLUMN base_amount_minor integer;
ALTER TABLE rm_expenses ADD COLUMN base_currency text;
-- The rate as recorded in the event (JSON), NULL when none was needed.
ALTER TABLE rm_expenses ADD COLUMN rate text;
ALTER TABLE rm_expenses ADD COLUMN policy_version integer NOT NULL DEFAULT 0;
-- JSON array of {rule, level, message}.
ALTER TABLE rm_expenses ADD COLUMN violations text NOT NULL DEFAULT '[]';
ALTER TABLE rm_expenses ADD COLUMN justification text;

-- Duplicate detection looks for the same merchant, amount and day in an organization.
CREATE INDEX rm_expenses_same_details ON rm_expenses (organization_id, spent_on, merchant);
