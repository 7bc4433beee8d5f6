-- Issue 19, mileage: a mileage claim's distance and the rate that priced it, as the
-- event recorded them (JSON: {distance, rate: {unit, per_unit, valid_from,
-- valid_until}}); NULL for an amount spent.
ALTER TABLE rm_expenses ADD COLUMN mileage text;
