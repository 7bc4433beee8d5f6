//! The `expensewise` command: one binary, one subcommand per role.

use clap::{Parser, Subcommand};
use expensewise_infra::{telemetry, Config, Database};
use tokio::net::TcpListener;

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
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        println!("{}", openapi::document().to_pretty_json()?);
        return Ok(());
    }
    let config = Config::from_env().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    telemetry::init(&config.log_level)?;
    match cli.command {
        Command::Serve | Command::Api => {
            let roles = match cli.command {
                Command::Serve => Roles {
                    relay: true,
                    projector: true,
                },
                _ => Roles {
                    relay: false,
                    projector: false,
                },
            };
            let address = (config.host, config.port);
            let app = server::prepare(config).await?;
            let listener = TcpListener::bind(address).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {}:{}: {e}", address.0, address.1)
            })?;
            tracing::info!(
                address = %listener.local_addr()?,
                database = app.db.kind(),
                nats = app.config.nats_url.is_some(),
                "expensewise is serving; API docs at /docs"
            );
            server::serve(listener, app, roles, shutdown_signal()).await
        }
        Command::Relay | Command::Projector => {
            let roles = match cli.command {
                Command::Relay => {
                    if config.nats_url.is_none() {
                        anyhow::bail!("invalid configuration: NATS_URL: the relay needs it");
                    }
                    Roles {
                        relay: true,
                        projector: false,
                    }
                }
                _ => Roles {
                    relay: false,
                    projector: true,
                },
            };
            let app = server::prepare(config).await?;
            let background = Background::start(&app, roles).await?;
            tracing::info!(?roles, "expensewise background roles running");
            shutdown_signal().await;
            background.stop().await;
            app.db.close().await;
            Ok(())
        }
        Command::Migrate => {
            let db = Database::connect(&config.database_url, 1).await?;
            db.migrate().await?;
            tracing::info!(database = db.kind(), "migrations applied");
            Ok(())
        }
        Command::Openapi => Ok(()),
    }
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
