//! The `expensewise` command: one binary, one subcommand per role.

mod audit;
mod dead_letters;
mod export;
mod rates;
mod receipts;

pub use audit::Tampered;

/// Where a command writes what it exports: the file at `path` (made anew), or standard
/// output.
async fn output(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Box<dyn tokio::io::AsyncWrite + Unpin + Send>> {
    Ok(match path {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    })
}

use std::future::IntoFuture;

use clap::{Parser, Subcommand};
use expensewise_infra::{telemetry, Config, Database, Vault};
use tokio::net::TcpListener;

use expensewise_projections::{rebuild, status};
use indicatif::{ProgressBar, ProgressStyle};

use crate::server::{Background, Roles};
use crate::{openapi, server};

#[derive(Debug, Parser)]
#[command(
    name = "expensewise",
    version,
    about = "Event-sourced expense management"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: migrations, the HTTP API, the projections, and the
    /// relay to JetStream when NATS_URL is set.
    Serve,
    /// Run only the HTTP API (the projector and relay run elsewhere).
    Api,
    /// Run only the relay: publish committed events to JetStream (needs NATS_URL).
    Relay,
    /// Run only the projections (from JetStream with NATS_URL, else from the store).
    Projector,
    /// Run only the notary: extend the audit log and sign its checkpoints (one active
    /// per database, the others stand by).
    Notary,
    /// Run only a worker (from JetStream with NATS_URL, else from the store).
    Worker {
        #[command(subcommand)]
        kind: WorkerKind,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Read, bundle and verify the event history.
    Audit {
        #[command(subcommand)]
        action: audit::AuditCommand,
    },
    /// Inspect and rebuild the read models.
    Projections {
        #[command(subcommand)]
        action: ProjectionsCommand,
    },
    /// Reference rates for expenses in other currencies: import the ECB's, convert.
    Rates {
        #[command(subcommand)]
        action: rates::RatesCommand,
    },
    /// Read receipts again in bulk; export people's corrections of OCR.
    Receipts {
        #[command(subcommand)]
        action: receipts::ReceiptsCommand,
    },
    /// List, inspect, retry and discard the events workers gave up on.
    DeadLetters {
        #[command(subcommand)]
        action: dead_letters::DeadLettersCommand,
    },
    /// Export approved and reimbursed expenses no export took yet, as CSV or DATEV
    /// (docs/exports.md), as `POST /v1/exports` does.
    Export(export::ExportArgs),
    /// Erase people (GDPR art. 17) as the law allows, and end retentions that are over.
    Gdpr {
        #[command(subcommand)]
        action: GdprCommand,
    },
    /// Manage the keys personal data is encrypted with (docs/personal-data.md).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage the JetStream event stream (needs NATS_URL).
    Stream {
        #[command(subcommand)]
        action: StreamCommand,
    },
    /// Check a running deployment from outside: probes, OpenAPI, metrics, and with a
    /// login the authenticated read (and with --write, write) path.
    Smoke(crate::smoke::SmokeArgs),
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// After restoring the database from a backup: delete the stream (and its consumers)
    /// and move the relay back to the oldest read model's checkpoint, so that the next
    /// relay publishes again what the restored database holds. Stop relays, projectors
    /// and workers first.
    Reset {
        /// Publish again from the first event, for workers whose progress is unknown.
        #[arg(long)]
        from_start: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GdprCommand {
    /// Erase a user, as POST /v1/users/{id}/erasure does for an admin: the account is
    /// closed, the address freed, their personal data erased except booking vouchers,
    /// which are kept until their retention ends.
    Erase {
        /// The user's id.
        user: uuid::Uuid,
    },
    /// End every retention that is over now (what the background sweeper does hourly).
    Sweep,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// After changing the master key (DATA_KEY_FILE, or KMS_KEY_ID, with the old file as
    /// DATA_KEY_PREVIOUS_FILE): wrap every data key with the new one. Runs beside the
    /// product; once it has, the old key is no longer needed.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum WorkerKind {
    /// Read uploaded receipts (OCR) and turn settled ones (read with confidence, or
    /// reviewed) into draft expenses.
    Ocr,
    /// Send mail: submitted expenses to approvers, decisions to owners, unreadable
    /// receipts to their uploaders (SMTP with SMTP_HOST, else files in DATA_DIR/mail).
    Email,
    /// Send the organizations' events to their webhook endpoints (from the store; one
    /// instance queues, every instance sends).
    Webhooks,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Where each read model stands, and how far behind the events it is.
    Status,
    /// Rebuild read models from the events beside the live ones, then swap them in.
    Rebuild(Selection),
    /// Rebuild beside the live models and compare checksums, without swapping.
    Verify(Selection),
}

#[derive(Debug, clap::Args)]
pub struct Selection {
    /// The read model (e.g. `expenses`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every read model.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        println!("{}", openapi::document().to_pretty_json()?);
        return Ok(());
    }
    if let Command::Smoke(args) = cli.command {
        return crate::smoke::run(args).await;
    }
    let config = Config::from_env().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    // Kept to the end of `main`: dropping it flushes the last spans.
    let _telemetry = telemetry::init(
        &config.telemetry.log_level,
        config.telemetry.otlp_endpoint.as_deref(),
    )?;
    match cli.command {
        Command::Serve | Command::Api => {
            let roles = match cli.command {
                Command::Serve => Roles::ALL,
                _ => Roles::NONE,
            };
            let address = (config.http.host, config.http.port);
            let app = server::prepare(config).await?;
            let listener = TcpListener::bind(address).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {}:{}: {e}", address.0, address.1)
            })?;
            tracing::info!(
                address = %listener.local_addr()?,
                database = app.db.kind(),
                nats = app.config.stream.nats_url.is_some(),
                "expensewise is serving; API docs at /docs"
            );
            server::serve(listener, app, roles, shutdown_signal()).await
        }
        Command::Relay => {
            if config.stream.nats_url.is_none() {
                anyhow::bail!("invalid configuration: NATS_URL: the relay needs it");
            }
            let roles = Roles {
                relay: true,
                ..Roles::NONE
            };
            run_background(config, roles).await
        }
        Command::Projector => {
            let roles = Roles {
                projector: true,
                ..Roles::NONE
            };
            run_background(config, roles).await
        }
        Command::Worker { kind } => {
            let roles = Roles {
                ocr: matches!(kind, WorkerKind::Ocr),
                email: matches!(kind, WorkerKind::Email),
                webhooks: matches!(kind, WorkerKind::Webhooks),
                ..Roles::NONE
            };
            run_background(config, roles).await
        }
        Command::Notary => {
            let roles = Roles {
                notary: true,
                ..Roles::NONE
            };
            run_background(config, roles).await
        }
        Command::Migrate => {
            let db = Database::connect(&config.database.url, 1).await?;
            db.migrate().await?;
            tracing::info!(database = db.kind(), "migrations applied");
            Ok(())
        }
        Command::Projections { action } => projections(config, action).await,
        Command::Audit { action } => audit::run(config, action).await,
        Command::Stream { action } => stream(config, action).await,
        Command::Keys { action } => keys(config, action).await,
        Command::Gdpr { action } => gdpr(config, action).await,
        Command::Receipts { action } => receipts::run(config, action).await,
        Command::DeadLetters { action } => dead_letters::run(config, action).await,
        Command::Rates { action } => rates::run(config, action).await,
        Command::Export(args) => export::run(config, args).await,
        Command::Openapi | Command::Smoke(_) => Ok(()),
    }
}

