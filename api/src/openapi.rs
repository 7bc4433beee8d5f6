//! The OpenAPI document, generated from the handlers' annotations. A copy is kept in
//! `schema/openapi.json` and a test fails when the two drift apart.

use axum::http::Method;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    accounts, admin, approvals, audit, dead_letters, expenses, exports, policy, receipts, service,
    sso, tokens, users, webhooks,
};
use crate::scopes::Access;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Expense-Wise API",
        description = "Event-sourced expense management: record expenses, photograph receipts, \
                       approve, reimburse, and audit every change.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(
        crate::error::Problem,
        crate::error::FieldErrorView,
        crate::routes::expenses::ExpenseStatusFilter,
        crate::routes::approvals::GroupByParam,
    )),
    tags(
        (name = "accounts", description = "Registration and sign-in"),
        (name = "users", description = "The organization's users (admins)"),
        (name = "expenses", description = "Expenses and their approval"),
        (name = "policy", description = "The organization's spend policy and its versions"),
        (name = "receipts", description = "Receipt files and what OCR read from them"),
        (name = "exports", description = "Approved and reimbursed expenses for accounting systems: CSV and DATEV, incremental (admins and finance)"),
        (name = "webhooks", description = "Signed messages about every change, posted to the organization's endpoints (admins)"),
        (name = "audit", description = "The event history (auditors and admins)"),
        (name = "operations", description = "Read models: status and rebuilds (admins)"),
        (name = "service", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The token sign-in or registration gives a user"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ewt_<id>_<secret>")
                    .description(Some(
                        "A personal access token (POST /v1/tokens). An operation lists the \
                         scope it needs; `admin` grants every scope. Operations that do not \
                         list this scheme are for signed-in users only (403).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every documented route, with the document describing them.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(
            accounts::get_delegation,
            accounts::delegate,
            accounts::end_delegation
        ))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::patch_user))
        .routes(routes!(users::personal_data))
        .routes(routes!(users::erase_user, users::erasure))
        .routes(routes!(expenses::create_expense, expenses::list_expenses))
        .routes(routes!(approvals::approvals))
        .routes(routes!(approvals::summary))
        .routes(routes!(
            expenses::get_expense,
            expenses::patch_expense,
            expenses::delete_expense
        ))
        .routes(routes!(expenses::submit_expense))
        .routes(routes!(expenses::approve_expense))
        .routes(routes!(expenses::reject_expense))
        .routes(routes!(expenses::reimburse_expense))
        .routes(routes!(expenses::expense_history))
        .routes(routes!(policy::get_policy, policy::put_policy))
        .routes(routes!(policy::policy_history))
        .routes(routes!(receipts::upload_receipt, receipts::list_receipts))
        .routes(routes!(receipts::email_receipts))
        .routes(routes!(receipts::get_receipt))
        .routes(routes!(receipts::get_receipt_file))
        .routes(routes!(receipts::review_receipt))
        .routes(routes!(receipts::rescan_receipt))
        .routes(routes!(receipts::set_legal_hold))
        .routes(routes!(sso::get_sso, sso::put_sso, sso::delete_sso))
        .routes(routes!(sso::start))
        .routes(routes!(sso::callback))
        .routes(routes!(exports::get_accounting, exports::put_accounting))
        .routes(routes!(exports::create_export, exports::list_exports))
        .routes(routes!(exports::get_export))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::patch_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::resend_delivery))
        .routes(routes!(audit::audit_events))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::event_proof))
        .routes(routes!(audit::consistency))
        .routes(routes!(audit::export))
        .routes(routes!(admin::list_projections))
        .routes(routes!(admin::rebuild_projection))
        .routes(routes!(dead_letters::list_dead_letters))
        .routes(routes!(dead_letters::get_dead_letter))
        .routes(routes!(dead_letters::retry_dead_letter))
        .routes(routes!(dead_letters::discard_dead_letter))
        .routes(routes!(service::health))
        .routes(routes!(service::ready))
        .routes(routes!(service::metrics))
}

/// The document as served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = router().split_for_parts();
    complete(&mut document);
    document
}

/// What the handlers' own declarations leave out: the answers every operation shares and
/// the links between them.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    document_common_answers(document);
    link_created_resources(document);
}

