//! Submitting, deciding on, reimbursing and deleting an expense.

use super::*;

// --- submit ---

#[test]
fn the_owner_submits_a_draft() {
    Fixture::with(())
        .given(vec![created()])
        .when(submit(owner()))
        .then_expect_events(vec![submitted(false)]);
}

#[test]
fn only_the_owner_submits() {
    Fixture::with(())
        .given(vec![created()])
        .when(submit(admin()))
        .then_expect_error(ExpenseError::NotOwner);
}

#[test]
fn submitting_twice_is_a_conflict() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(submit(owner()))
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Submitted));
}

#[test]
fn a_rejected_expense_is_resubmitted() {
    Fixture::with(())
        .given(vec![created(), submitted(false), rejected()])
        .when(submit(owner()))
        .then_expect_events(vec![submitted(true)]);
}

#[test]
fn a_rejected_expense_can_be_edited_before_resubmitting() {
    Fixture::with(())
        .given(vec![created(), submitted(false), rejected()])
        .when(update(
            owner(),
            ExpenseChanges {
                merchant: Some("Café Central GmbH".into()),
                ..Default::default()
            },
        ))
        .then_expect_events(vec![ExpenseEvent::ExpenseUpdated {
            money: eur("42.50"),
            merchant: "Café Central GmbH".into(),
            category: "meals".into(),
            spent_on: day(20),
            description: Some("Team lunch".into()),
            mileage: None,
            base_amount: Some(eur("42.50")),
            rate: None,
            policy_version: 0,
            violations: Vec::new(),
            updated_at: at(),
        }]);
}

#[test]
fn resubmission_clears_the_earlier_decision() {
    let mut expense = Expense::default();
    for e in [created(), submitted(false), rejected(), submitted(true)] {
        expense.apply(e);
    }
    let s = expense.state.unwrap();
    assert_eq!(s.status, ExpenseStatus::Submitted);
    assert_eq!((s.decided_by, s.decision_reason), (None, None));
    assert_eq!(expense.version, 4);
}

// --- approve / reject ---

#[test]
fn an_approver_approves_a_submitted_expense() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(ExpenseCommand::ApproveExpense {
            ctx: approver(),
            comment: Some(" ok ".into()),
            on_behalf_of: None,
        })
        .then_expect_events(vec![ExpenseEvent::ExpenseApproved {
            approver_id: APPROVER,
            comment: Some("ok".into()),
            step: 1,
            on_behalf_of: None,
            approved_at: at(),
        }]);
}

#[test]
fn an_admin_may_approve_too() {
    let result = Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(approve(admin()))
        .inspect_result();
    assert!(matches!(
        result.as_deref(),
        Ok([ExpenseEvent::ExpenseApproved { .. }])
    ));
}

#[test]
fn an_employee_cannot_approve() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(approve(ctx(Uuid::from_u128(9), Role::Employee)))
        .then_expect_error(ExpenseError::NotAnApprover);
}

#[test]
fn an_auditor_cannot_approve() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(approve(ctx(Uuid::from_u128(9), Role::Auditor)))
        .then_expect_error(ExpenseError::NotAnApprover);
}

#[test]
fn nobody_approves_their_own_expense() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(approve(ctx(OWNER, Role::Admin)))
        .then_expect_error(ExpenseError::OwnExpense);
}

#[test]
fn nobody_rejects_their_own_expense() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(reject(ctx(OWNER, Role::Approver), "no"))
        .then_expect_error(ExpenseError::OwnExpense);
}

#[test]
fn a_draft_cannot_be_approved() {
    Fixture::with(())
        .given(vec![created()])
        .when(approve(approver()))
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Draft));
}

#[test]
fn an_approved_expense_cannot_be_approved_again() {
    Fixture::with(())
        .given(vec![created(), submitted(false), approved()])
        .when(approve(approver()))
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Approved));
}

#[test]
fn an_approver_rejects_with_a_reason() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(reject(approver(), "No receipt"))
        .then_expect_events(vec![rejected()]);
}

#[test]
fn rejecting_needs_a_reason() {
    let result = Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(reject(approver(), "   "))
        .inspect_result();
    expect_invalid_fields(result, &["reason"]);
}

#[test]
fn an_employee_cannot_reject() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(reject(ctx(Uuid::from_u128(9), Role::Employee), "no"))
        .then_expect_error(ExpenseError::NotAnApprover);
}

#[test]
fn a_rejected_expense_cannot_be_rejected_again() {
    Fixture::with(())
        .given(vec![created(), submitted(false), rejected()])
        .when(reject(approver(), "still no"))
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Rejected));
}