async fn gdpr(config: Config, action: GdprCommand) -> anyhow::Result<()> {
    use expensewise_application::accounts::erasure;
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let store = expensewise_infra::EventStore::new(db.clone(), vault);
    let objects = expensewise_infra::object_store::ObjectStore::open(
        &config.receipts,
        config.receipt_retention,
    )
    .await?;
    let outcome = match action {
        GdprCommand::Erase { user } => {
            // The plan is made from the expenses and receipts read models.
            let behind: Vec<_> = status::status(&db)
                .await?
                .into_iter()
                .filter(|s| {
                    [
                        expensewise_projections::expenses::NAME,
                        expensewise_projections::receipts::NAME,
                    ]
                    .contains(&s.name)
                        && s.lag > 0
                })
                .map(|s| s.name)
                .collect();
            if !behind.is_empty() {
                anyhow::bail!(
                    "the {} read models are behind the events: run the projector (or \
                     `expensewise projections rebuild --all`) first",
                    behind.join(" and ")
                );
            }
            let organization_id = expensewise_projections::users::organization_of(&db, user)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user {user}"))?;
            let metadata =
                expensewise_application::operator_metadata(organization_id, uuid::Uuid::new_v4());
            erasure::erase_user(
                &store,
                &objects,
                erasure::Eraser::Operator { organization_id },
                &metadata,
                user,
                config.receipt_retention.years,
            )
            .await
            .map(|(erased, _)| {
                println!(
                    "user {user} erased; {} booking vouchers kept until their retention ends",
                    erased.retained.len()
                );
                for r in erased.retained {
                    println!(
                        "  {} {} until {} ({})",
                        r.retention.aggregate_type,
                        r.retention.aggregate_id,
                        r.retention.until.date_naive(),
                        r.retention.basis
                    );
                }
            })
            .map_err(|e| anyhow::anyhow!("{e}"))
        }
        GdprCommand::Sweep => erasure::sweep(&store, &objects, chrono::Utc::now())
            .await
            .map(|swept| {
                println!(
                    "{} retentions ended, {} receipts kept by a legal hold or their lock",
                    swept.ended, swept.held
                )
            })
            .map_err(|e| anyhow::anyhow!("{e}")),
    };
    db.close().await;
    outcome
}

async fn keys(config: Config, action: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Rotate = action;
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let count = vault.rotate().await?;
    println!(
        "{count} keys wrapped anew with {}; every key is now wrapped by it",
        vault.master_key_id()
    );
    db.close().await;
    Ok(())
}

