-- Reference rates: see the PostgreSQL migration of the same number.
CREATE TABLE exchange_rates
(
    currency    text NOT NULL,
    rate_date   text NOT NULL,
    per_euro    text NOT NULL,
    source      text NOT NULL,
    imported_at text NOT NULL,
    PRIMARY KEY (currency, rate_date)
) STRICT;
