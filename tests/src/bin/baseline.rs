//! The benchmark's baseline: the plain framework the product is built on, used the way
//! its documentation shows, under the same load generator (`scripts/bench.sh`).
//!
//! One aggregate (the product's own `Expense`, so both decide the same way) behind
//! cqrs-es's `CqrsFramework` with postgres-es's event store, and one `GenericQuery` view
//! in a `PostgresViewRepository`, updated inside the request as cqrs-es runs its queries.
//! No authentication, no idempotency ledger, no relay or projections: whatever the
//! product does on top is what its figures are compared against.
//!
//! ```text
//! DATABASE_URL=postgres://…/baseline PORT=4100 baseline
//! ```
//!
//! It answers the two requests `loadgen create` sends: a registration (any body; the
//! token it returns is not checked) and `POST /v1/expenses`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use cqrs_es::persist::{GenericQuery, ViewRepository};
use cqrs_es::{EventEnvelope, View};
use expensewise_domain::expense::{
    Assessment, Context, ExpenseCommand, ExpenseDetails, ExpenseEvent, Valuation,
};
use expensewise_domain::{Actor, Currency, Expense, Money, Role};
use postgres_es::{postgres_cqrs, PostgresCqrs, PostgresViewRepository};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// The documented layout: events and snapshots as postgres-es writes them, and a table
/// per view.
const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
     event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
     PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE IF NOT EXISTS snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
     current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
     PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    "CREATE TABLE IF NOT EXISTS expense_view (view_id text NOT NULL, \
     version bigint CHECK (version >= 0) NOT NULL, payload json NOT NULL, PRIMARY KEY (view_id))",
];

/// What the view keeps of an expense.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ExpenseView {
    merchant: String,
    amount: String,
    currency: String,
    events: u64,
}

impl View<Expense> for ExpenseView {
    fn update(&mut self, event: &EventEnvelope<Expense>) {
        if let ExpenseEvent::ExpenseCreated {
            merchant, money, ..
        } = &event.payload
        {
            self.merchant = merchant.clone();
            self.amount = money.amount_string();
            self.currency = money.currency().code().to_string();
        }
        self.events += 1;
    }
}

type Views = PostgresViewRepository<ExpenseView, Expense>;

struct Baseline {
    cqrs: PostgresCqrs<Expense>,
    views: Arc<Views>,
    actor: Actor,
}

#[derive(Deserialize)]
struct NewExpense {
    amount: String,
    currency: String,
    merchant: String,
    category: String,
    spent_on: NaiveDate,
    description: Option<String>,
}

async fn register() -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({"token": "baseline"})))
}

async fn create_expense(
    State(baseline): State<Arc<Baseline>>,
    Json(body): Json<NewExpense>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let invalid = |e: String| (StatusCode::UNPROCESSABLE_ENTITY, e);
    let currency = Currency::parse(&body.currency).map_err(|e| invalid(e.to_string()))?;
    let money = Money::parse(&body.amount, currency).map_err(|e| invalid(e.to_string()))?;
    let id = Uuid::new_v4().to_string();
    let command = ExpenseCommand::CreateExpense {
        ctx: Context {
            actor: baseline.actor,
            at: Utc::now(),
            expected_version: None,
        },
        details: ExpenseDetails {
            money,
            merchant: body.merchant,
            category: body.category,
            spent_on: body.spent_on,
            description: body.description,
            mileage: None,
        },
        receipt_id: None,
        today: Utc::now().date_naive(),
        // The baseline has no organization or policy: the amount is its own base.
        valuation: Valuation {
            base_amount: Some(money),
            rate: None,
        },
        assessment: Assessment::default(),
    };
    let metadata = HashMap::from([("request_id".to_string(), Uuid::new_v4().to_string())]);
    baseline
        .cqrs
        .execute_with_metadata(&id, command, metadata)
        .await
        .map_err(|e| (StatusCode::CONFLICT, e.to_string()))?;
    // The answer is read from the view, as the framework's demo answers queries.
    let view = baseline
        .views
        .load(&id)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, "no view".to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": id, "merchant": view.merchant, "amount": view.amount,
                    "currency": view.currency, "version": view.events}),
        ),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url =
        std::env::var("DATABASE_URL").context("DATABASE_URL names the baseline's database")?;
    let port: u16 = std::env::var("PORT")
        .context("PORT is the port to listen on")?
        .parse()
        .context("PORT is a number")?;
    let connections: u32 = std::env::var("DATABASE_MAX_CONNECTIONS")
        .ok()
        .map(|n| n.parse())
        .transpose()
        .context("DATABASE_MAX_CONNECTIONS is a number")?
        .unwrap_or(32);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url)
        .await
        .context("cannot connect to PostgreSQL")?;
    for statement in SCHEMA {
        sqlx::query(statement).execute(&pool).await?;
    }
    let views = Arc::new(Views::new("expense_view", pool.clone()));
    let query = GenericQuery::new(views.clone());
    let baseline = Arc::new(Baseline {
        cqrs: postgres_cqrs(pool, vec![Box::new(query)], ()),
        views,
        actor: Actor {
            user_id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            role: Role::Employee,
        },
    });
    let app = Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/expenses", post(create_expense))
        .with_state(baseline);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