#[test]
fn a_decision_checks_the_version() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(approve(Context {
            expected_version: Some(1),
            ..approver()
        }))
        .then_expect_error(ExpenseError::StaleVersion { current: 2 });
}

// --- reimburse ---

#[test]
fn an_admin_reimburses_an_approved_expense() {
    Fixture::with(())
        .given(vec![created(), submitted(false), approved()])
        .when(ExpenseCommand::ReimburseExpense { ctx: admin() })
        .then_expect_events(vec![reimbursed()]);
}

#[test]
fn only_admins_reimburse() {
    Fixture::with(())
        .given(vec![created(), submitted(false), approved()])
        .when(ExpenseCommand::ReimburseExpense { ctx: approver() })
        .then_expect_error(ExpenseError::NotAnAdmin);
}

#[test]
fn an_unapproved_expense_cannot_be_reimbursed() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(ExpenseCommand::ReimburseExpense { ctx: admin() })
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Submitted));
}

#[test]
fn reimbursing_twice_is_a_conflict() {
    Fixture::with(())
        .given(vec![created(), submitted(false), approved(), reimbursed()])
        .when(ExpenseCommand::ReimburseExpense { ctx: admin() })
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Reimbursed));
}

// --- delete ---

#[test]
fn the_owner_deletes_a_draft() {
    Fixture::with(())
        .given(vec![created()])
        .when(ExpenseCommand::DeleteExpense { ctx: owner() })
        .then_expect_events(vec![deleted()]);
}

#[test]
fn only_drafts_are_deleted() {
    Fixture::with(())
        .given(vec![created(), submitted(false)])
        .when(ExpenseCommand::DeleteExpense { ctx: owner() })
        .then_expect_error(ExpenseError::WrongStatus(ExpenseStatus::Submitted));
}

#[test]
fn only_the_owner_deletes() {
    Fixture::with(())
        .given(vec![created()])
        .when(ExpenseCommand::DeleteExpense { ctx: admin() })
        .then_expect_error(ExpenseError::NotOwner);
}

#[test]
fn a_deleted_expense_is_gone() {
    Fixture::with(())
        .given(vec![created(), deleted()])
        .when(submit(owner()))
        .then_expect_error(ExpenseError::NotFound);
}

// --- policy and currency ---

fn violation(rule: &str, level: Level) -> Violation {
    Violation {
        rule: rule.into(),
        level,
        message: format!("breaks {rule}"),
    }
}

fn submit_with(violations: Vec<Violation>, justification: Option<&str>) -> ExpenseCommand {
    ExpenseCommand::SubmitExpense {
        ctx: owner(),
        assessment: Assessment {
            policy_version: 4,
            violations,
        },
        justification: justification.map(str::to_string),
        approval_steps: one_approver(),
    }
}

#[test]
fn a_block_refuses_the_submission_naming_every_violation() {
    let found = vec![
        violation("memo", Level::Warn),
        violation("cap", Level::Block),
    ];
    Fixture::with(())
        .given(vec![created()])
        .when(submit_with(found.clone(), Some("client visit")))
        .then_expect_error(ExpenseError::Blocked(found));
}

#[test]
fn a_warning_needs_a_justification_which_the_submission_records() {
    let found = vec![violation("memo", Level::Warn)];
    Fixture::with(())
        .given(vec![created()])
        .when(submit_with(found.clone(), Some("  ")))
        .then_expect_error(ExpenseError::Unjustified(found.clone()));
    Fixture::with(())
        .given(vec![created()])
        .when(submit_with(found.clone(), Some("client visit")))
        .then_expect_events(vec![ExpenseEvent::ExpenseSubmitted {
            resubmission: false,
            policy_version: 4,
            violations: found,
            justification: Some("client visit".into()),
            approval_steps: one_approver(),
            submitted_at: at(),
        }]);
}

#[test]
fn a_valuation_must_agree_with_its_rate() {
    let yen = Money::parse("1000", Currency::parse("JPY").unwrap()).unwrap();
    let create_in_yen = |base: &str| ExpenseCommand::CreateExpense {
        ctx: owner(),
        details: ExpenseDetails {
            money: yen,
            ..details()
        },
        receipt_id: None,
        today: today(),
        valuation: Valuation {
            base_amount: Some(eur(base)),
            rate: Some(crate::exchange::Rate::Manual {
                per_unit: "0.0057".parse().unwrap(),
            }),
        },
        assessment: Assessment::default(),
    };
    let made = Fixture::with(())
        .given_no_previous_events()
        .when(create_in_yen("5.70"))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        &made[0],
        ExpenseEvent::ExpenseCreated { base_amount: Some(b), .. } if *b == eur("5.70")
    ));
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(create_in_yen("5.71"))
        .inspect_result();
    expect_invalid_fields(result, &["exchange_rate"]);
    // A new amount cannot keep the old valuation.
    let result = Fixture::with(())
        .given(vec![created()])
        .when(ExpenseCommand::UpdateExpense {
            ctx: owner(),
            changes: ExpenseChanges {
                money: Some(eur("50.00")),
                ..ExpenseChanges::default()
            },
            today: today(),
            valuation: None,
            assessment: Assessment::default(),
        })
        .inspect_result();
    expect_invalid_fields(result, &["amount"]);
}

