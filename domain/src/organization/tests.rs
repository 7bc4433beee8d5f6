use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type Fixture = TestFramework<Organization>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn admin_id() -> Uuid {
    Uuid::from_u128(1)
}

fn new_user(id: u128, email: &str) -> NewUser {
    NewUser {
        user_id: Uuid::from_u128(id),
        name: format!("User {id}"),
        email: email.into(),
    }
}

fn registered() -> OrganizationEvent {
    OrganizationEvent::OrganizationRegistered {
        name: "Acme".into(),
        default_currency: eur(),
        admin_user_id: admin_id(),
        admin_name: "Ada".into(),
        admin_email: "ada@acme.test".into(),
        registered_at: at(),
    }
}

fn user_added(id: u128, role: Role) -> OrganizationEvent {
    OrganizationEvent::UserAdded {
        user_id: Uuid::from_u128(id),
        name: format!("User {id}"),
        email: format!("user{id}@acme.test"),
        role,
        added_at: at(),
    }
}

#[test]
fn registering_creates_the_organization_with_its_admin() {
    Fixture::with(())
        .given_no_previous_events()
        .when(OrganizationCommand::RegisterOrganization {
            name: "  Acme ".into(),
            default_currency: eur(),
            admin: NewUser {
                name: "Ada".into(),
                ..new_user(1, "Ada@Acme.test")
            },
            at: at(),
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_twice_is_a_conflict() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::RegisterOrganization {
            name: "Acme".into(),
            default_currency: eur(),
            admin: new_user(1, "ada@acme.test"),
            at: at(),
        })
        .then_expect_error(OrganizationError::AlreadyRegistered);
}

#[test]
fn registering_with_bad_input_names_every_bad_field() {
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(OrganizationCommand::RegisterOrganization {
            name: " ".into(),
            default_currency: eur(),
            admin: NewUser {
                name: "".into(),
                ..new_user(1, "not-an-email")
            },
            at: at(),
        })
        .inspect_result();
    let Err(OrganizationError::Invalid(fields)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["organization", "name", "email"]);
}

#[test]
fn an_admin_adds_a_user() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::AddUser {
            actor_id: admin_id(),
            user: new_user(2, "USER2@acme.test"),
            role: Role::Approver,
            at: at(),
        })
        .then_expect_events(vec![user_added(2, Role::Approver)]);
}

#[test]
fn a_non_admin_cannot_add_users() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Approver)])
        .when(OrganizationCommand::AddUser {
            actor_id: Uuid::from_u128(2),
            user: new_user(3, "user3@acme.test"),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::NotAnAdmin);
}

#[test]
fn a_deactivated_admin_cannot_add_users() {
    Fixture::with(())
        .given(vec![
            registered(),
            user_added(2, Role::Admin),
            OrganizationEvent::UserDeactivated {
                user_id: admin_id(),
                deactivated_at: at(),
            },
        ])
        .when(OrganizationCommand::AddUser {
            actor_id: admin_id(),
            user: new_user(3, "user3@acme.test"),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::NotAnAdmin);
}

#[test]
fn adding_a_user_to_a_missing_organization_is_not_found() {
    Fixture::with(())
        .given_no_previous_events()
        .when(OrganizationCommand::AddUser {
            actor_id: admin_id(),
            user: new_user(3, "user3@acme.test"),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::NotFound);
}

#[test]
fn an_email_belongs_to_one_member_only() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::AddUser {
            actor_id: admin_id(),
            user: new_user(3, "User2@Acme.test"),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::EmailInUse);
}

#[test]
fn adding_a_user_with_an_invalid_email_names_the_field() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::AddUser {
            actor_id: admin_id(),
            user: new_user(3, "nope"),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::Invalid(vec![FieldError::new(
            "email",
            "must be an e-mail address like name@example.com",
        )]));
}

