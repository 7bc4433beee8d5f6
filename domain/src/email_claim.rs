//! Global e-mail uniqueness. Each address is its own tiny aggregate, keyed by a keyed hash
//! of the lower-cased address, so two registrations racing for one address both try to
//! append sequence 1 of the same stream and the event store lets exactly one win. The
//! hash is keyed (HMAC-SHA-256 under a secret of the deployment) so that the stream ids
//! in a copy of the store do not tell whether an address was ever registered.
//!
//! Registering is claim-then-create across two aggregates, which cannot share one
//! transaction. If the process dies between them, the claim points at a user that never
//! came to be; such an abandoned claim may be taken over once the application has seen
//! that the user does not exist and the claim is old enough not to be a registration
//! still in flight.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rejection::{IntoRejection, Rejection};

pub const AGGREGATE_TYPE: &str = "email_claim";
pub const EMAIL_CLAIMED: &str = "EmailClaimed";
pub const EMAIL_RELEASED: &str = "EmailReleased";

/// How long a claim whose user does not exist is still presumed to be in flight.
pub const ABANDONED_AFTER: Duration = Duration::minutes(5);

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_3c8e_51d4_4c2a_9e0f_7a52_d1c0_e11a);

/// The stream id of an address (which must already be lower case, see `validate::email`)
/// under the deployment's claim key: the HMAC-SHA-256 of the address, as a UUID (version
/// 8, for ids of one's own making).
pub fn claim_id(key: &[u8; 32], email: &str) -> Uuid {
    use hmac::{Mac as _, SimpleHmac};
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(email.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The stream id releases before keyed ids gave an address (an unkeyed UUIDv5): claims
/// made then are still found under it.
pub fn legacy_claim_id(email: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, email.as_bytes())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailClaim {
    holder: Option<Holder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub claimed_at: DateTime<Utc>,
}

impl EmailClaim {
    pub fn holder(&self) -> Option<Holder> {
        self.holder
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimEmail {
    pub email: String,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub at: DateTime<Utc>,
    /// Set by the application after checking that the current holder's user does not
    /// exist in its organization.
    pub holder_is_missing: bool,
}

/// The user holding the address was erased: it is free to be registered again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseEmail {
    pub user_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailClaimCommand {
    Claim(ClaimEmail),
    Release(ReleaseEmail),
}

impl From<ClaimEmail> for EmailClaimCommand {
    fn from(claim: ClaimEmail) -> Self {
        Self::Claim(claim)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EmailClaimEvent {
    EmailClaimed {
        email: String,
        user_id: Uuid,
        organization_id: Uuid,
        claimed_at: DateTime<Utc>,
    },
    EmailReleased {
        user_id: Uuid,
        released_at: DateTime<Utc>,
    },
}

impl DomainEvent for EmailClaimEvent {
    fn event_type(&self) -> String {
        match self {
            Self::EmailClaimed { .. } => EMAIL_CLAIMED,
            Self::EmailReleased { .. } => EMAIL_RELEASED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmailClaimError {
    #[error("this e-mail address is already registered")]
    Taken,
}

impl IntoRejection for EmailClaimError {
    fn rejection(&self) -> Rejection {
        Rejection::Conflict(self.to_string())
    }
}

impl Aggregate for EmailClaim {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = EmailClaimCommand;
    type Event = EmailClaimEvent;
    type Error = EmailClaimError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let command = match command {
            EmailClaimCommand::Claim(claim) => claim,
            EmailClaimCommand::Release(release) => {
                if self.holder.is_some_and(|h| h.user_id == release.user_id) {
                    let event = EmailClaimEvent::EmailReleased {
                        user_id: release.user_id,
                        released_at: release.at,
                    };
                    sink.write(event, self).await;
                }
                return Ok(());
            }
        };
        if let Some(holder) = self.holder {
            if holder.user_id == command.user_id {
                return Ok(());
            }
            let abandoned =
                command.holder_is_missing && command.at - holder.claimed_at >= ABANDONED_AFTER;
            if !abandoned {
                return Err(EmailClaimError::Taken);
            }
        }
        let event = EmailClaimEvent::EmailClaimed {
            email: command.email,
            user_id: command.user_id,
            organization_id: command.organization_id,
            claimed_at: command.at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.holder = match event {
            EmailClaimEvent::EmailClaimed {
                user_id,
                organization_id,
                claimed_at,
                ..
            } => Some(Holder {
                user_id,
                organization_id,
                claimed_at,
            }),
            EmailClaimEvent::EmailReleased { .. } => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, minute, 0).unwrap()
    }

    fn claim(user: u128, minute: u32, holder_is_missing: bool) -> ClaimEmail {
        ClaimEmail {
            email: "ada@acme.test".into(),
            user_id: Uuid::from_u128(user),
            organization_id: Uuid::from_u128(100 + user),
            at: at(minute),
            holder_is_missing,
        }
    }

    fn claimed(user: u128, minute: u32) -> EmailClaimEvent {
        EmailClaimEvent::EmailClaimed {
            email: "ada@acme.test".into(),
            user_id: Uuid::from_u128(user),
            organization_id: Uuid::from_u128(100 + user),
            claimed_at: at(minute),
        }
    }

    #[test]
    fn a_free_address_is_claimed() {
        TestFramework::<EmailClaim>::with(())
            .given_no_previous_events()
            .when(claim(1, 0, false).into())
            .then_expect_events(vec![claimed(1, 0)]);
    }

    #[test]
    fn a_held_address_cannot_be_claimed_by_another_user() {
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(claim(2, 30, false).into())
            .then_expect_error(EmailClaimError::Taken);
    }

    #[test]
    fn claiming_again_for_the_same_user_records_nothing() {
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(claim(1, 1, false).into())
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_fresh_claim_of_a_missing_user_is_presumed_in_flight() {
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(claim(2, 4, true).into())
            .then_expect_error(EmailClaimError::Taken);
    }

    #[test]
    fn an_abandoned_claim_is_taken_over() {
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(claim(2, 5, true).into())
            .then_expect_events(vec![claimed(2, 5)]);
    }

    #[test]
    fn a_released_address_can_be_claimed_again() {
        let release = EmailClaimCommand::Release(ReleaseEmail {
            user_id: Uuid::from_u128(1),
            at: at(2),
        });
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(release)
            .then_expect_events(vec![EmailClaimEvent::EmailReleased {
                user_id: Uuid::from_u128(1),
                released_at: at(2),
            }]);
        TestFramework::<EmailClaim>::with(())
            .given(vec![
                claimed(1, 0),
                EmailClaimEvent::EmailReleased {
                    user_id: Uuid::from_u128(1),
                    released_at: at(2),
                },
            ])
            .when(claim(2, 3, false).into())
            .then_expect_events(vec![claimed(2, 3)]);
    }

    #[test]
    fn only_the_holder_releases_an_address() {
        let release = EmailClaimCommand::Release(ReleaseEmail {
            user_id: Uuid::from_u128(2),
            at: at(2),
        });
        TestFramework::<EmailClaim>::with(())
            .given(vec![claimed(1, 0)])
            .when(release)
            .then_expect_events(vec![]);
    }

    #[test]
    fn claim_ids_depend_on_the_address_and_the_key() {
        let (key, other) = (&[1; 32], &[2; 32]);
        assert_eq!(
            claim_id(key, "ada@acme.test"),
            claim_id(key, "ada@acme.test")
        );
        assert_ne!(
            claim_id(key, "ada@acme.test"),
            claim_id(key, "bob@acme.test")
        );
        assert_ne!(
            claim_id(key, "ada@acme.test"),
            claim_id(other, "ada@acme.test")
        );
        assert_ne!(
            claim_id(key, "ada@acme.test"),
            legacy_claim_id("ada@acme.test")
        );
        assert_eq!(claim_id(key, "ada@acme.test").get_version_num(), 8);
    }
}
