//! `expensewise rates`: the reference rates expenses in other currencies are converted
//! at (issue 19; docs/currencies.md).

use std::io::Read as _;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::Subcommand;
use expensewise_domain::exchange::{parse_ecb_csv, ECB};
use expensewise_domain::money::{Currency, Money};
use expensewise_infra::{exchange_rates, Config, Database};

#[derive(Debug, Subcommand)]
pub enum RatesCommand {
    /// Keep the rates of an ECB file (the history `eurofxref-hist.csv` or the daily
    /// `eurofxref.csv`, each also as the ECB's .zip), from a path or an http(s) URL. Days
    /// already kept keep their rate; a file that says otherwise is reported.
    Import {
        /// A path, or a URL such as
        /// https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip
        file: String,
        /// Where the rates come from, recorded with each conversion.
        #[arg(long, default_value = ECB)]
        source: String,
    },
    /// Convert an amount at the kept rates of a day, as an expense of that day would be.
    Convert {
        #[arg(long)]
        amount: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// The day (YYYY-MM-DD): its rates, or the latest published before it.
        #[arg(long)]
        on: NaiveDate,
    },
}

pub async fn run(config: Config, action: RatesCommand) -> anyhow::Result<()> {
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let result = match action {
        RatesCommand::Import { file, source } => {
            let bytes = read(&file).await?;
            let text = unzipped(bytes).with_context(|| format!("reading {file}"))?;
            let rates = parse_ecb_csv(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            let imported = exchange_rates::import(&db, &rates, &source).await?;
            println!(
                "{} rates added, {} already kept, {} kept ones differ from the file (kept)",
                imported.added,
                imported.known,
                imported.conflicting.len()
            );
            for (currency, date) in imported.conflicting.iter().take(20) {
                println!("  differs: {currency} on {date}");
            }
            Ok(())
        }
        RatesCommand::Convert {
            amount,
            from,
            to,
            on,
        } => {
            let currency = |code: &str| Currency::parse(code).map_err(|e| anyhow::anyhow!("{e}"));
            let amount = Money::parse(&amount, currency(&from)?)
                .map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            let converted = exchange_rates::convert_on(&db, &amount, currency(&to)?, on)
                .await?
                .with_context(|| format!("no rates of {from} and {to} kept for {on}"))?;
            println!("{}", serde_json::to_string_pretty(&converted)?);
            Ok(())
        }
    };
    db.close().await;
    result
}

async fn read(file: &str) -> anyhow::Result<Vec<u8>> {
    if file.starts_with("http://") || file.starts_with("https://") {
        let response = reqwest::get(file).await?.error_for_status()?;
        return Ok(response.bytes().await?.to_vec());
    }
    std::fs::read(file).with_context(|| format!("cannot read {file}"))
}

/// The CSV itself, or the one file of the ECB's ZIP.
fn unzipped(bytes: Vec<u8>) -> anyhow::Result<String> {
    if !bytes.starts_with(b"PK") {
        return Ok(String::from_utf8(bytes)?);
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let mut file = archive.by_index(0)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}