#[test]
fn an_admin_changes_a_role() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::ChangeUserRole {
            actor_id: admin_id(),
            user_id: Uuid::from_u128(2),
            role: Role::Auditor,
            at: at(),
        })
        .then_expect_events(vec![OrganizationEvent::UserRoleChanged {
            user_id: Uuid::from_u128(2),
            role: Role::Auditor,
            changed_at: at(),
        }]);
}

#[test]
fn changing_to_the_same_role_records_nothing() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::ChangeUserRole {
            actor_id: admin_id(),
            user_id: Uuid::from_u128(2),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_last_admin_cannot_be_demoted() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ChangeUserRole {
            actor_id: admin_id(),
            user_id: admin_id(),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::LastAdmin);
}

#[test]
fn changing_the_role_of_an_unknown_user_is_not_found() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ChangeUserRole {
            actor_id: admin_id(),
            user_id: Uuid::from_u128(99),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::UserNotFound);
}

#[test]
fn an_admin_deactivates_and_reactivates_a_user() {
    let user = Uuid::from_u128(2);
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::DeactivateUser {
            actor_id: admin_id(),
            user_id: user,
            at: at(),
        })
        .then_expect_events(vec![OrganizationEvent::UserDeactivated {
            user_id: user,
            deactivated_at: at(),
        }]);
    Fixture::with(())
        .given(vec![
            registered(),
            user_added(2, Role::Employee),
            OrganizationEvent::UserDeactivated {
                user_id: user,
                deactivated_at: at(),
            },
        ])
        .when(OrganizationCommand::ReactivateUser {
            actor_id: admin_id(),
            user_id: user,
            at: at(),
        })
        .then_expect_events(vec![OrganizationEvent::UserReactivated {
            user_id: user,
            reactivated_at: at(),
        }]);
}

#[test]
fn deactivating_twice_or_reactivating_an_active_user_records_nothing() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::ReactivateUser {
            actor_id: admin_id(),
            user_id: Uuid::from_u128(2),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_last_active_admin_cannot_be_deactivated() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::DeactivateUser {
            actor_id: admin_id(),
            user_id: admin_id(),
            at: at(),
        })
        .then_expect_error(OrganizationError::LastAdmin);
}

#[test]
fn deactivated_users_have_no_active_role() {
    let mut org = Organization::default();
    for e in [
        registered(),
        user_added(2, Role::Approver),
        OrganizationEvent::UserDeactivated {
            user_id: Uuid::from_u128(2),
            deactivated_at: at(),
        },
    ] {
        org.apply(e);
    }
    assert_eq!(org.active_role(Uuid::from_u128(2)), None);
    assert_eq!(org.active_role(admin_id()), Some(Role::Admin));
    assert_eq!(org.version(), 3);
}

#[test]
fn a_member_changes_their_own_password_and_nobody_else_does() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ChangePassword {
            actor_id: admin_id(),
            at: at(),
        })
        .then_expect_events(vec![OrganizationEvent::PasswordChanged {
            user_id: admin_id(),
            changed_at: at(),
        }]);
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ChangePassword {
            actor_id: Uuid::from_u128(9),
            at: at(),
        })
        .then_expect_error(OrganizationError::UserNotFound);
    Fixture::with(())
        .given(vec![
            registered(),
            user_added(2, Role::Employee),
            OrganizationEvent::UserDeactivated {
                user_id: Uuid::from_u128(2),
                deactivated_at: at(),
            },
        ])
        .when(OrganizationCommand::ChangePassword {
            actor_id: Uuid::from_u128(2),
            at: at(),
        })
        .then_expect_error(OrganizationError::UserNotFound);
}

fn scopes(list: &[TokenScope]) -> std::collections::BTreeSet<TokenScope> {
    list.iter().copied().collect()
}

fn issued(token: u128, user: u128, list: &[TokenScope]) -> OrganizationEvent {
    OrganizationEvent::ApiTokenIssued {
        token_id: Uuid::from_u128(token),
        user_id: Uuid::from_u128(user),
        name: "ci".into(),
        scopes: scopes(list),
        expires_at: None,
        issued_at: at(),
    }
}

