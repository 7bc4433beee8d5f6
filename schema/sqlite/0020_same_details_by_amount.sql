-- Issue 19: duplicate detection asks for the expenses of an organization's day with the
-- same amount, oldest first (the merchant is compared ignoring case, outside the index).
-- Indexed by merchant, every create read all of the day's expenses; by amount and
-- creation, it reads the few that may match.
DROP INDEX IF EXISTS rm_expenses_same_details;
CREATE INDEX rm_expenses_same_details
    ON rm_expenses (organization_id, spent_on, amount_minor, created_at);
