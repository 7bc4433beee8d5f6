//! An organization's webhook endpoints (issue 20): where its events are sent, which of
//! them, and with which signing secrets. An event-sourced aggregate whose id is the
//! organization's, so who pointed the organization's data where, and when, is history.
//! The secrets themselves are never in an event: each is kept by its id beside the log
//! (docs/webhooks.md).

pub mod address;
pub mod retry;
pub mod signing;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::{Actor, Role};
use crate::rejection::{FieldError, IntoRejection, Rejection};
use crate::validate::optional_text;

pub const AGGREGATE_TYPE: &str = "webhooks";
pub const ENDPOINT_ADDED: &str = "WebhookEndpointAdded";
pub const ENDPOINT_CHANGED: &str = "WebhookEndpointChanged";
pub const ENDPOINT_REMOVED: &str = "WebhookEndpointRemoved";
pub const SECRET_ROTATED: &str = "WebhookSecretRotated";
pub const ENDPOINT_DISABLED: &str = "WebhookEndpointDisabled";

/// An organization keeps at most this many endpoints.
pub const MAX_ENDPOINTS: usize = 20;
pub const MAX_URL_LENGTH: usize = 2048;
pub const MAX_DESCRIPTION_LENGTH: usize = 200;
/// The longest overlap of an old secret with its successor.
pub const MAX_OVERLAP: Duration = Duration::days(7);
/// A message sent by `POST /v1/webhooks/{id}/test`, not caused by an event.
pub const PING: &str = "ping";
/// A message sent beside an expense's final `ExpenseApproved`: it may be booked now.
pub const READY_TO_SYNC: &str = "ready_to_sync";

/// Every event type an endpoint can ask for: each the product writes (checked against
/// `schema/events` by the event-schema test); besides them, [`READY_TO_SYNC`].
pub const EVENT_TYPES: &[&str] = &[
    "AccountingSettingsChanged",
    "EmailClaimed",
    "EmailReleased",
    "ExpenseApproved",
    "ExpenseExported",
    "ExpenseCreated",
    "ExpenseDeleted",
    "ExpenseReceiptAttached",
    "ExpenseReimbursed",
    "ExpenseRejected",
    "ExpenseStepApproved",
    "ExpenseSubmitted",
    "ExpenseUpdated",
    "ApiTokenIssued",
    "ApiTokenRevoked",
    "DeadLetterDiscarded",
    "DeadLetterRetried",
    "DelegationEnded",
    "DelegationSet",
    "IdentityLinked",
    "ManagerSet",
    "OrganizationRegistered",
    "PasswordChanged",
    "RetentionEnded",
    "SingleSignOnConfigured",
    "SingleSignOnRemoved",
    "UserAdded",
    "UserDeactivated",
    "UserErased",
    "UserReactivated",
    "UserRoleChanged",
    "PolicyChanged",
    "ReceiptAttached",
    "ReceiptLegalHoldSet",
    "ReceiptRescanRequested",
    "ReceiptReviewed",
    "ReceiptScanFailed",
    "ReceiptScanned",
    "ReceiptSentToReview",
    "ReceiptUploaded",
    ENDPOINT_ADDED,
    ENDPOINT_CHANGED,
    ENDPOINT_REMOVED,
    SECRET_ROTATED,
    ENDPOINT_DISABLED,
];

/// One place events are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub url: String,
    pub description: String,
    /// The event types sent; every type when empty.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the product turned it off, when it did.
    pub disabled_reason: Option<String>,
    /// Newest last; those past their `valid_until` no longer sign.
    pub secrets: Vec<SecretRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether an event of `event_type` recorded at `recorded_at` goes here: the
    /// endpoint must be on, ask for the type (no types: every event type, but not
    /// [`READY_TO_SYNC`], which is asked for by name), and have existed when it was
    /// recorded.
    pub fn wants(&self, event_type: &str, recorded_at: DateTime<Utc>) -> bool {
        let named = self.event_types.iter().any(|t| t == event_type);
        let every = self.event_types.is_empty() && event_type != READY_TO_SYNC;
        self.enabled && recorded_at >= self.created_at && (named || every)
    }

    /// The secrets that sign a message sent at `at`: the newest, and during a rotation's
    /// overlap the one before it too.
    pub fn signing_secrets(&self, at: DateTime<Utc>) -> Vec<Uuid> {
        self.secrets
            .iter()
            .filter(|s| s.valid_until.is_none_or(|until| until > at))
            .map(|s| s.secret_id)
            .collect()
    }
}