#[test]
fn a_member_issues_a_token_with_the_scopes_their_role_allows() {
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::IssueToken {
            actor_id: Uuid::from_u128(2),
            token_id: Uuid::from_u128(7),
            name: "ci".into(),
            scopes: scopes(&[TokenScope::ExpensesRead]),
            expires_at: None,
            at: at(),
        })
        .then_expect_events(vec![issued(7, 2, &[TokenScope::ExpensesRead])]);
    let too_much = |scopes_wanted: &[TokenScope], expires_at: Option<DateTime<Utc>>| {
        Fixture::with(())
            .given(vec![registered(), user_added(2, Role::Employee)])
            .when(OrganizationCommand::IssueToken {
                actor_id: Uuid::from_u128(2),
                token_id: Uuid::from_u128(7),
                name: "ci".into(),
                scopes: scopes(scopes_wanted),
                expires_at,
                at: at(),
            })
            .inspect_result()
            .unwrap_err()
    };
    let OrganizationError::Invalid(errors) = too_much(&[TokenScope::Admin], None) else {
        panic!("an employee's admin token is refused as invalid");
    };
    assert_eq!(errors[0].field, "scopes");
    let OrganizationError::Invalid(errors) = too_much(&[], Some(at())) else {
        panic!("no scopes and an expiry now are refused as invalid");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["scopes", "expires_at"]);
}

#[test]
fn a_token_is_revoked_by_its_owner_or_an_admin_and_only_once() {
    let given = || {
        vec![
            registered(),
            user_added(2, Role::Employee),
            user_added(3, Role::Employee),
            issued(7, 2, &[TokenScope::ExpensesRead]),
        ]
    };
    let revoke = |actor: u128| OrganizationCommand::RevokeToken {
        actor_id: Uuid::from_u128(actor),
        token_id: Uuid::from_u128(7),
        at: at(),
    };
    let revoked = OrganizationEvent::ApiTokenRevoked {
        token_id: Uuid::from_u128(7),
        revoked_at: at(),
    };
    Fixture::with(())
        .given(given())
        .when(revoke(2))
        .then_expect_events(vec![revoked.clone()]);
    Fixture::with(())
        .given(given())
        .when(revoke(1))
        .then_expect_events(vec![revoked.clone()]);
    Fixture::with(())
        .given(given())
        .when(revoke(3))
        .then_expect_error(OrganizationError::TokenNotFound);
    let mut twice = given();
    twice.push(revoked);
    Fixture::with(())
        .given(twice)
        .when(revoke(2))
        .then_expect_events(vec![]);
}

#[test]
fn a_token_allows_its_scopes_until_it_expires_or_is_revoked() {
    let mut token = ApiToken {
        user_id: admin_id(),
        name: "ci".into(),
        scopes: scopes(&[TokenScope::ExpensesRead]),
        expires_at: Some(at() + chrono::Duration::days(1)),
        issued_at: at(),
        revoked: false,
    };
    assert!(token.allows(TokenScope::ExpensesRead, at()));
    assert!(!token.allows(TokenScope::ExpensesWrite, at()));
    assert!(!token.allows(TokenScope::ExpensesRead, at() + chrono::Duration::days(1)));
    token.scopes = scopes(&[TokenScope::Admin]);
    assert!(token.allows(TokenScope::AuditRead, at()));
    token.revoked = true;
    assert!(!token.allows(TokenScope::AuditRead, at()));
}

