use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::actor::Role;
use crate::money::Currency;

type Fixture = TestFramework<Receipt>;

const ORG: Uuid = Uuid::from_u128(100);
const UPLOADER: Uuid = Uuid::from_u128(1);
const EXPENSE: Uuid = Uuid::from_u128(70);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn actor(user: Uuid, role: Role) -> Actor {
    Actor {
        user_id: user,
        organization_id: ORG,
        role,
    }
}

fn upload() -> Upload {
    Upload {
        content_type: "image/png".into(),
        size: 1234,
        sha256: "a".repeat(64),
        storage_key: "org/receipt".into(),
        storage_version: Some("v1".into()),
        duplicate_of: None,
        expense_id: None,
        create_expense: true,
        fingerprint: Some(PRINT),
        note: None,
    }
}

const PRINT: super::fingerprint::Fingerprint = super::fingerprint::Fingerprint(0x1234);

fn uploaded() -> ReceiptEvent {
    ReceiptEvent::ReceiptUploaded {
        organization_id: ORG,
        uploader_id: UPLOADER,
        content_type: "image/png".into(),
        size: 1234,
        sha256: "a".repeat(64),
        storage_key: "org/receipt".into(),
        storage_version: Some("v1".into()),
        duplicate_of: None,
        expense_id: None,
        create_expense: true,
        fingerprint: Some(PRINT),
        note: None,
        uploaded_at: at(),
    }
}

fn extraction() -> Extraction {
    Extraction {
        merchant: Some("Café Central".into()),
        date: NaiveDate::from_ymd_opt(2026, 2, 20),
        total: Some(Money::parse("42.50", Currency::parse("EUR").unwrap()).unwrap()),
        tax: Some("6.79".into()),
        text: "CAFÉ CENTRAL\nTOTAL 42.50".into(),
        confidence: BTreeMap::from([("total".to_string(), 0.9)]),
    }
}

fn scanned() -> ReceiptEvent {
    ReceiptEvent::ReceiptScanned {
        extraction: extraction(),
        scanned_at: at(),
    }
}

#[test]
fn an_upload_is_recorded() {
    Fixture::with(())
        .given_no_previous_events()
        .when(ReceiptCommand::RecordUpload {
            actor: actor(UPLOADER, Role::Employee),
            upload: upload(),
            at: at(),
        })
        .then_expect_events(vec![uploaded()]);
}

#[test]
fn an_upload_is_recorded_once() {
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::RecordUpload {
            actor: actor(UPLOADER, Role::Employee),
            upload: upload(),
            at: at(),
        })
        .then_expect_error(ReceiptError::AlreadyExists);
}

#[test]
fn auditors_cannot_upload() {
    Fixture::with(())
        .given_no_previous_events()
        .when(ReceiptCommand::RecordUpload {
            actor: actor(UPLOADER, Role::Auditor),
            upload: upload(),
            at: at(),
        })
        .then_expect_error(ReceiptError::AuditorsCannotUpload);
}

#[test]
fn an_upload_with_bad_facts_names_every_problem() {
    let result = Fixture::with(())
        .given_no_previous_events()
        .when(ReceiptCommand::RecordUpload {
            actor: actor(UPLOADER, Role::Employee),
            upload: Upload {
                content_type: "text/plain".into(),
                size: 0,
                sha256: "XYZ".into(),
                storage_key: String::new(),
                expense_id: Some(EXPENSE),
                ..upload()
            },
            at: at(),
        })
        .inspect_result();
    let Err(ReceiptError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["file", "file", "sha256", "storage_key", "create_expense"]
    );
}

#[test]
fn the_uploader_attaches_the_receipt_to_an_expense() {
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::AttachToExpense {
            actor: actor(UPLOADER, Role::Employee),
            expense_id: EXPENSE,
            at: at(),
        })
        .then_expect_events(vec![ReceiptEvent::ReceiptAttached {
            expense_id: EXPENSE,
            attached_at: at(),
        }]);
}

