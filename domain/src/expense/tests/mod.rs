use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::money::Currency;

mod lifecycle;

type Fixture = TestFramework<Expense>;

const ORG: Uuid = Uuid::from_u128(100);
const OWNER: Uuid = Uuid::from_u128(1);
const APPROVER: Uuid = Uuid::from_u128(2);
const RECEIPT: Uuid = Uuid::from_u128(50);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, d).unwrap()
}

fn eur(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("EUR").unwrap()).unwrap()
}

fn actor(user_id: Uuid, role: Role) -> Actor {
    Actor {
        user_id,
        organization_id: ORG,
        role,
    }
}

fn ctx(user_id: Uuid, role: Role) -> Context {
    Context {
        actor: actor(user_id, role),
        at: at(),
        expected_version: None,
    }
}

fn owner() -> Context {
    ctx(OWNER, Role::Employee)
}

fn approver() -> Context {
    ctx(APPROVER, Role::Approver)
}

fn admin() -> Context {
    ctx(Uuid::from_u128(3), Role::Admin)
}

fn details() -> ExpenseDetails {
    ExpenseDetails {
        money: eur("42.50"),
        merchant: " Café Central ".into(),
        category: "meals".into(),
        spent_on: day(20),
        description: Some("Team lunch".into()),
        mileage: None,
    }
}

fn created() -> ExpenseEvent {
    ExpenseEvent::ExpenseCreated {
        organization_id: ORG,
        owner_id: OWNER,
        money: eur("42.50"),
        merchant: "Café Central".into(),
        category: "meals".into(),
        spent_on: day(20),
        description: Some("Team lunch".into()),
        receipt_id: None,
        mileage: None,
        base_amount: Some(eur("42.50")),
        rate: None,
        policy_version: 0,
        violations: Vec::new(),
        created_at: at(),
    }
}

fn submitted(resubmission: bool) -> ExpenseEvent {
    ExpenseEvent::ExpenseSubmitted {
        resubmission,
        policy_version: 0,
        violations: Vec::new(),
        justification: None,
        approval_steps: one_approver(),
        submitted_at: at(),
    }
}

/// The chain without a policy: one step by an approver.
fn one_approver() -> Vec<ApprovalStep> {
    vec![ApprovalStep {
        approver: Approver::Approver,
        user_id: None,
    }]
}

fn approved() -> ExpenseEvent {
    ExpenseEvent::ExpenseApproved {
        approver_id: APPROVER,
        comment: None,
        step: 1,
        on_behalf_of: None,
        approved_at: at(),
    }
}

fn rejected() -> ExpenseEvent {
    ExpenseEvent::ExpenseRejected {
        approver_id: APPROVER,
        reason: "No receipt".into(),
        step: 1,
        on_behalf_of: None,
        rejected_at: at(),
    }
}

fn reimbursed() -> ExpenseEvent {
    ExpenseEvent::ExpenseReimbursed {
        reimbursed_by: admin().actor.user_id,
        reimbursed_at: at(),
    }
}

fn deleted() -> ExpenseEvent {
    ExpenseEvent::ExpenseDeleted {
        deleted_by: OWNER,
        deleted_at: at(),
    }
}

fn create(ctx: Context) -> ExpenseCommand {
    ExpenseCommand::CreateExpense {
        ctx,
        details: details(),
        receipt_id: None,
        today: today(),
        valuation: in_euros(&details().money),
        assessment: Assessment::default(),
    }
}

/// An amount already in the organization's currency (the tests' organization's is EUR).
fn in_euros(money: &Money) -> Valuation {
    Valuation {
        base_amount: Some(*money),
        rate: None,
    }
}

fn submit(ctx: Context) -> ExpenseCommand {
    ExpenseCommand::SubmitExpense {
        ctx,
        assessment: Assessment::default(),
        justification: None,
        approval_steps: one_approver(),
    }
}

fn approve(ctx: Context) -> ExpenseCommand {
    ExpenseCommand::ApproveExpense {
        ctx,
        comment: None,
        on_behalf_of: None,
    }
}

