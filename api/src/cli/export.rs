//! `expensewise export`: what `POST /v1/exports` does, for a scheduled job that hands
//! an accounting system its batch (docs/exports.md). It acts as a named admin or finance
//! user of the organization, whom the events record as the exporter.

use std::path::PathBuf;

use expensewise_application::exports::{self, Format, Request};
use expensewise_domain::Actor;
use expensewise_infra::{Config, Database, EventStore, Vault};
use expensewise_projections::checkpoint::Checkpoints;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The admin or finance user the export is made as.
    #[arg(long = "as")]
    pub user: Uuid,
    /// `csv` or `datev`.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Take expenses earlier batches took too.
    #[arg(long)]
    pub again: bool,
    /// DATEV: the fiscal year to take (the calendar year it begins in).
    #[arg(long)]
    pub fiscal_year: Option<i32>,
    /// Write the batch's file again instead of making a new one.
    #[arg(long, conflicts_with_all = ["again", "fiscal_year"])]
    pub batch: Option<Uuid>,
    /// Where the file goes (standard output without).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub async fn run(config: Config, args: ExportArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)
        .ok_or_else(|| anyhow::anyhow!("--format: {:?} is neither csv nor datev", args.format))?;
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let store = EventStore::new(db.clone(), vault);
    let organization_id = expensewise_projections::users::organization_of(&db, args.user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--as: no user {}", args.user))?;
    let organization = store
        .load_organization(&organization_id.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let role = organization
        .active_role(args.user)
        .ok_or_else(|| anyhow::anyhow!("--as: user {} is not active", args.user))?;
    let actor = Actor {
        user_id: args.user,
        organization_id,
        role,
    };
    let exported = match args.batch {
        Some(batch) => exports::batch_file(&store, &Checkpoints::default(), actor, batch).await,
        None => {
            let mut metadata =
                expensewise_application::operator_metadata(organization_id, Uuid::new_v4());
            metadata.actor_id = Some(args.user);
            let request = Request {
                batch_id: Uuid::new_v4(),
                format,
                again: args.again,
                fiscal_year: args.fiscal_year,
            };
            exports::export(&store, &Checkpoints::default(), actor, &metadata, request).await
        }
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (expense, why) in &exported.left_out {
        eprintln!("left out {expense}: {why}");
    }
    eprintln!(
        "batch {}: {} expenses, {} left for later batches",
        exported.batch_id, exported.expenses, exported.remaining
    );
    match (exported.file, args.output) {
        (None, _) => eprintln!("nothing to export"),
        (Some(file), Some(path)) => std::fs::write(&path, file)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        (Some(file), None) => {
            use std::io::Write as _;
            std::io::stdout().write_all(&file)?;
        }
    }
    db.close().await;
    Ok(())
}
