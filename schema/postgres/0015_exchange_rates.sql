-- Reference rates (issue 19; domain/src/exchange.rs): on each business day, how many
-- units of a currency one euro bought, as the European Central Bank (or another source)
-- published it. Facts at a date: imported once, never changed (a differing rate for a
-- day already known is reported, not written).
CREATE TABLE exchange_rates
(
    currency    text        NOT NULL,
    rate_date   date        NOT NULL,
    -- An exact decimal, as published.
    per_euro    text        NOT NULL,
    source      text        NOT NULL,
    imported_at timestamptz NOT NULL,
    PRIMARY KEY (currency, rate_date)
);