fn kept(id: u128) -> Retention {
    Retention {
        aggregate_type: "expense".into(),
        aggregate_id: Uuid::from_u128(id),
        basis: VOUCHER_RETENTION_BASIS.into(),
        until: Utc.with_ymd_and_hms(2035, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn erased(id: u128) -> OrganizationEvent {
    OrganizationEvent::UserErased {
        user_id: Uuid::from_u128(id),
        erased_by: Some(admin_id()),
        retained: vec![kept(50)],
        erased_at: at(),
    }
}

#[test]
fn an_admin_erases_a_user_once_keeping_what_the_law_requires() {
    let erase = || OrganizationCommand::EraseUser {
        actor_id: Some(admin_id()),
        user_id: Uuid::from_u128(2),
        retained: vec![kept(50)],
        at: at(),
    };
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(erase())
        .then_expect_events(vec![erased(2)]);
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee), erased(2)])
        .when(erase())
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::EraseUser {
            actor_id: Some(Uuid::from_u128(2)),
            user_id: admin_id(),
            retained: vec![],
            at: at(),
        })
        .then_expect_error(OrganizationError::NotAnAdmin);
}

/// Irreversible or locking changes to an admin's own account take a second admin: one
/// slip (or a stolen session) cannot lock its owner out or erase them.
#[test]
fn an_admin_does_not_demote_deactivate_or_erase_themselves() {
    let given = || vec![registered(), user_added(2, Role::Admin)];
    Fixture::with(())
        .given(given())
        .when(OrganizationCommand::ChangeUserRole {
            actor_id: admin_id(),
            user_id: admin_id(),
            role: Role::Employee,
            at: at(),
        })
        .then_expect_error(OrganizationError::OwnAccount);
    Fixture::with(())
        .given(given())
        .when(OrganizationCommand::DeactivateUser {
            actor_id: admin_id(),
            user_id: admin_id(),
            at: at(),
        })
        .then_expect_error(OrganizationError::OwnAccount);
    Fixture::with(())
        .given(given())
        .when(OrganizationCommand::EraseUser {
            actor_id: Some(admin_id()),
            user_id: admin_id(),
            retained: vec![],
            at: at(),
        })
        .then_expect_error(OrganizationError::OwnAccount);
}

#[test]
fn the_last_admin_is_not_erased() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::EraseUser {
            actor_id: None,
            user_id: admin_id(),
            retained: vec![],
            at: at(),
        })
        .then_expect_error(OrganizationError::LastAdmin);
}

#[test]
fn an_erased_user_reads_erased_and_cannot_come_back() {
    let mut org = Organization::default();
    for event in [registered(), user_added(2, Role::Employee), erased(2)] {
        cqrs_es::Aggregate::apply(&mut org, event);
    }
    let member = org.member(Uuid::from_u128(2)).unwrap();
    assert_eq!(member.name, crate::personal::ERASED);
    assert_eq!(member.email, crate::personal::ERASED);
    assert!(!member.active);
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee), erased(2)])
        .when(OrganizationCommand::ReactivateUser {
            actor_id: admin_id(),
            user_id: Uuid::from_u128(2),
            at: at(),
        })
        .then_expect_error(OrganizationError::Erased);
}

#[test]
fn a_retention_ends_once() {
    let end = || OrganizationCommand::EndRetention {
        user_id: Uuid::from_u128(2),
        aggregate_type: "expense".into(),
        aggregate_id: Uuid::from_u128(50),
        at: at(),
    };
    let ended = OrganizationEvent::RetentionEnded {
        user_id: Uuid::from_u128(2),
        aggregate_type: "expense".into(),
        aggregate_id: Uuid::from_u128(50),
        ended_at: at(),
    };
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee), erased(2)])
        .when(end())
        .then_expect_events(vec![ended.clone()]);
    Fixture::with(())
        .given(vec![
            registered(),
            user_added(2, Role::Employee),
            erased(2),
            ended,
        ])
        .when(end())
        .then_expect_events(vec![]);
}

// --- managers and delegation ---