// --- approval chains ---

const MANAGER: Uuid = Uuid::from_u128(20);
const FINANCE: Uuid = Uuid::from_u128(21);
const BOSS: Uuid = Uuid::from_u128(22);

/// A submission whose chain is the owner's manager, then finance, then an admin.
fn submitted_to_three() -> ExpenseEvent {
    let step = |approver, user_id| ApprovalStep { approver, user_id };
    ExpenseEvent::ExpenseSubmitted {
        resubmission: false,
        policy_version: 1,
        violations: Vec::new(),
        justification: None,
        approval_steps: vec![
            step(Approver::Manager, Some(MANAGER)),
            step(Approver::Finance, None),
            step(Approver::Admin, None),
        ],
        submitted_at: at(),
    }
}

fn decide(user_id: Uuid, role: Role, on_behalf_of: Option<(Uuid, Role)>) -> ExpenseCommand {
    ExpenseCommand::ApproveExpense {
        ctx: ctx(user_id, role),
        comment: None,
        on_behalf_of,
    }
}

fn step_approved(step: u32, approver_id: Uuid) -> ExpenseEvent {
    ExpenseEvent::ExpenseStepApproved {
        step,
        approver_id,
        on_behalf_of: None,
        comment: None,
        approved_at: at(),
    }
}

#[test]
fn each_step_is_taken_in_turn_and_the_last_approves() {
    let given = vec![created(), submitted_to_three()];
    Fixture::with(())
        .given(given.clone())
        .when(decide(FINANCE, Role::Finance, None))
        .then_expect_error(ExpenseError::NotYourStep("the submitter's manager".into()));
    Fixture::with(())
        .given(given.clone())
        .when(decide(MANAGER, Role::Employee, None))
        .then_expect_events(vec![step_approved(1, MANAGER)]);
    let mut after_two = given.clone();
    after_two.extend([step_approved(1, MANAGER), step_approved(2, FINANCE)]);
    Fixture::with(())
        .given(after_two.clone())
        .when(decide(BOSS, Role::Admin, None))
        .then_expect_events(vec![ExpenseEvent::ExpenseApproved {
            approver_id: BOSS,
            comment: None,
            step: 3,
            on_behalf_of: None,
            approved_at: at(),
        }]);
    Fixture::with(())
        .given(after_two)
        .when(ExpenseCommand::RejectExpense {
            ctx: ctx(BOSS, Role::Admin),
            reason: "too much".into(),
            on_behalf_of: None,
        })
        .then_expect_events(vec![ExpenseEvent::ExpenseRejected {
            approver_id: BOSS,
            reason: "too much".into(),
            step: 3,
            on_behalf_of: None,
            rejected_at: at(),
        }]);
}

#[test]
fn a_delegate_decides_for_the_absent_and_nobody_decides_twice() {
    let given = vec![created(), submitted_to_three()];
    let delegate = Uuid::from_u128(30);
    Fixture::with(())
        .given(given.clone())
        .when(decide(
            delegate,
            Role::Employee,
            Some((MANAGER, Role::Employee)),
        ))
        .then_expect_events(vec![ExpenseEvent::ExpenseStepApproved {
            step: 1,
            approver_id: delegate,
            on_behalf_of: Some(MANAGER),
            comment: None,
            approved_at: at(),
        }]);
    // The manager, who is also in finance, may not take the finance step after theirs.
    let mut after_one = given.clone();
    after_one.push(step_approved(1, MANAGER));
    Fixture::with(())
        .given(after_one)
        .when(decide(MANAGER, Role::Finance, None))
        .then_expect_error(ExpenseError::DecidedBefore);
    // Nobody decides for the owner.
    Fixture::with(())
        .given(given)
        .when(decide(MANAGER, Role::Employee, Some((OWNER, Role::Admin))))
        .then_expect_error(ExpenseError::NotYourStep("the submitter's manager".into()));
}
