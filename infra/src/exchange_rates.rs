//! Reference rates as kept (migration 0015; `expensewise_domain::exchange`): imported from
//! the ECB's files, and the rates that apply to a day.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use expensewise_domain::exchange::{self, Conversion, Rate, ReferenceRate};
use expensewise_domain::money::{Currency, Money};
use rust_decimal::Decimal;

use crate::db::{Database, Tx};

/// How far back a rate may lie from the day it is used for: past a long weekend and
/// holidays, but not a gap in the imported history.
const STALEST: chrono::Days = chrono::Days::new(10);

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: u64,
    /// Rates already kept, alike.
    pub known: u64,
    /// Rates kept for a day whose file says otherwise: the kept one stands.
    pub conflicting: Vec<(Currency, NaiveDate)>,
}

/// Keeps the rates not yet known, in one transaction; a day already known keeps its rate.
pub async fn import(
    db: &Database,
    rates: &[ReferenceRate],
    source: &str,
) -> anyhow::Result<Imported> {
    let kept: Vec<(String, NaiveDate, String)> = crate::on_database!(db, |pool| {
        sqlx::query_as("SELECT currency, rate_date, per_euro FROM exchange_rates")
            .fetch_all(pool)
            .await?
    });
    let kept: HashMap<(String, NaiveDate), Decimal> = kept
        .into_iter()
        .filter_map(|(c, d, r)| Decimal::from_str(&r).ok().map(|r| ((c, d), r)))
        .collect();
    let mut imported = Imported::default();
    let mut new = Vec::new();
    for rate in rates {
        match kept.get(&(rate.currency.code().to_string(), rate.date)) {
            None => new.push(rate),
            Some(known) if *known == rate.per_euro => imported.known += 1,
            Some(_) => imported.conflicting.push((rate.currency, rate.date)),
        }
    }
    let now = Utc::now();
    let mut tx = db.begin().await?;
    for chunk in new.chunks(5000) {
        match &mut tx {
            Tx::Postgres(tx) => {
                let currencies: Vec<&str> = chunk.iter().map(|r| r.currency.code()).collect();
                let dates: Vec<NaiveDate> = chunk.iter().map(|r| r.date).collect();
                let rates: Vec<String> = chunk.iter().map(|r| r.per_euro.to_string()).collect();
                sqlx::query(
                    "INSERT INTO exchange_rates (currency, rate_date, per_euro, source, imported_at) \
                     SELECT c, d, r, $4, $5 FROM UNNEST($1::text[], $2::date[], $3::text[]) AS t(c, d, r)",
                )
                .bind(currencies)
                .bind(dates)
                .bind(rates)
                .bind(source)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            Tx::Sqlite(tx) => {
                for rate in chunk {
                    sqlx::query(
                        "INSERT INTO exchange_rates (currency, rate_date, per_euro, source, \
                         imported_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(rate.currency.code())
                    .bind(rate.date)
                    .bind(rate.per_euro.to_string())
                    .bind(source)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
    }
    tx.commit().await?;
    imported.added = new.len() as u64;
    Ok(imported)
}

/// The latest rate of `currency` published on or before `day` (the euro's is 1), if one
/// was within [`STALEST`] of it, and its source.
pub async fn rate_on_or_before(
    db: &Database,
    currency: Currency,
    day: NaiveDate,
) -> anyhow::Result<Option<(ReferenceRate, String)>> {
    if currency.code() == "EUR" {
        let euro = ReferenceRate {
            currency,
            date: day,
            per_euro: Decimal::ONE,
        };
        return Ok(Some((euro, String::new())));
    }
    let row: Option<(NaiveDate, String, String)> = crate::on_database!(db, |pool| {
        sqlx::query_as(
            "SELECT rate_date, per_euro, source FROM exchange_rates WHERE currency = $1 \
             AND rate_date <= $2 ORDER BY rate_date DESC LIMIT 1",
        )
        .bind(currency.code())
        .bind(day)
        .fetch_optional(pool)
        .await?
    });
    let Some((date, per_euro, source)) = row else {
        return Ok(None);
    };
    if day
        .checked_sub_days(STALEST)
        .is_some_and(|oldest| date < oldest)
    {
        return Ok(None);
    }
    let rate = ReferenceRate {
        currency,
        date,
        per_euro: Decimal::from_str(&per_euro).context("a kept rate is not a decimal")?,
    };
    Ok(Some((rate, source)))
}

/// `amount` in `to` at the rates of `day` (both of one publication day: the latest on or
/// before `day` that has both), or none when the rates are not kept.
pub async fn convert_on(
    db: &Database,
    amount: &Money,
    to: Currency,
    day: NaiveDate,
) -> anyhow::Result<Option<Conversion>> {
    let mut on = day;
    // Each round moves to an earlier publication day, so this ends; a currency missing
    // from a few publications costs a round each.
    for _ in 0..10 {
        let from_rate = rate_on_or_before(db, amount.currency(), on).await?;
        let to_rate = rate_on_or_before(db, to, on).await?;
        let (Some((from_rate, from_source)), Some((to_rate, to_source))) = (from_rate, to_rate)
        else {
            return Ok(None);
        };
        let euro = |r: &ReferenceRate| r.currency.code() == "EUR";
        let date = match (euro(&from_rate), euro(&to_rate)) {
            (true, true) => on,
            (true, false) => to_rate.date,
            (false, true) => from_rate.date,
            (false, false) if from_rate.date == to_rate.date => from_rate.date,
            (false, false) => {
                on = from_rate.date.min(to_rate.date);
                continue;
            }
        };
        // The euro's side has no source of its own.
        let source = [from_source, to_source]
            .into_iter()
            .filter(|s| !s.is_empty())
            .max()
            .unwrap_or_else(|| exchange::ECB.to_string());
        let rate = Rate::Reference {
            source,
            date,
            from_per_euro: from_rate.per_euro,
            to_per_euro: to_rate.per_euro,
        };
        return Ok(Some(Conversion {
            from: *amount,
            to: rate.apply(amount, to)?,
            rate,
        }));
    }
    Ok(None)
}