#[test]
fn admins_name_managers_who_are_other_active_members() {
    let given = vec![
        registered(),
        user_added(2, Role::Employee),
        user_added(3, Role::Approver),
        user_added(4, Role::Auditor),
    ];
    let set = |user: u128, manager: Option<u128>| OrganizationCommand::SetManager {
        actor_id: admin_id(),
        user_id: Uuid::from_u128(user),
        manager_id: manager.map(Uuid::from_u128),
        at: at(),
    };
    Fixture::with(())
        .given(given.clone())
        .when(set(2, Some(3)))
        .then_expect_events(vec![OrganizationEvent::ManagerSet {
            user_id: Uuid::from_u128(2),
            manager_id: Some(Uuid::from_u128(3)),
            set_at: at(),
        }]);
    for wrong in [2, 4, 9] {
        let result = Fixture::with(())
            .given(given.clone())
            .when(set(2, Some(wrong)))
            .inspect_result();
        assert!(
            matches!(result, Err(OrganizationError::Invalid(_))),
            "manager {wrong}: {result:?}"
        );
    }
}

#[test]
fn people_who_approve_delegate_for_a_period() {
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let delegate = |actor: u128, from, until| OrganizationCommand::Delegate {
        actor_id: Uuid::from_u128(actor),
        delegation: Some(Delegation {
            delegate_id: Uuid::from_u128(3),
            from,
            until,
        }),
        at: at(),
    };
    let given = vec![
        registered(),
        user_added(2, Role::Approver),
        user_added(3, Role::Employee),
        user_added(5, Role::Employee),
    ];
    let events = Fixture::with(())
        .given(given.clone())
        .when(delegate(2, day(2), day(9)))
        .inspect_result()
        .unwrap();
    let mut organization = Organization::default();
    for event in given.iter().cloned().chain(events) {
        organization.apply(event);
    }
    assert_eq!(
        organization.delegators_of(Uuid::from_u128(3), day(5)),
        [(Uuid::from_u128(2), Role::Approver)]
    );
    assert!(organization
        .delegators_of(Uuid::from_u128(3), day(10))
        .is_empty());
    // An employee who manages nobody approves nothing to hand over; a period that ended
    // is refused.
    let yesterday = day(1).pred_opt().unwrap();
    for (actor, from, until) in [(5, day(2), day(9)), (2, yesterday, yesterday)] {
        let result = Fixture::with(())
            .given(given.clone())
            .when(delegate(actor, from, until))
            .inspect_result();
        assert!(
            matches!(result, Err(OrganizationError::Invalid(_))),
            "{result:?}"
        );
    }
}

const ISSUER: &str = "https://id.acme.test";

fn sso_settings() -> SingleSignOn {
    SingleSignOn {
        issuer: ISSUER.into(),
        client_id: " expensewise ".into(),
        secret_id: None,
        allowed_domains: vec!["@Acme.test".into(), "acme.test".into()],
        default_role: Role::Employee,
        password_sign_in: false,
    }
}

fn sso_configured() -> OrganizationEvent {
    OrganizationEvent::SingleSignOnConfigured {
        settings: SingleSignOn {
            client_id: "expensewise".into(),
            allowed_domains: vec!["acme.test".into()],
            ..sso_settings()
        },
        configured_at: at(),
    }
}

#[test]
fn an_admin_sets_single_sign_on_in_its_normal_form_and_it_turns_passwords_off() {
    Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ConfigureSingleSignOn {
            actor_id: admin_id(),
            settings: sso_settings(),
            at: at(),
        })
        .then_expect_events(vec![sso_configured()]);
    let mut org = Organization::default();
    org.apply(registered());
    assert!(org.password_sign_in());
    org.apply(sso_configured());
    assert!(!org.password_sign_in());
    org.apply(OrganizationEvent::SingleSignOnRemoved { removed_at: at() });
    assert!(org.password_sign_in());
}

#[test]
fn single_sign_on_settings_are_checked_and_never_make_admins() {
    let result = Fixture::with(())
        .given(vec![registered()])
        .when(OrganizationCommand::ConfigureSingleSignOn {
            actor_id: admin_id(),
            settings: SingleSignOn {
                issuer: "id.acme.test".into(),
                client_id: " ".into(),
                allowed_domains: vec!["not a domain".into()],
                default_role: Role::Admin,
                ..sso_settings()
            },
            at: at(),
        })
        .inspect_result();
    let Err(OrganizationError::Invalid(fields)) = result else {
        panic!("{result:?}");
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        names,
        ["issuer", "client_id", "allowed_domains", "default_role"]
    );
    Fixture::with(())
        .given(vec![registered(), user_added(2, Role::Employee)])
        .when(OrganizationCommand::ConfigureSingleSignOn {
            actor_id: Uuid::from_u128(2),
            settings: sso_settings(),
            at: at(),
        })
        .then_expect_error(OrganizationError::NotAnAdmin);
}