fn reject(ctx: Context, reason: &str) -> ExpenseCommand {
    ExpenseCommand::RejectExpense {
        ctx,
        reason: reason.into(),
        on_behalf_of: None,
    }
}

fn update(ctx: Context, changes: ExpenseChanges) -> ExpenseCommand {
    ExpenseCommand::UpdateExpense {
        ctx,
        valuation: changes.money.as_ref().map(in_euros),
        changes,
        today: today(),
        assessment: Assessment::default(),
    }
}

fn expect_invalid_fields(result: Result<Vec<ExpenseEvent>, ExpenseError>, fields: &[&str]) {
    let Err(ExpenseError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(names, fields);
}

// --- create ---

#[test]
fn an_employee_creates_a_draft() {
    Fixture::with(())
        .given_no_previous_events()
        .when(create(owner()))
        .then_expect_events(vec![created()]);
}

#[test]
fn a_draft_can_start_with_a_receipt() {
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(ExpenseCommand::CreateExpense {
            ctx: owner(),
            details: details(),
            receipt_id: Some(RECEIPT),
            today: today(),
            valuation: in_euros(&eur("42.50")),
            assessment: Assessment::default(),
        })
        .inspect_result()
        .unwrap();
    let mut expense = Expense::default();
    result.into_iter().for_each(|e| expense.apply(e));
    assert_eq!(expense.state.unwrap().receipt_ids, vec![RECEIPT]);
}

#[test]
fn creating_an_existing_expense_is_a_conflict() {
    Fixture::with(())
        .given(vec![created()])
        .when(create(owner()))
        .then_expect_error(ExpenseError::AlreadyExists);
}

#[test]
fn auditors_cannot_create_expenses() {
    Fixture::with(())
        .given_no_previous_events()
        .when(create(ctx(OWNER, Role::Auditor)))
        .then_expect_error(ExpenseError::AuditorsCannotRecord);
}

#[test]
fn an_expense_cannot_be_spent_in_the_future() {
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(ExpenseCommand::CreateExpense {
            ctx: owner(),
            details: ExpenseDetails {
                spent_on: today().succ_opt().unwrap(),
                ..details()
            },
            receipt_id: None,
            today: today(),
            valuation: in_euros(&eur("42.50")),
            assessment: Assessment::default(),
        })
        .inspect_result();
    expect_invalid_fields(result, &["spent_on"]);
}

#[test]
fn empty_merchant_and_category_are_refused_together() {
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(ExpenseCommand::CreateExpense {
            ctx: owner(),
            details: ExpenseDetails {
                merchant: "  ".into(),
                category: "".into(),
                description: Some("x".repeat(2001)),
                ..details()
            },
            receipt_id: None,
            today: today(),
            valuation: in_euros(&eur("42.50")),
            assessment: Assessment::default(),
        })
        .inspect_result();
    expect_invalid_fields(result, &["merchant", "category", "description"]);
}

// --- update ---

#[test]
fn the_owner_edits_a_draft() {
    Fixture::with(())
        .given(vec![created()])
        .when(update(
            owner(),
            ExpenseChanges {
                money: Some(eur("40.00")),
                description: Some(None),
                ..Default::default()
            },
        ))
        .then_expect_events(vec![ExpenseEvent::ExpenseUpdated {
            money: eur("40.00"),
            merchant: "Café Central".into(),
            category: "meals".into(),
            spent_on: day(20),
            description: None,
            mileage: None,
            base_amount: Some(eur("40.00")),
            rate: None,
            policy_version: 0,
            violations: Vec::new(),
            updated_at: at(),
        }]);
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    Fixture::with(())
        .given(vec![created()])
        .when(update(
            owner(),
            ExpenseChanges {
                merchant: Some("Café Central".into()),
                ..Default::default()
            },
        ))
        .then_expect_events(vec![]);
}

#[test]
fn only_the_owner_edits() {
    Fixture::with(())
        .given(vec![created()])
        .when(update(admin(), ExpenseChanges::default()))
        .then_expect_error(ExpenseError::NotOwner);
}

#[test]
fn editing_a_submitted_expense_withdraws_it_and_its_chain_starts_again() {
    let mut expense = Expense::default();
    for event in [created(), submitted(false)] {
        expense.apply(event);
    }
    let changes = ExpenseChanges {
        money: Some(eur("40.00")),
        ..ExpenseChanges::default()
    };
    let result = Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(update(owner(), changes))
        .inspect_result()
        .unwrap();
    result.into_iter().for_each(|e| expense.apply(e));
    let state = expense.state.unwrap();
    assert_eq!(state.status, ExpenseStatus::Draft);
    assert!(state.approval_steps.is_empty() && state.approvals.is_empty());
}

#[test]
fn an_approved_expense_cannot_be_edited() {
    Fixture::with(())
        .given(vec![created(), submitted(false), approved()])
        .when(update(owner(), ExpenseChanges::default()))
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Approved));
}

