use std::process::ExitCode;

use clap::Parser;
use expensewise_api::cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the cause: what an operator needs from a failed start.
            eprintln!("expensewise: {e:#}");
            ExitCode::FAILURE
        }
    }
}