/// Answers every operation but the probes can give, whatever the handler: the rate
/// limiter's 429 (`crate::rate_limit`), 400 for what cannot be parsed at all (malformed
/// JSON, header, path or query values), 415 for a body of the wrong media type, and —
/// where a bearer token is required — 401 without a valid one. They are added here
/// rather than written on each handler. So is the body of every error answer: an RFC
/// 9457 problem (`application/problem+json`), which handlers document by status and
/// description alone.
fn document_common_answers(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Type};

    let integer = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
            ))
            .description(Some(description))
            .build()
    };
    let problem_body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let refused = ResponseBuilder::new()
        .description("Too many requests in the rate-limit window")
        .header("Retry-After", integer("Seconds until the window ends"))
        .header("RateLimit-Limit", integer("Requests allowed in the window"))
        .header(
            "RateLimit-Remaining",
            integer("Requests left in the window"),
        )
        .header("RateLimit-Reset", integer("Seconds until the window ends"))
        .content(crate::error::PROBLEM_JSON, problem_body.clone())
        .build();
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(crate::error::PROBLEM_JSON, problem_body.clone())
            .build()
    };
    let unparseable =
        problem("The request cannot be parsed: malformed JSON, header, path or query value");
    let wrong_type = problem("The body is not of the media type this operation takes");
    let unauthenticated = problem("Missing, invalid, revoked or expired token");
    let lacking = |scope: &str| {
        problem(&format!(
            "A personal access token without the scope {scope}"
        ))
    };
    let unknown_write =
        problem("The consistency token names no write stored here (it lies beyond the last event)");
    let signed_in_only = problem("A personal access token: only a signed-in user may do this");
    for (path, item) in document.paths.paths.iter_mut() {
        if matches!(path.as_str(), "/health" | "/ready" | "/metrics") {
            continue;
        }
        let operations = [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::PUT, &mut item.put),
            (Method::PATCH, &mut item.patch),
            (Method::DELETE, &mut item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            let mut takes_token = false;
            for parameter in operation.parameters.iter_mut().flatten() {
                let RefOr::T(parameter) = parameter else {
                    continue;
                };
                if let Some(schema) = parameter_format(&parameter.name) {
                    parameter.schema = Some(schema);
                }
                takes_token |= matches!(
                    parameter.name.as_str(),
                    "X-Consistency-Token" | "consistency_token"
                );
            }
            if takes_token {
                operation
                    .responses
                    .responses
                    .entry("409".to_string())
                    .or_insert_with(|| unknown_write.clone().into());
            }
            let has_body = operation.request_body.is_some();
            let signed_in = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            // Which tokens may call it, from the table that enforces it.
            let (scopes, refusal) = match crate::scopes::required(&method, path) {
                Access::Scope(scope) => (Some(vec![scope.as_str()]), Some(lacking(scope.as_str()))),
                Access::AnyToken => (Some(Vec::new()), None),
                Access::SignedInOnly => (None, Some(signed_in_only.clone())),
            };
            if signed_in {
                if let (Some(scopes), Some(security)) = (scopes, operation.security.as_mut()) {
                    security.push(SecurityRequirement::new("token", scopes));
                }
                if let Some(refusal) = refusal {
                    operation
                        .responses
                        .responses
                        .entry("403".to_string())
                        .or_insert_with(|| refusal.into());
                }
            }
            let responses = &mut operation.responses.responses;
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if status.starts_with(['4', '5']) && response.content.is_empty() {
                    response.content.insert(
                        crate::error::PROBLEM_JSON.to_string(),
                        problem_body.clone().into(),
                    );
                }
            }
            if signed_in {
                responses
                    .entry("401".to_string())
                    .or_insert_with(|| unauthenticated.clone().into());
            }
            responses.insert("429".to_string(), refused.clone().into());
            responses
                .entry("400".to_string())
                .or_insert_with(|| unparseable.clone().into());
            if has_body {
                responses
                    .entry("415".to_string())
                    .or_insert_with(|| wrong_type.clone().into());
            }
        }
    }
}

/// Links from each answer that creates something (`POST /v1/x` → 201 or 202 with an
/// `id`) to every operation on `/v1/x/{id}…` that needs nothing else: how clients and
/// tools (schemathesis' stateful phase) follow a created thing through its life.
fn link_created_resources(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::{RefOr, Schema};

    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in &document.paths.paths {
        let Some((collection, rest)) = path.split_once("/{id}") else {
            continue;
        };
        if rest.contains('{') {
            continue;
        }
        let operations = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
        for operation in operations.into_iter().flatten() {
            if let Some(id) = &operation.operation_id {
                targets.push((collection.to_string(), id.clone()));
            }
        }
    }
    let has_id = |name: &str| {
        document
            .components
            .as_ref()
            .and_then(|c| c.schemas.get(name))
            .is_some_and(|schema| match schema {
                RefOr::T(Schema::Object(object)) => object.properties.contains_key("id"),
                _ => false,
            })
    };
    let mut creating: Vec<(String, String)> = Vec::new();
    for (path, item) in &document.paths.paths {
        let Some(post) = &item.post else { continue };
        for (status, response) in &post.responses.responses {
            let RefOr::T(response) = response else {
                continue;
            };
            let body = response
                .content
                .get("application/json")
                .and_then(|content| match content {
                    RefOr::T(content) => content.schema.as_ref(),
                    RefOr::Ref(_) => None,
                });
            if let (true, Some(RefOr::Ref(reference))) =
                (matches!(status.as_str(), "201" | "202"), body)
            {
                let name = reference
                    .ref_location
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                if has_id(name) {
                    creating.push((path.clone(), status.clone()));
                }
            }
        }
    }
    for (path, status) in creating {
        let Some(RefOr::T(response)) = document
            .paths
            .paths
            .get_mut(&path)
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut(&status))
        else {
            continue;
        };
        for (_, operation_id) in targets.iter().filter(|(collection, _)| *collection == path) {
            response.links.insert(
                operation_id.clone(),
                LinkBuilder::new()
                    .operation_id(operation_id)
                    .parameter("id", "$response.body#/id")
                    .build()
                    .into(),
            );
        }
    }
}

/// The forms of the parameters many operations share, as the server checks them: said
/// once here instead of on every handler.
fn parameter_format(name: &str) -> Option<utoipa::openapi::RefOr<utoipa::openapi::Schema>> {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat};
    use utoipa::openapi::Type;

    let text = |pattern: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
    };
    // A place in the global order, `txid.position`, as pages and consistency tokens give
    // it.
    const POSITION: &str = r"^[0-9]{1,18}\.[0-9]{1,18}$";
    Some(match name {
        "after" | "X-Consistency-Token" | "consistency_token" => text(POSITION).into(),
        // Visible ASCII, as the idempotency middleware takes it.
        "Idempotency-Key" => text(r"^[!-~]{1,255}$").into(),
        "If-Match" => text(r#"^((W/)?"[0-9]{1,18}"|\*)$"#).into(),
        "as_of" => AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(text(POSITION))
            .into(),
        _ => return None,
    })
}