#[test]
fn an_edit_into_the_future_is_refused() {
    let result = Fixture::with(())
        .given(vec![created()])
        .when(update(
            owner(),
            ExpenseChanges {
                spent_on: Some(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
                ..Default::default()
            },
        ))
        .inspect_result();
    expect_invalid_fields(result, &["spent_on"]);
}

#[test]
fn a_stale_version_is_refused() {
    Fixture::with(())
        .given(vec![created()])
        .when(update(
            Context {
                expected_version: Some(7),
                ..owner()
            },
            ExpenseChanges::default(),
        ))
        .then_expect_error(ExpenseError::StaleVersion { current: 1 });
}

#[test]
fn the_current_version_is_accepted() {
    Fixture::with(())
        .given(vec![created()])
        .when(submit(Context {
            expected_version: Some(1),
            ..owner()
        }))
        .then_expect_events(vec![submitted(false)]);
}

#[test]
fn an_expense_of_another_organization_is_not_found() {
    let mut stranger = owner();
    stranger.actor.organization_id = Uuid::from_u128(999);
    Fixture::with(())
        .given(vec![created()])
        .when(submit(stranger))
        .then_expect_error(ExpenseError::NotFound);
}

#[test]
fn a_missing_expense_is_not_found() {
    Fixture::with(())
        .given_no_previous_events()
        .when(submit(owner()))
        .then_expect_error(ExpenseError::NotFound);
}

// --- receipts ---

#[test]
fn the_owner_attaches_a_receipt_once() {
    Fixture::with(())
        .given(vec![created()])
        .when(ExpenseCommand::AttachReceipt {
            ctx: owner(),
            receipt_id: RECEIPT,
        })
        .then_expect_events(vec![ExpenseEvent::ExpenseReceiptAttached {
            receipt_id: RECEIPT,
            attached_at: at(),
        }]);
    Fixture::with(())
        .given(vec![
            created(),
            ExpenseEvent::ExpenseReceiptAttached {
                receipt_id: RECEIPT,
                attached_at: at(),
            },
        ])
        .when(ExpenseCommand::AttachReceipt {
            ctx: owner(),
            receipt_id: RECEIPT,
        })
        .then_expect_events(vec![]);
}

#[test]
fn receipts_cannot_be_attached_after_submission() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(ExpenseCommand::AttachReceipt {
            ctx: owner(),
            receipt_id: RECEIPT,
        })
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Submitted));
}

#[test]
fn an_expense_holds_a_bounded_number_of_receipts() {
    let mut given = vec![created()];
    given.extend(
        (0..MAX_RECEIPTS as u128).map(|i| ExpenseEvent::ExpenseReceiptAttached {
            receipt_id: Uuid::from_u128(1000 + i),
            attached_at: at(),
        }),
    );
    let result = Fixture::with(())
        .given(given)
        .when(ExpenseCommand::AttachReceipt {
            ctx: owner(),
            receipt_id: RECEIPT,
        })
        .inspect_result();
    expect_invalid_fields(result, &["receipt_id"]);
}

