//! Commands are decided on what the API process last saw (the caller's organization, its
//! spend policy, the expenses it wrote) and their append checks that this is still current. Here another
//! replica — a second event store on the same database — changes things behind the API's
//! back, and every answer must still be the one a fresh read would give, with nothing
//! appended by a refused command.

use chrono::Utc;
use cqrs_es::Aggregate;
use expensewise_domain::expense::{Assessment, Context, ExpenseChanges, ExpenseCommand};
use expensewise_domain::organization::OrganizationCommand;
use expensewise_domain::policy::{ApprovalStep, Approver, Policy, PolicyCommand, Rule};
use expensewise_domain::{Actor, Expense, Organization, Role};
use expensewise_infra::event_store::aggregate_version;
use expensewise_infra::event_store::{Scope, StoreFor};
use expensewise_infra::{Database, EventStore};
use expensewise_tests::{
    consistency, event_metadata, expect_problem, expect_status, on_both_backends, Backend, TestApp,
    User,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// A second writer on the API's database, as another replica would be.
struct OtherReplica {
    db: Database,
    store: EventStore,
}

impl OtherReplica {
    async fn of(app: &TestApp) -> OtherReplica {
        let db = app.database.connect().await;
        OtherReplica {
            store: app.database.event_store(&db).await,
            db,
        }
    }

    /// Runs `command` on aggregate `id` of `user`'s organization, as `actor`.
    async fn execute<A>(&self, user: &User, id: &str, command: A::Command, actor: Option<Uuid>)
    where
        EventStore: StoreFor<A>,
        A: Aggregate<Services = ()> + Clone,
        A::Command: Clone,
    {
        let organization_id = Uuid::parse_str(&user.organization_id).unwrap();
        self.store
            .execute::<A>(
                &Scope::none(),
                id,
                command,
                &event_metadata(organization_id, actor),
            )
            .await
            .unwrap();
    }

    async fn change_organization(&self, admin: &User, command: OrganizationCommand) {
        self.execute::<Organization>(admin, &admin.organization_id, command, None)
            .await;
    }

    async fn deactivate(&self, admin: &User, user: &User) {
        let command = OrganizationCommand::DeactivateUser {
            actor_id: Uuid::parse_str(&admin.user_id).unwrap(),
            user_id: Uuid::parse_str(&user.user_id).unwrap(),
            at: Utc::now(),
        };
        self.change_organization(admin, command).await;
    }

    async fn reactivate(&self, admin: &User, user: &User) {
        let command = OrganizationCommand::ReactivateUser {
            actor_id: Uuid::parse_str(&admin.user_id).unwrap(),
            user_id: Uuid::parse_str(&user.user_id).unwrap(),
            at: Utc::now(),
        };
        self.change_organization(admin, command).await;
    }

    async fn set_policy(&self, admin: &User, rules: serde_json::Value) {
        let organization_id = Uuid::parse_str(&admin.organization_id).unwrap();
        let command = PolicyCommand::SetRules {
            actor: Actor {
                user_id: Uuid::parse_str(&admin.user_id).unwrap(),
                organization_id,
                role: Role::Admin,
            },
            at: Utc::now(),
            expected_version: None,
            rules: serde_json::from_value::<Vec<Rule>>(rules).unwrap(),
            approval_chains: Vec::new(),
            mileage_rates: Vec::new(),
        };
        self.execute::<Policy>(admin, &admin.organization_id, command, None)
            .await;
    }

    async fn change_expense(&self, owner: &User, id: &str, command: ExpenseCommand) {
        let owner_id = Uuid::parse_str(&owner.user_id).unwrap();
        self.execute::<Expense>(owner, id, command, Some(owner_id))
            .await;
    }
}

/// An organization with an admin and an employee, Bob, who has one draft expense — which
/// the API, having written it, remembers — and another replica on the same database.
struct Scene {
    app: TestApp,
    admin: User,
    bob: User,
    expense_id: String,
    other: OtherReplica,
}

impl Scene {
    async fn start(backend: Backend) -> Scene {
        let app = TestApp::spawn(backend).await;
        let admin = app.register("Acme", "ada@acme.test").await;
        let bob = app.add_user(&admin, "bob@acme.test", "employee").await;
        let expense = app.create_expense(&bob).await;
        let expense_id = expense.id.clone();
        let other = OtherReplica::of(&app).await;
        Scene {
            app,
            admin,
            bob,
            expense_id,
            other,
        }
    }

    /// How many events the expense has, as stored.
    async fn expense_version(&self) -> u64 {
        aggregate_version(
            &self.other.db,
            expensewise_domain::expense::AGGREGATE_TYPE,
            &self.expense_id,
        )
        .await
        .unwrap()
    }

    async fn finish(self) {
        self.other.db.close().await;
        self.app.finish().await;
    }
}

/// The owner's context for a command sent by the other replica.
fn as_owner(owner: &User) -> Context {
    Context {
        actor: Actor {
            user_id: Uuid::parse_str(&owner.user_id).unwrap(),
            organization_id: Uuid::parse_str(&owner.organization_id).unwrap(),
            role: Role::Employee,
        },
        at: Utc::now(),
        expected_version: None,
    }
}

fn rename(owner: &User, merchant: &str) -> ExpenseCommand {
    ExpenseCommand::UpdateExpense {
        ctx: as_owner(owner),
        changes: ExpenseChanges {
            merchant: Some(merchant.to_string()),
            ..ExpenseChanges::default()
        },
        today: Utc::now().date_naive(),
        valuation: None,
        assessment: Assessment::default(),
    }
}

async fn patch(app: &TestApp, user: &User, id: &str, body: serde_json::Value) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/v1/expenses/{id}"),
        Some(&user.token),
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

async fn a_user_deactivated_by_another_replica_can_change_nothing(backend: Backend) {
    let scene = Scene::start(backend).await;
    let (app, admin, bob, other) = (&scene.app, &scene.admin, &scene.bob, &scene.other);
    let id = &scene.expense_id;
    let edit = |body: serde_json::Value| {
        app.request(
            Method::PATCH,
            &format!("/v1/expenses/{id}"),
            Some(&bob.token),
        )
        .json(&body)
    };
    let attempts = [
        (
            "an invalid edit, which appends nothing",
            edit(json!({"amount": "a lot"})),
        ),
        (
            "a create",
            app.request(Method::POST, "/v1/expenses", Some(&bob.token))
                .json(&expensewise_tests::expense_body()),
        ),
        ("an edit", edit(json!({"description": "after leaving"}))),
        (
            "a submission",
            app.request(
                Method::POST,
                &format!("/v1/expenses/{id}/submit"),
                Some(&bob.token),
            )
            .json(&json!({})),
        ),
    ];
    for (what, attempt) in attempts {
        // The API remembers bob as active (a read loads the organization afresh).
        expect_status(app.get("/v1/me", &bob.token).await, StatusCode::OK).await;
        other.deactivate(admin, bob).await;
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        other.reactivate(admin, bob).await;
    }
    let metrics = app.get("/metrics", "").await.text().await.unwrap();
    let run_again = metrics
        .lines()
        .find_map(|l| l.strip_prefix("expensewise_requests_run_again_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(run_again.is_some_and(|n| n >= 4.0), "{run_again:?}");

    assert_eq!(scene.expense_version().await, 1, "bob's expense changed");
    // Bob's expense and the admin's, written last: nothing else was created.
    let last = app
        .post(
            "/v1/expenses",
            Some(&admin.token),
            expensewise_tests::expense_body(),
        )
        .await;
    let token = consistency(&last);
    expect_status(last, StatusCode::CREATED).await;
    let all = app.get_after("/v1/expenses", &admin.token, &token).await;
    let all = expect_status(all, StatusCode::OK).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    scene.finish().await;
}

async fn a_role_taken_away_by_another_replica_applies_to_the_next_command(backend: Backend) {
    let scene = Scene::start(backend).await;
    let (app, admin, bob, other) = (&scene.app, &scene.admin, &scene.bob, &scene.other);
    let id = &scene.expense_id;
    let carol = app.add_user(admin, "carol@acme.test", "approver").await;
    let submit = app
        .post(
            &format!("/v1/expenses/{id}/submit"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    expect_status(submit, StatusCode::OK).await;
    let command = OrganizationCommand::ChangeUserRole {
        actor_id: Uuid::parse_str(&admin.user_id).unwrap(),
        user_id: Uuid::parse_str(&carol.user_id).unwrap(),
        role: Role::Employee,
        at: Utc::now(),
    };
    other.change_organization(admin, command).await;

    let approve = app
        .post(
            &format!("/v1/expenses/{id}/approve"),
            Some(&carol.token),
            json!({}),
        )
        .await;
    expect_problem(approve, StatusCode::FORBIDDEN).await;
    assert_eq!(scene.expense_version().await, 2, "the expense changed");
    scene.finish().await;
}

async fn an_expense_changed_by_another_replica_is_edited_as_stored(backend: Backend) {
    let scene = Scene::start(backend).await;
    let (app, bob, other) = (&scene.app, &scene.bob, &scene.other);
    let id = &scene.expense_id;
    other
        .change_expense(bob, id, rename(bob, "Elsewhere"))
        .await;

    // Both changes count: the other replica's merchant and this description.
    let edit = patch(app, bob, id, json!({"description": "here"})).await;
    let token = consistency(&edit);
    let edited = expect_status(edit, StatusCode::OK).await;
    assert_eq!(edited["version"], 3, "{edited}");
    assert_eq!(edited["merchant"], "Elsewhere", "{edited}");
    assert_eq!(edited["description"], "here", "{edited}");
    let read = app
        .get_after(&format!("/v1/expenses/{id}"), &bob.token, &token)
        .await;
    let read = expect_status(read, StatusCode::OK).await;
    assert_eq!(
        (&read["merchant"], &read["description"], &read["version"]),
        (&json!("Elsewhere"), &json!("here"), &json!(3))
    );

    // If-Match names the version this API last wrote; the stored one is newer.
    other.change_expense(bob, id, rename(bob, "Again")).await;
    let stale = app
        .request(
            Method::PATCH,
            &format!("/v1/expenses/{id}"),
            Some(&bob.token),
        )
        .header("if-match", "\"3\"")
        .json(&json!({"description": "late"}))
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::PRECONDITION_FAILED).await;

    // Submitted elsewhere: no longer a draft, so no deletion; an edit withdraws the
    // submission, decided on the stored version.
    let submit = ExpenseCommand::SubmitExpense {
        ctx: as_owner(bob),
        assessment: Assessment::default(),
        justification: None,
        approval_steps: vec![ApprovalStep {
            approver: Approver::Approver,
            user_id: None,
        }],
    };
    other.change_expense(bob, id, submit).await;
    let delete = app
        .request(
            Method::DELETE,
            &format!("/v1/expenses/{id}"),
            Some(&bob.token),
        )
        .send()
        .await
        .unwrap();
    expect_problem(delete, StatusCode::CONFLICT).await;
    assert_eq!(scene.expense_version().await, 5);
    let edit = patch(app, bob, id, json!({"description": "withdrawn"})).await;
    let withdrawn = expect_status(edit, StatusCode::OK).await;
    assert_eq!(withdrawn["status"], "draft");
    assert_eq!(withdrawn["version"], 6);
    scene.finish().await;
}

/// The API decided Bob's first expense under no policy at all, and remembers that; a cap
/// set by another replica must hold for the next one, and then each change of it.
async fn a_policy_set_by_another_replica_applies_to_the_next_command(backend: Backend) {
    let scene = Scene::start(backend).await;
    let (app, admin, bob, other) = (&scene.app, &scene.admin, &scene.bob, &scene.other);
    let violations = |created: &serde_json::Value| {
        created["violations"]
            .as_array()
            .unwrap_or_else(|| panic!("no violations in {created}"))
            .iter()
            .map(|v| {
                format!(
                    "{}:{}",
                    v["rule"].as_str().unwrap(),
                    v["level"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let create = |amount: &str| {
        let mut body = expensewise_tests::expense_body();
        body["amount"] = json!(amount);
        app.post("/v1/expenses", Some(&bob.token), body)
    };
    other
        .set_policy(
            admin,
            json!([{"id": "cap", "kind": "max_per_expense", "level": "warn", "amount": "100"}]),
        )
        .await;
    let capped = expect_status(create("250.00").await, StatusCode::CREATED).await;
    assert_eq!(violations(&capped), ["cap:warn"], "{capped}");

    // Changed again behind the API's back, after it decided under the first change.
    other
        .set_policy(
            admin,
            json!([{"id": "cap", "kind": "max_per_expense", "level": "warn", "amount": "300"}]),
        )
        .await;
    let within = expect_status(create("250.00").await, StatusCode::CREATED).await;
    assert_eq!(violations(&within), Vec::<String>::new(), "{within}");
    scene.finish().await;
}

on_both_backends!(
    a_policy_set_by_another_replica_applies_to_the_next_command,
    a_user_deactivated_by_another_replica_can_change_nothing,
    a_role_taken_away_by_another_replica_applies_to_the_next_command,
    an_expense_changed_by_another_replica_is_edited_as_stored,
);