/// A signing secret by its id; the secret is kept beside the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub secret_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Set when a newer secret replaced it: it signs until then.
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhooks {
    pub organization_id: Option<Uuid>,
    pub endpoints: BTreeMap<Uuid, Endpoint>,
}

/// What an admin sets on an endpoint; `None` keeps what it was.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhooksCommand {
    Add {
        actor: Actor,
        at: DateTime<Utc>,
        endpoint_id: Uuid,
        /// The id under which the new secret was stored.
        secret_id: Uuid,
        url: String,
        description: String,
        event_types: Vec<String>,
    },
    Change {
        actor: Actor,
        at: DateTime<Utc>,
        endpoint_id: Uuid,
        change: EndpointChange,
    },
    Remove {
        actor: Actor,
        at: DateTime<Utc>,
        endpoint_id: Uuid,
    },
    /// A new secret signs from `at`; the ones before sign too until `at + overlap`.
    RotateSecret {
        actor: Actor,
        at: DateTime<Utc>,
        endpoint_id: Uuid,
        secret_id: Uuid,
        overlap: Duration,
    },
    /// The product turns an endpoint off that kept failing.
    Disable {
        organization_id: Uuid,
        at: DateTime<Utc>,
        endpoint_id: Uuid,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum WebhooksEvent {
    WebhookEndpointAdded {
        organization_id: Uuid,
        endpoint_id: Uuid,
        url: String,
        description: String,
        event_types: Vec<String>,
        secret_id: Uuid,
        added_by: Uuid,
        added_at: DateTime<Utc>,
    },
    /// The endpoint as it is after the change.
    WebhookEndpointChanged {
        endpoint_id: Uuid,
        url: String,
        description: String,
        event_types: Vec<String>,
        enabled: bool,
        changed_by: Uuid,
        changed_at: DateTime<Utc>,
    },
    WebhookEndpointRemoved {
        endpoint_id: Uuid,
        removed_by: Uuid,
        removed_at: DateTime<Utc>,
    },
    WebhookSecretRotated {
        endpoint_id: Uuid,
        secret_id: Uuid,
        /// Until when the secrets before it still sign.
        previous_valid_until: DateTime<Utc>,
        rotated_by: Uuid,
        rotated_at: DateTime<Utc>,
    },
    WebhookEndpointDisabled {
        endpoint_id: Uuid,
        reason: String,
        disabled_at: DateTime<Utc>,
    },
}

impl DomainEvent for WebhooksEvent {
    fn event_type(&self) -> String {
        match self {
            Self::WebhookEndpointAdded { .. } => ENDPOINT_ADDED,
            Self::WebhookEndpointChanged { .. } => ENDPOINT_CHANGED,
            Self::WebhookEndpointRemoved { .. } => ENDPOINT_REMOVED,
            Self::WebhookSecretRotated { .. } => SECRET_ROTATED,
            Self::WebhookEndpointDisabled { .. } => ENDPOINT_DISABLED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhooksError {
    #[error("only admins manage webhooks")]
    NotAnAdmin,
    #[error("no such webhook endpoint")]
    NotFound,
    #[error("an organization keeps at most {MAX_ENDPOINTS} webhook endpoints")]
    TooMany,
    #[error("invalid webhook endpoint")]
    Invalid(Vec<FieldError>),
}

impl IntoRejection for WebhooksError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::NotAnAdmin => Rejection::Forbidden(self.to_string()),
            Self::NotFound => Rejection::NotFound(self.to_string()),
            Self::TooMany => Rejection::Conflict(self.to_string()),
            Self::Invalid(errors) => Rejection::Invalid(errors.clone()),
        }
    }
}

/// Checks what an admin set: an absolute `http(s)` URL without credentials in it, a
/// short description, known event types each named once.
fn validate(
    url: &str,
    description: &str,
    event_types: &[String],
) -> Result<(String, String, Vec<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let url = match address::parse_url(url) {
        Ok(url) if url.as_str().len() <= MAX_URL_LENGTH => url.to_string(),
        Ok(_) => {
            errors.push(FieldError::new(
                "url",
                format!("must be at most {MAX_URL_LENGTH} characters"),
            ));
            String::new()
        }
        Err(message) => {
            errors.push(FieldError::new("url", message));
            String::new()
        }
    };
    let description = optional_text("description", description, MAX_DESCRIPTION_LENGTH)
        .unwrap_or_else(|e| {
            errors.push(e);
            String::new()
        });
    for (i, name) in event_types.iter().enumerate() {
        if !EVENT_TYPES.contains(&name.as_str()) && name != READY_TO_SYNC {
            errors.push(FieldError::new(
                format!("event_types[{i}]"),
                format!("{name:?} is not an event type (GET /v1/webhooks/event-types lists them)"),
            ));
        } else if event_types[..i].contains(name) {
            errors.push(FieldError::new(
                format!("event_types[{i}]"),
                format!("{name:?} is named twice"),
            ));
        }
    }
    match errors.is_empty() {
        true => Ok((url, description, event_types.to_vec())),
        false => Err(errors),
    }
}

impl Webhooks {
    /// The endpoint `id` of `actor`'s organization, which an admin may manage.
    fn managed(&self, actor: &Actor, id: Uuid) -> Result<&Endpoint, WebhooksError> {
        if self
            .organization_id
            .is_some_and(|o| o != actor.organization_id)
        {
            return Err(WebhooksError::NotFound);
        }
        if actor.role != Role::Admin {
            return Err(WebhooksError::NotAnAdmin);
        }
        self.endpoints.get(&id).ok_or(WebhooksError::NotFound)
    }
}

impl Aggregate for Webhooks {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = WebhooksCommand;
    type Event = WebhooksEvent;
    type Error = WebhooksError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            WebhooksCommand::Add {
                actor,
                at,
                endpoint_id,
                secret_id,
                url,
                description,
                event_types,
            } => {
                if self
                    .organization_id
                    .is_some_and(|o| o != actor.organization_id)
                {
                    return Err(WebhooksError::NotFound);
                }
                if actor.role != Role::Admin {
                    return Err(WebhooksError::NotAnAdmin);
                }
                let (url, description, event_types) =
                    validate(&url, &description, &event_types).map_err(WebhooksError::Invalid)?;
                if self.endpoints.len() >= MAX_ENDPOINTS {
                    return Err(WebhooksError::TooMany);
                }
                WebhooksEvent::WebhookEndpointAdded {
                    organization_id: actor.organization_id,
                    endpoint_id,
                    url,
                    description,
                    event_types,
                    secret_id,
                    added_by: actor.user_id,
                    added_at: at,
                }
            }
            WebhooksCommand::Change {
                actor,
                at,
                endpoint_id,
                change,
            } => {
                let endpoint = self.managed(&actor, endpoint_id)?;
                let (url, description, event_types) = validate(
                    change.url.as_deref().unwrap_or(&endpoint.url),
                    change
                        .description
                        .as_deref()
                        .unwrap_or(&endpoint.description),
                    change
                        .event_types
                        .as_deref()
                        .unwrap_or(&endpoint.event_types),
                )
                .map_err(WebhooksError::Invalid)?;
                let enabled = change.enabled.unwrap_or(endpoint.enabled);
                if url == endpoint.url
                    && description == endpoint.description
                    && event_types == endpoint.event_types
                    && enabled == endpoint.enabled
                {
                    return Ok(());
                }
                WebhooksEvent::WebhookEndpointChanged {
                    endpoint_id,
                    url,
                    description,
                    event_types,
                    enabled,
                    changed_by: actor.user_id,
                    changed_at: at,
                }
            }
            WebhooksCommand::Remove {
                actor,
                at,
                endpoint_id,
            } => {
                self.managed(&actor, endpoint_id)?;
                WebhooksEvent::WebhookEndpointRemoved {
                    endpoint_id,
                    removed_by: actor.user_id,
                    removed_at: at,
                }
            }
            WebhooksCommand::RotateSecret {
                actor,
                at,
                endpoint_id,
                secret_id,
                overlap,
            } => {
                self.managed(&actor, endpoint_id)?;
                if overlap < Duration::zero() || overlap > MAX_OVERLAP {
                    return Err(WebhooksError::Invalid(vec![FieldError::new(
                        "overlap_seconds",
                        format!(
                            "must be between 0 and {} seconds",
                            MAX_OVERLAP.num_seconds()
                        ),
                    )]));
                }
                WebhooksEvent::WebhookSecretRotated {
                    endpoint_id,
                    secret_id,
                    previous_valid_until: at + overlap,
                    rotated_by: actor.user_id,
                    rotated_at: at,
                }
            }
            WebhooksCommand::Disable {
                organization_id,
                at,
                endpoint_id,
                reason,
            } => {
                if self.organization_id != Some(organization_id) {
                    return Err(WebhooksError::NotFound);
                }
                match self.endpoints.get(&endpoint_id) {
                    None => return Err(WebhooksError::NotFound),
                    Some(endpoint) if !endpoint.enabled => return Ok(()),
                    Some(_) => {}
                }
                WebhooksEvent::WebhookEndpointDisabled {
                    endpoint_id,
                    reason,
                    disabled_at: at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WebhooksEvent::WebhookEndpointAdded {
                organization_id,
                endpoint_id,
                url,
                description,
                event_types,
                secret_id,
                added_at,
                ..
            } => {
                self.organization_id = Some(organization_id);
                self.endpoints.insert(
                    endpoint_id,
                    Endpoint {
                        url,
                        description,
                        event_types,
                        enabled: true,
                        disabled_reason: None,
                        secrets: vec![SecretRef {
                            secret_id,
                            created_at: added_at,
                            valid_until: None,
                        }],
                        created_at: added_at,
                        updated_at: added_at,
                    },
                );
            }
            WebhooksEvent::WebhookEndpointChanged {
                endpoint_id,
                url,
                description,
                event_types,
                enabled,
                changed_at,
                ..
            } => {
                if let Some(endpoint) = self.endpoints.get_mut(&endpoint_id) {
                    endpoint.url = url;
                    endpoint.description = description;
                    endpoint.event_types = event_types;
                    if enabled {
                        endpoint.disabled_reason = None;
                    }
                    endpoint.enabled = enabled;
                    endpoint.updated_at = changed_at;
                }
            }
            WebhooksEvent::WebhookEndpointRemoved { endpoint_id, .. } => {
                self.endpoints.remove(&endpoint_id);
            }
            WebhooksEvent::WebhookSecretRotated {
                endpoint_id,
                secret_id,
                previous_valid_until,
                rotated_at,
                ..
            } => {
                if let Some(endpoint) = self.endpoints.get_mut(&endpoint_id) {
                    for secret in &mut endpoint.secrets {
                        if secret.valid_until.is_none_or(|u| u > previous_valid_until) {
                            secret.valid_until = Some(previous_valid_until);
                        }
                    }
                    // Secrets that sign no more are of no use to anyone.
                    endpoint
                        .secrets
                        .retain(|s| s.valid_until.is_none_or(|u| u > rotated_at));
                    endpoint.secrets.push(SecretRef {
                        secret_id,
                        created_at: rotated_at,
                        valid_until: None,
                    });
                    endpoint.updated_at = rotated_at;
                }
            }
            WebhooksEvent::WebhookEndpointDisabled {
                endpoint_id,
                reason,
                disabled_at,
            } => {
                if let Some(endpoint) = self.endpoints.get_mut(&endpoint_id) {
                    endpoint.enabled = false;
                    endpoint.disabled_reason = Some(reason);
                    endpoint.updated_at = disabled_at;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: Uuid::from_u128(1),
            organization_id: Uuid::from_u128(2),
            role,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn added() -> WebhooksEvent {
        WebhooksEvent::WebhookEndpointAdded {
            organization_id: Uuid::from_u128(2),
            endpoint_id: Uuid::from_u128(10),
            url: "https://hooks.example.com/in".into(),
            description: "ledger".into(),
            event_types: vec!["ExpenseApproved".into()],
            secret_id: Uuid::from_u128(20),
            added_by: Uuid::from_u128(1),
            added_at: at(0),
        }
    }

    fn add(role: Role, url: &str, event_types: &[&str]) -> WebhooksCommand {
        WebhooksCommand::Add {
            actor: actor(role),
            at: at(0),
            endpoint_id: Uuid::from_u128(10),
            secret_id: Uuid::from_u128(20),
            url: url.into(),
            description: " ledger ".into(),
            event_types: event_types.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn admins_add_endpoints_with_known_event_types() {
        TestFramework::<Webhooks>::with(())
            .given_no_previous_events()
            .when(add(
                Role::Admin,
                "https://hooks.example.com/in",
                &["ExpenseApproved"],
            ))
            .then_expect_events(vec![added()]);
        TestFramework::<Webhooks>::with(())
            .given_no_previous_events()
            .when(add(Role::Approver, "https://hooks.example.com/in", &[]))
            .then_expect_error(WebhooksError::NotAnAdmin);
        let invalid = TestFramework::<Webhooks>::with(())
            .given_no_previous_events()
            .when(add(
                Role::Admin,
                "ftp://hooks.example.com",
                &["ExpenseApproved", "Nope", "ExpenseApproved"],
            ))
            .inspect_result();
        let Err(WebhooksError::Invalid(errors)) = invalid else {
            panic!("accepted: {invalid:?}")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "event_types[1]", "event_types[2]"]);
    }

    #[test]
    fn a_rotation_keeps_the_old_secret_signing_for_the_overlap() {
        let mut webhooks = Webhooks::default();
        webhooks.apply(added());
        webhooks.apply(WebhooksEvent::WebhookSecretRotated {
            endpoint_id: Uuid::from_u128(10),
            secret_id: Uuid::from_u128(21),
            previous_valid_until: at(3600),
            rotated_by: Uuid::from_u128(1),
            rotated_at: at(60),
        });
        let endpoint = &webhooks.endpoints[&Uuid::from_u128(10)];
        assert_eq!(
            endpoint.signing_secrets(at(120)),
            [Uuid::from_u128(20), Uuid::from_u128(21)]
        );
        assert_eq!(endpoint.signing_secrets(at(3600)), [Uuid::from_u128(21)]);
        // A second rotation ends the first overlap no later than its own.
        webhooks.apply(WebhooksEvent::WebhookSecretRotated {
            endpoint_id: Uuid::from_u128(10),
            secret_id: Uuid::from_u128(22),
            previous_valid_until: at(180),
            rotated_by: Uuid::from_u128(1),
            rotated_at: at(120),
        });
        let endpoint = &webhooks.endpoints[&Uuid::from_u128(10)];
        assert_eq!(
            endpoint.signing_secrets(at(150)),
            [
                Uuid::from_u128(20),
                Uuid::from_u128(21),
                Uuid::from_u128(22)
            ]
        );
        assert_eq!(endpoint.signing_secrets(at(180)), [Uuid::from_u128(22)]);
    }

    #[test]
    fn an_endpoint_wants_the_types_it_names_from_its_creation_on() {
        let mut webhooks = Webhooks::default();
        webhooks.apply(added());
        let endpoint = &webhooks.endpoints[&Uuid::from_u128(10)];
        assert!(endpoint.wants("ExpenseApproved", at(1)));
        assert!(!endpoint.wants("ExpenseCreated", at(1)));
        assert!(!endpoint.wants("ExpenseApproved", at(-1)));
        let mut every = endpoint.clone();
        every.event_types.clear();
        assert!(every.wants("ExpenseCreated", at(1)));
        assert!(!every.wants(READY_TO_SYNC, at(1)));
        every.event_types = vec![READY_TO_SYNC.into()];
        assert!(every.wants(READY_TO_SYNC, at(1)));
        webhooks.apply(WebhooksEvent::WebhookEndpointDisabled {
            endpoint_id: Uuid::from_u128(10),
            reason: "failing".into(),
            disabled_at: at(5),
        });
        assert!(!webhooks.endpoints[&Uuid::from_u128(10)].wants("ExpenseApproved", at(6)));
        TestFramework::<Webhooks>::with(())
            .given(vec![added()])
            .when(WebhooksCommand::Change {
                actor: actor(Role::Admin),
                at: at(9),
                endpoint_id: Uuid::from_u128(10),
                change: EndpointChange::default(),
            })
            .then_expect_events(vec![]);
    }
}