#[test]
fn a_first_sign_in_adds_a_linked_user_once_in_the_default_role() {
    let user = new_user(7, "eve@acme.test");
    let join = || OrganizationCommand::JoinBySingleSignOn {
        user: user.clone(),
        issuer: ISSUER.into(),
        subject: "eve-1".into(),
        at: at(),
    };
    let added = OrganizationEvent::UserAdded {
        user_id: user.user_id,
        name: user.name.clone(),
        email: "eve@acme.test".into(),
        role: Role::Employee,
        added_at: at(),
    };
    let linked = OrganizationEvent::IdentityLinked {
        user_id: user.user_id,
        issuer: ISSUER.into(),
        subject: "eve-1".into(),
        linked_at: at(),
    };
    Fixture::with(())
        .given(vec![registered(), sso_configured()])
        .when(join())
        .then_expect_events(vec![added.clone(), linked.clone()]);
    // The same account racing its own first sign-in: nothing more.
    Fixture::with(())
        .given(vec![registered(), sso_configured(), added, linked.clone()])
        .when(join())
        .then_expect_events(vec![]);
    let mut org = Organization::default();
    org.apply(registered());
    org.apply(sso_configured());
    org.apply(linked);
    assert_eq!(org.identity(ISSUER, "eve-1"), Some(user.user_id));
    assert_eq!(org.identity("https://other.test", "eve-1"), None);
}

#[test]
fn a_first_sign_in_needs_the_issuer_and_an_allowed_domain() {
    let join = |issuer: &str, email: &str| OrganizationCommand::JoinBySingleSignOn {
        user: new_user(7, email),
        issuer: issuer.into(),
        subject: "eve-1".into(),
        at: at(),
    };
    Fixture::with(())
        .given(vec![registered()])
        .when(join(ISSUER, "eve@acme.test"))
        .then_expect_error(OrganizationError::NoSingleSignOn);
    Fixture::with(())
        .given(vec![registered(), sso_configured()])
        .when(join("https://evil.test", "eve@acme.test"))
        .then_expect_error(OrganizationError::NoSingleSignOn);
    Fixture::with(())
        .given(vec![registered(), sso_configured()])
        .when(join(ISSUER, "eve@acme.test.evil.test"))
        .then_expect_error(OrganizationError::DomainNotAllowed);
}

#[test]
fn a_member_is_linked_to_one_account_of_the_issuer() {
    let link = |user: u128, subject: &str| OrganizationCommand::LinkIdentity {
        user_id: Uuid::from_u128(user),
        issuer: ISSUER.into(),
        subject: subject.into(),
        at: at(),
    };
    let linked = OrganizationEvent::IdentityLinked {
        user_id: Uuid::from_u128(2),
        issuer: ISSUER.into(),
        subject: "two".into(),
        linked_at: at(),
    };
    let given = || {
        vec![
            registered(),
            user_added(2, Role::Employee),
            sso_configured(),
        ]
    };
    Fixture::with(())
        .given(given())
        .when(link(2, "two"))
        .then_expect_events(vec![linked.clone()]);
    let mut later = given();
    later.push(linked);
    Fixture::with(())
        .given(later.clone())
        .when(link(2, "two"))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(later.clone())
        .when(link(2, "another"))
        .then_expect_error(OrganizationError::IdentityTaken);
    Fixture::with(())
        .given(later)
        .when(link(1, "two"))
        .then_expect_error(OrganizationError::IdentityTaken);
}
