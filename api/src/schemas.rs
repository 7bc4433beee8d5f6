//! The forms of request fields as the server checks them, for `#[schema(schema_with = …)]`:
//! said once here, from the same rules and lists the domain enforces, so that the API
//! document tells clients (and the clients generated from it) what will be refused
//! before they send it.

use expensewise_domain::money::Currency;
use expensewise_domain::organization::TokenScope;
use expensewise_domain::webhook::{EVENT_TYPES, READY_TO_SYNC};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, SchemaType};
use utoipa::openapi::{Array, Type};

/// Control characters the domain refuses in text (`validate::optional_text`): all of
/// Unicode's but tab and newline.
const CONTROL: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";

fn string(nullable: bool) -> ObjectBuilder {
    let kind = match nullable {
        true => SchemaType::from_iter([Type::String, Type::Null]),
        false => SchemaType::new(Type::String),
    };
    ObjectBuilder::new().schema_type(kind)
}

/// Text the domain trims and requires (`validate::required_text`): something besides
/// white space, no control characters but tab and newline, at most `MAX` characters.
pub fn required_text<const MAX: usize>() -> Object {
    nonblank_text(false, MAX)
}

/// Text that may be left out, but is not blank when given (a [`required_text`] or
/// `null`).
pub fn optional_required_text<const MAX: usize>() -> Object {
    nonblank_text(true, MAX)
}

fn nonblank_text(nullable: bool, max: usize) -> Object {
    string(nullable)
        .pattern(Some(format!(r"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$")))
        .max_length(Some(max))
        .build()
}

fn free_text(nullable: bool, max: usize) -> Object {
    string(nullable)
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .max_length(Some(max))
        .build()
}

/// Text that may be empty (`validate::optional_text`): no control characters but tab
/// and newline, at most `MAX` characters.
pub fn text<const MAX: usize>() -> Object {
    free_text(false, MAX)
}

/// As [`text`], or `null`/absent for none.
pub fn optional_text<const MAX: usize>() -> Object {
    free_text(true, MAX)
}

/// An address as `validate::email` takes it: no white space, one `@`, a dotted domain
/// with no empty label. Not `format: email`: the server takes international addresses
/// that format refuses.
pub fn email() -> Object {
    let atom = format!(r"[^@.\s{CONTROL}]+");
    string(false)
        .pattern(Some(format!(r"^[^@\s{CONTROL}]+@{atom}(\.{atom})+$")))
        .max_length(Some(254))
        .examples(["ana@example.com"])
        .build()
}

/// A new password, as `check_password_policy` takes it.
pub fn password() -> Object {
    use expensewise_application::accounts::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
    string(false)
        .min_length(Some(MIN_PASSWORD_CHARS))
        .max_length(Some(MAX_PASSWORD_CHARS))
        .build()
}

fn currency_object(nullable: bool) -> Object {
    let mut codes: Vec<serde_json::Value> = Currency::codes().map(Into::into).collect();
    codes.sort_unstable_by(|a, b| a.as_str().cmp(&b.as_str()));
    if nullable {
        codes.push(serde_json::Value::Null);
    }
    string(nullable)
        .enum_values(Some(codes))
        .examples(["EUR"])
        .build()
}

/// An ISO 4217 code the server knows the minor units of.
pub fn currency() -> Object {
    currency_object(false)
}

/// An ISO 4217 code, or `null`/absent.
pub fn optional_currency() -> Object {
    currency_object(true)
}

/// An exchange rate as `parse_rate` takes it: units of the organization's currency per
/// unit of the expense's, digits with at most one point and 12 fraction digits (no sign,
/// exponent or grouping), positive and at most 1,000,000.
pub fn optional_rate() -> Object {
    string(true)
        .pattern(Some(r"^[0-9]{1,7}(\.[0-9]{1,12})?$"))
        .examples(["0.0057"])
        .build()
}

/// The scopes a token may be given, at least one.
pub fn scopes() -> Array {
    ArrayBuilder::new()
        .items(
            string(false)
                .enum_values(Some(TokenScope::ALL.map(TokenScope::as_str)))
                .build(),
        )
        .min_items(Some(1))
        .build()
}

fn event_type_list(nullable: bool) -> Array {
    let kinds = EVENT_TYPES.iter().copied().chain([READY_TO_SYNC]);
    let mut array = ArrayBuilder::new()
        .items(string(false).enum_values(Some(kinds)).build())
        .unique_items(true);
    if nullable {
        array = array.schema_type(SchemaType::from_iter([Type::Array, Type::Null]));
    }
    array.build()
}

/// Event types a webhook is sent (`GET /v1/webhooks/event-types`); every type when empty.
pub fn event_types() -> Array {
    event_type_list(false)
}

/// As [`event_types`], or `null`/absent to keep them.
pub fn optional_event_types() -> Array {
    event_type_list(true)
}

fn http_url_object(nullable: bool) -> Object {
    let label = "[A-Za-z0-9-]+";
    string(nullable)
        .pattern(Some(format!(
            r"^https?://({label}\.)*[A-Za-z][A-Za-z0-9-]*(:[0-9]{{1,4}})?(/[A-Za-z0-9._~!$&()*+,;=:@/?%-]*)?$"
        )))
        // The server's limit, 2048, is on the URL as parsed, which may end in an added `/`.
        .max_length(Some(2047))
        .examples(["https://hooks.example.com/expensewise"])
        .build()
}

/// A URL as `webhook::address::parse_url` takes it: `http` or `https`, a host (the
/// last label not a number), no user name, password or fragment; written here in
/// characters that need no escaping, so that parsing does not lengthen it.
pub fn http_url() -> Object {
    http_url_object(false)
}

/// As [`http_url`], or `null`/absent to keep it.
pub fn optional_http_url() -> Object {
    http_url_object(true)
}

/// An amount as `Money::parse` takes it: digits with at most one point (no sign,
/// exponent or grouping), positive, at most 1,000,000,000, with no more significant
/// fraction digits than its currency has; or `null`/absent.
pub fn optional_amount() -> Object {
    string(true)
        .pattern(Some(r"^[0-9]{1,10}(\.[0-9]+)?$"))
        .examples(["42.50"])
        .build()
}

/// Category → DATEV account: categories of 1 to 50 characters (not only white space),
/// accounts of 4 to 8 digits (as many as `account_length` says).
pub fn category_accounts() -> Object {
    ObjectBuilder::new()
        .property_names(Some(
            string(false)
                .pattern(Some(r"\S"))
                .min_length(Some(1))
                .max_length(Some(50)),
        ))
        .additional_properties(Some(string(false).pattern(Some("^[0-9]{4,8}$"))))
        .examples([serde_json::json!({"travel": "4670", "meals": "4650"})])
        .build()
}
