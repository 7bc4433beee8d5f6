//! The Expense-Wise HTTP API and the `expensewise` command line.

pub mod auth;
pub mod cli;
pub mod console;
pub mod error;
pub mod export;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod schemas;
pub mod scopes;
pub mod server;
pub mod smoke;
pub mod state;
