-- Issue 20, accounting exports (docs/exports.md): the batch that last took each expense
-- (ExpenseExported), so that an export takes what no export took before.
ALTER TABLE rm_expenses ADD COLUMN exported_batch text;
ALTER TABLE rm_expenses ADD COLUMN exported_format text;
ALTER TABLE rm_expenses ADD COLUMN exported_at timestamptz;

CREATE INDEX rm_expenses_to_export ON rm_expenses (organization_id, status) WHERE exported_batch IS NULL;

CREATE INDEX rm_expenses_by_batch ON rm_expenses (organization_id, exported_batch);

CREATE INDEX rm_expenses_by_update ON rm_expenses (organization_id, updated_at, id);