#[test]
fn others_cannot_attach_receipts() {
    Fixture::with(())
        .given(vec![created()])
        .when(ExpenseCommand::AttachReceipt {
            ctx: approver(),
            receipt_id: RECEIPT,
        })
        .then_expect_error(ExpenseError::NotOwner);
}

// --- mileage ---

fn per_km(per_unit: &str, from: NaiveDate) -> crate::policy::MileageRate {
    crate::policy::MileageRate {
        unit: crate::policy::DistanceUnit::Km,
        per_unit: per_unit.parse().unwrap(),
        valid_from: from,
        valid_until: Some(day(28)),
    }
}

fn trip(distance: &str, amount: &str) -> ExpenseDetails {
    ExpenseDetails {
        money: eur(amount),
        mileage: Some(Mileage {
            distance: distance.parse().unwrap(),
            rate: per_km("0.30", day(1)),
        }),
        ..details()
    }
}

fn create_trip(details: ExpenseDetails) -> ExpenseCommand {
    ExpenseCommand::CreateExpense {
        ctx: owner(),
        valuation: in_euros(&details.money),
        details,
        receipt_id: None,
        today: today(),
        assessment: Assessment::default(),
    }
}

#[test]
fn a_mileage_claim_is_its_distance_at_the_rate_of_its_day() {
    let events = Fixture::with(())
        .given_no_previous_events()
        .when(create_trip(trip("123.45", "37.04")))
        .inspect_result()
        .unwrap();
    let ExpenseEvent::ExpenseCreated { mileage, money, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(money, &eur("37.04"));
    assert_eq!(mileage.as_ref().unwrap().distance.to_string(), "123.45");
    let wrong_amount = Fixture::with(())
        .given_no_previous_events()
        .when(create_trip(trip("123.45", "37.00")))
        .inspect_result();
    expect_invalid_fields(wrong_amount, &["amount"]);
    let out_of_period = Fixture::with(())
        .given_no_previous_events()
        .when(create_trip(ExpenseDetails {
            spent_on: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            ..trip("10", "3.00")
        }))
        .inspect_result();
    expect_invalid_fields(out_of_period, &["spent_on"]);
    let no_distance = Fixture::with(())
        .given_no_previous_events()
        .when(create_trip(trip("0", "3.00")))
        .inspect_result();
    expect_invalid_fields(no_distance, &["mileage.distance"]);
}

#[test]
fn an_amount_spent_does_not_become_a_mileage_claim_but_a_claim_is_priced_again() {
    let result = Fixture::with(())
        .given(vec![created()])
        .when(update(
            owner(),
            ExpenseChanges {
                money: Some(eur("3.00")),
                mileage: trip("10", "3.00").mileage,
                ..Default::default()
            },
        ))
        .inspect_result();
    expect_invalid_fields(result, &["mileage"]);
    let recorded = Fixture::with(())
        .given_no_previous_events()
        .when(create_trip(trip("10", "3.00")))
        .inspect_result()
        .unwrap();
    let longer = trip("20.5", "6.15");
    let events = Fixture::with(())
        .given(recorded.clone())
        .when(update(
            owner(),
            ExpenseChanges {
                money: Some(longer.money),
                mileage: longer.mileage.clone(),
                ..Default::default()
            },
        ))
        .inspect_result()
        .unwrap();
    assert!(
        matches!(&events[0], ExpenseEvent::ExpenseUpdated { mileage, money, .. }
            if *mileage == longer.mileage && *money == eur("6.15")),
        "{events:?}"
    );
    // A new amount alone does not change the distance it must come from.
    let amount_only = Fixture::with(())
        .given(recorded)
        .when(update(
            owner(),
            ExpenseChanges {
                money: Some(eur("9.99")),
                ..Default::default()
            },
        ))
        .inspect_result();
    expect_invalid_fields(amount_only, &["amount"]);
}