#[test]
fn attaching_to_the_same_expense_again_records_nothing() {
    Fixture::with(())
        .given(vec![
            uploaded(),
            ReceiptEvent::ReceiptAttached {
                expense_id: EXPENSE,
                attached_at: at(),
            },
        ])
        .when(ReceiptCommand::AttachToExpense {
            actor: actor(UPLOADER, Role::Employee),
            expense_id: EXPENSE,
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_receipt_belongs_to_one_expense() {
    Fixture::with(())
        .given(vec![
            uploaded(),
            ReceiptEvent::ReceiptAttached {
                expense_id: EXPENSE,
                attached_at: at(),
            },
        ])
        .when(ReceiptCommand::AttachToExpense {
            actor: actor(UPLOADER, Role::Employee),
            expense_id: Uuid::from_u128(71),
            at: at(),
        })
        .then_expect_error(ReceiptError::AttachedElsewhere);
}

#[test]
fn only_the_uploader_attaches() {
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::AttachToExpense {
            actor: actor(Uuid::from_u128(2), Role::Admin),
            expense_id: EXPENSE,
            at: at(),
        })
        .then_expect_error(ReceiptError::NotUploader);
}

#[test]
fn a_receipt_of_another_organization_is_not_found() {
    let mut stranger = actor(UPLOADER, Role::Employee);
    stranger.organization_id = Uuid::from_u128(999);
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::AttachToExpense {
            actor: stranger,
            expense_id: EXPENSE,
            at: at(),
        })
        .then_expect_error(ReceiptError::NotFound);
}

#[test]
fn a_scan_is_recorded_once_however_often_it_arrives() {
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::RecordScan {
            extraction: extraction(),
            at: at(),
        })
        .then_expect_events(vec![scanned()]);
    Fixture::with(())
        .given(vec![uploaded(), scanned()])
        .when(ReceiptCommand::RecordScan {
            extraction: extraction(),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_scan_of_a_missing_receipt_is_not_found() {
    Fixture::with(())
        .given_no_previous_events()
        .when(ReceiptCommand::RecordScan {
            extraction: extraction(),
            at: at(),
        })
        .then_expect_error(ReceiptError::NotFound);
}

#[test]
fn a_failed_scan_is_recorded_with_its_reason() {
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::RecordScanFailure {
            reason: " The image is too large to read safely ".into(),
            at: at(),
        })
        .then_expect_events(vec![ReceiptEvent::ReceiptScanFailed {
            reason: "The image is too large to read safely".into(),
            failed_at: at(),
        }]);
}

#[test]
fn a_failure_needs_a_reason() {
    let result = Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::RecordScanFailure {
            reason: "  ".into(),
            at: at(),
        })
        .inspect_result();
    assert!(
        matches!(result, Err(ReceiptError::Invalid(_))),
        "{result:?}"
    );
}

#[test]
fn a_failure_after_a_scan_records_nothing() {
    Fixture::with(())
        .given(vec![uploaded(), scanned()])
        .when(ReceiptCommand::RecordScanFailure {
            reason: "late".into(),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn file_types_are_told_by_their_bytes() {
    assert_eq!(
        sniff_content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        Some("image/png")
    );
    assert_eq!(
        sniff_content_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
        Some("image/jpeg")
    );
    assert_eq!(
        sniff_content_type(b"RIFF\x24\0\0\0WEBPVP8 "),
        Some("image/webp")
    );
    assert_eq!(sniff_content_type(b"II*\0\x08\0\0\0"), Some("image/tiff"));
    assert_eq!(sniff_content_type(b"MM\0*\0\0\0\x08"), Some("image/tiff"));
    assert_eq!(
        sniff_content_type(b"%PDF-1.7\n%\xe2"),
        Some("application/pdf")
    );
    // A WAV file is RIFF too; text, HTML, GIF and nothing at all are not receipts.
    assert_eq!(sniff_content_type(b"RIFF\x24\0\0\0WAVEfmt "), None);
    assert_eq!(sniff_content_type(b"TOTAL 12.30 EUR"), None);
    assert_eq!(sniff_content_type(b"<html><body>"), None);
    assert_eq!(sniff_content_type(b"GIF89a"), None);
    assert_eq!(sniff_content_type(b""), None);
    assert_eq!(sniff_content_type(b"\x89PN"), None);
}

fn sent_to_review() -> ReceiptEvent {
    ReceiptEvent::ReceiptSentToReview {
        extraction: extraction(),
        doubts: vec!["date".into()],
        scanned_at: at(),
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

fn fields() -> ReviewedFields {
    ReviewedFields {
        merchant: " Café Central ".into(),
        date: NaiveDate::from_ymd_opt(2026, 2, 21).unwrap(),
        total: Money::parse("42.50", Currency::parse("EUR").unwrap()).unwrap(),
    }
}

fn review(user: Uuid, role: Role) -> ReceiptCommand {
    review_of(user, role, fields())
}

fn review_of(user: Uuid, role: Role, fields: ReviewedFields) -> ReceiptCommand {
    ReceiptCommand::Review {
        actor: actor(user, role),
        fields,
        today: today(),
        at: at(),
    }
}

fn reviewed(reviewer: Uuid) -> ReceiptEvent {
    ReceiptEvent::ReceiptReviewed {
        reviewer_id: reviewer,
        merchant: "Café Central".into(),
        date: NaiveDate::from_ymd_opt(2026, 2, 21).unwrap(),
        total: fields().total,
        reviewed_at: at(),
    }
}

#[test]
fn an_unsure_reading_waits_for_a_person_and_makes_no_fields_settled() {
    let mut receipt = Receipt::default();
    receipt.apply(uploaded());
    receipt.apply(sent_to_review());
    let state = receipt.state.unwrap();
    assert_eq!(state.status, ScanStatus::NeedsReview);
    assert_eq!(state.doubts, ["date"]);
    assert!(!state.settled());
}

#[test]
fn the_uploader_or_an_approver_reviews_and_their_values_stand() {
    for (user, role) in [
        (UPLOADER, Role::Employee),
        (Uuid::from_u128(2), Role::Approver),
    ] {
        Fixture::with(())
            .given(vec![uploaded(), sent_to_review()])
            .when(review(user, role))
            .then_expect_events(vec![reviewed(user)]);
    }
    let mut receipt = Receipt::default();
    for event in [uploaded(), sent_to_review(), reviewed(UPLOADER)] {
        receipt.apply(event);
    }
    let state = receipt.state.unwrap();
    assert_eq!(state.status, ScanStatus::Reviewed);
    assert!(state.settled());
    assert_eq!(state.fields().date, NaiveDate::from_ymd_opt(2026, 2, 21));
}

#[test]
fn another_employee_or_an_auditor_does_not_review() {
    for role in [Role::Employee, Role::Auditor] {
        Fixture::with(())
            .given(vec![uploaded(), sent_to_review()])
            .when(review(Uuid::from_u128(3), role))
            .then_expect_error(ReceiptError::NotReviewer);
    }
}

#[test]
fn a_review_is_taken_once_and_only_of_receipts_in_doubt() {
    Fixture::with(())
        .given(vec![uploaded(), sent_to_review(), reviewed(UPLOADER)])
        .when(review(UPLOADER, Role::Employee))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![uploaded(), sent_to_review(), reviewed(UPLOADER)])
        .when(review_of(
            UPLOADER,
            Role::Employee,
            ReviewedFields {
                merchant: "Other".into(),
                ..fields()
            },
        ))
        .then_expect_error(ReceiptError::AlreadyReviewed);
    Fixture::with(())
        .given(vec![uploaded(), scanned()])
        .when(review(UPLOADER, Role::Employee))
        .then_expect_error(ReceiptError::NotAwaitingReview("scanned"));
    Fixture::with(())
        .given(vec![uploaded()])
        .when(review(UPLOADER, Role::Employee))
        .then_expect_error(ReceiptError::NotAwaitingReview("pending"));
}

#[test]
fn a_review_with_a_future_date_or_no_merchant_names_both() {
    let result = Fixture::with(())
        .given(vec![uploaded(), sent_to_review()])
        .when(review_of(
            UPLOADER,
            Role::Employee,
            ReviewedFields {
                merchant: "  ".into(),
                date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
                ..fields()
            },
        ))
        .inspect_result();
    let Err(ReceiptError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(named, ["merchant", "date"]);
}

#[test]
fn a_failed_or_unsure_receipt_is_read_again_but_a_reviewed_one_stands() {
    let failed = ReceiptEvent::ReceiptScanFailed {
        reason: "blurred".into(),
        failed_at: at(),
    };
    for given in [failed, sent_to_review(), scanned()] {
        Fixture::with(())
            .given(vec![uploaded(), given])
            .when(ReceiptCommand::RequestRescan {
                actor: None,
                at: at(),
            })
            .then_expect_events(vec![ReceiptEvent::ReceiptRescanRequested {
                requested_by: None,
                requested_at: at(),
            }]);
    }
    Fixture::with(())
        .given(vec![uploaded()])
        .when(ReceiptCommand::RequestRescan {
            actor: Some(actor(UPLOADER, Role::Employee)),
            at: at(),
        })
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![uploaded(), sent_to_review(), reviewed(UPLOADER)])
        .when(ReceiptCommand::RequestRescan {
            actor: None,
            at: at(),
        })
        .then_expect_error(ReceiptError::ReviewedStands);
    Fixture::with(())
        .given(vec![uploaded(), scanned()])
        .when(ReceiptCommand::RequestRescan {
            actor: Some(actor(Uuid::from_u128(3), Role::Employee)),
            at: at(),
        })
        .then_expect_error(ReceiptError::NotReviewer);
}

#[test]
fn a_rescan_waits_for_ocr_and_its_new_reading_replaces_the_old() {
    let mut receipt = Receipt::default();
    let rescan = ReceiptEvent::ReceiptRescanRequested {
        requested_by: Some(UPLOADER),
        requested_at: at(),
    };
    for event in [uploaded(), sent_to_review(), rescan] {
        receipt.apply(event);
    }
    assert_eq!(receipt.state.as_ref().unwrap().status, ScanStatus::Pending);
    receipt.apply(scanned());
    let state = receipt.state.unwrap();
    assert_eq!(state.status, ScanStatus::Scanned);
    assert!(state.doubts.is_empty());
}

#[test]
fn admins_and_auditors_hold_a_receipt_with_a_reason_and_release_it() {
    let keeper = Uuid::from_u128(77);
    let hold = |role: Role, on: bool, reason: Option<&str>| ReceiptCommand::SetLegalHold {
        actor: actor(keeper, role),
        on,
        reason: reason.map(str::to_string),
        at: at(),
    };
    let held = ReceiptEvent::ReceiptLegalHoldSet {
        on: true,
        reason: Some("tax audit".into()),
        set_by: keeper,
        set_at: at(),
    };
    Fixture::with(())
        .given(vec![uploaded()])
        .when(hold(Role::Auditor, true, Some("tax audit")))
        .then_expect_events(vec![held.clone()]);
    Fixture::with(())
        .given(vec![uploaded()])
        .when(hold(Role::Approver, true, Some("tax audit")))
        .then_expect_error(ReceiptError::NotKeeper);
    Fixture::with(())
        .given(vec![uploaded()])
        .when(hold(Role::Admin, true, Some("  ")))
        .then_expect_error(ReceiptError::Invalid(vec![FieldError::new(
            "reason",
            "say why the receipt is held",
        )]));
    Fixture::with(())
        .given(vec![uploaded(), held.clone()])
        .when(hold(Role::Admin, true, Some("again")))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![uploaded(), held])
        .when(hold(Role::Admin, false, None))
        .then_expect_events(vec![ReceiptEvent::ReceiptLegalHoldSet {
            on: false,
            reason: None,
            set_by: keeper,
            set_at: at(),
        }]);
}