async fn stream(config: Config, action: StreamCommand) -> anyhow::Result<()> {
    let StreamCommand::Reset { from_start } = action;
    let Some(url) = &config.stream.nats_url else {
        anyhow::bail!("invalid configuration: NATS_URL: resetting the stream needs it");
    };
    let db = Database::connect(&config.database.url, 2).await?;
    db.migrate().await?;
    let from = if from_start {
        Default::default()
    } else {
        status::status(&db)
            .await?
            .iter()
            .map(|s| s.position)
            .min()
            .unwrap_or_default()
    };
    let js = expensewise_infra::nats::connect(url).await?;
    let from = expensewise_infra::nats::reset_stream(&db, &js, from).await?;
    println!(
        "stream {} deleted; the relay publishes again everything after {from}",
        expensewise_infra::nats::STREAM
    );
    db.close().await;
    Ok(())
}

async fn projections(config: Config, action: ProjectionsCommand) -> anyhow::Result<()> {
    let db = Database::connect(&config.database.url, 4).await?;
    db.migrate().await?;
    let vault = Vault::from_config(db.clone(), &config.keys).await?;
    let (selection, swap) = match action {
        ProjectionsCommand::Status => {
            println!(
                "{:<12} {:>24} {:>24} {:>10}",
                "read model", "position", "head", "lag"
            );
            for s in status::status(&db).await? {
                println!(
                    "{:<12} {:>24} {:>24} {:>10}",
                    s.name,
                    s.position.to_string(),
                    s.head.to_string(),
                    s.lag
                );
            }
            return Ok(());
        }
        ProjectionsCommand::Rebuild(selection) => (selection, true),
        ProjectionsCommand::Verify(selection) => (selection, false),
    };
    let models =
        match (&selection.name, selection.all) {
            (_, true) => status::read_models(),
            (Some(name), false) => vec![status::find(name)
                .ok_or_else(|| anyhow::anyhow!("no read model named {name:?}"))?],
            (None, false) => anyhow::bail!("name a read model or pass --all"),
        };
    let mut all_identical = true;
    for model in models {
        let total = status::events_after(&db, Default::default()).await?;
        let bar = ProgressBar::new(u64::try_from(total).unwrap_or_default());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{bar:40}] {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .map_err(|e| anyhow::anyhow!("progress bar template: {e}"))?
            .progress_chars("=> "),
        );
        bar.set_prefix(model.name);
        let report = rebuild::rebuild(
            &db,
            &vault,
            model.live.as_ref(),
            model.shadow.as_ref(),
            swap,
            &|n| bar.set_position(n),
        )
        .await?;
        bar.finish_and_clear();
        println!(
            "{}: {} {} events in {:.2?} ({:.0} events/s) up to {}",
            model.name,
            if swap {
                "rebuilt and swapped in after"
            } else {
                "verified"
            },
            report.events,
            report.elapsed,
            report.events_per_second(),
            report.position
        );
        match &report.live_checksum {
            Some(live) => println!(
                "  checksum live {live}  rebuilt {}  {}",
                report.rebuilt_checksum,
                if report.identical() {
                    "identical"
                } else {
                    "DIFFERENT"
                }
            ),
            None => println!(
                "  checksum rebuilt {} (the live model was far behind and was not compared)",
                report.rebuilt_checksum
            ),
        }
        all_identical &= report.identical() || report.live_checksum.is_none();
    }
    db.close().await;
    if !swap && !all_identical {
        anyhow::bail!("a rebuilt read model differs from the live one");
    }
    Ok(())
}

/// Runs relay, projector or workers without the HTTP API until a shutdown signal.
/// Such a process still answers `/health`, `/ready` and `/metrics` on `HOST:PORT`, for
/// its orchestrator's probes and for Prometheus.
async fn run_background(config: Config, roles: Roles) -> anyhow::Result<()> {
    let address = (config.http.host, config.http.port);
    let app = server::prepare(config).await?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", address.0, address.1))?;
    let background = Background::start(&app, roles).await?;
    tracing::info!(?roles, address = %listener.local_addr()?,
        "expensewise background roles running; probes and metrics on this address");
    let (stop_probes, probes_stopped) = tokio::sync::oneshot::channel::<()>();
    let probes = tokio::spawn(
        axum::serve(
            listener,
            server::probes(app.clone(), roles, background.ocr_engine.clone()),
        )
        .with_graceful_shutdown(async {
            let _ = probes_stopped.await;
        })
        .into_future(),
    );
    shutdown_signal().await;
    if tokio::time::timeout(server::SHUTDOWN_GRACE, background.stop())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?server::SHUTDOWN_GRACE, "shutdown took too long: exiting with work unfinished");
    }
    let _ = stop_probes.send(());
    if let Ok(Err(e)) = probes.await {
        tracing::warn!(error = %e, "the probe server failed");
    }
    app.db.close().await;
    Ok(())
}

/// Resolves on SIGTERM (orchestrators) or Ctrl-C (terminals).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
