//! Read models fed by events written straight through the event store.

// Scenarios are plain async functions run by generated #[tokio::test]s; in them a panic
// is how a failure is reported.
#![allow(clippy::unwrap_used)]

use expensewise_infra::event_store::Scope;
use std::collections::BTreeMap;

use chrono::Utc;
use expensewise_domain::receipt::{Extraction, ReceiptCommand, ScanStatus, Upload};
use expensewise_domain::{Actor, Currency, Money, Receipt};
use expensewise_infra::db::Tx;
use expensewise_infra::event_store::read_after;
use expensewise_infra::on_both_backends;
use expensewise_infra::testing::{
    event_metadata, new_employee, register_directly, stored_event_ids, Backend, TestDatabase,
};
use expensewise_infra::{EventStore, GlobalPosition, RecordedEvent};
use expensewise_projections::receipts::{self, ReceiptsProjection};
use expensewise_projections::runner::apply_batch;
use expensewise_projections::testing::assert_read_models_equal_a_rebuild;
use expensewise_projections::{rebuild, Projection};
use uuid::Uuid;

async fn upload(store: &EventStore, actor: &Actor, bytes: &str) -> Uuid {
    let id = Uuid::new_v4();
    let command = ReceiptCommand::RecordUpload {
        actor: *actor,
        upload: Upload {
            content_type: "image/png".into(),
            size: bytes.len() as u64,
            sha256: bytes.repeat(32),
            storage_key: format!("{}/{id}", actor.organization_id),
            storage_version: None,
            duplicate_of: None,
            expense_id: None,
            create_expense: true,
            fingerprint: None,
            note: None,
        },
        at: Utc::now(),
    };
    store
        .execute::<Receipt>(
            &Scope::none(),
            &id.to_string(),
            command,
            &event_metadata(actor.organization_id, Some(actor.user_id)),
        )
        .await
        .unwrap();
    id
}

async fn receipts_follow_uploads_and_scans_and_ignore_repeats(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let actor = new_employee();
    // Stand-ins for the digests of three different files.
    let scanned = upload(&store, &actor, "aa").await;
    let extraction = Extraction {
        merchant: Some("Café Nero".into()),
        date: Some(Utc::now().date_naive()),
        total: Some(Money::parse("9.80", Currency::parse("EUR").unwrap()).unwrap()),
        tax: Some("1.56".into()),
        text: "CAFÉ NERO\nTOTAL 9.80".into(),
        confidence: BTreeMap::from([("total".to_string(), 0.9)]),
    };
    store
        .execute::<Receipt>(
            &Scope::none(),
            &scanned.to_string(),
            ReceiptCommand::RecordScan {
                extraction: extraction.clone(),
                at: Utc::now(),
            },
            &event_metadata(actor.organization_id, Some(actor.user_id)),
        )
        .await
        .unwrap();
    let failed = upload(&store, &actor, "bb").await;
    store
        .execute::<Receipt>(
            &Scope::none(),
            &failed.to_string(),
            ReceiptCommand::RecordScanFailure {
                reason: "the file is not a readable image".into(),
                at: Utc::now(),
            },
            &event_metadata(actor.organization_id, Some(actor.user_id)),
        )
        .await
        .unwrap();
    let pending = upload(&store, &actor, "cc").await;

    let projection = ReceiptsProjection::live();
    // Other tests' transactions on the cluster can hold the tail back for a moment:
    // wait until it hands out every event of this database.
    stored_event_ids(&db).await;
    let mut position = GlobalPosition::default();
    while let Some(next) = apply_batch(&db, store.vault(), &projection, position)
        .await
        .unwrap()
    {
        position = next;
    }

    let (found, stored) = receipts::get(&db, actor.organization_id, scanned)
        .await
        .unwrap();
    let (state, version) = found.expect("the scanned receipt");
    assert_eq!((version, stored), (2, 2), "the copy is as new as the store");
    assert_eq!(state.status, ScanStatus::Scanned);
    assert_eq!(state.extraction, Some(extraction));
    let (state, _) = receipts::get(&db, actor.organization_id, failed)
        .await
        .unwrap()
        .0
        .expect("the failed receipt");
    assert_eq!(state.status, ScanStatus::Failed);
    assert_eq!(
        state.failure_reason.as_deref(),
        Some("the file is not a readable image")
    );
    let (state, version) = receipts::get(&db, actor.organization_id, pending)
        .await
        .unwrap()
        .0
        .expect("the pending receipt");
    assert_eq!((state.status, version), (ScanStatus::Pending, 1));
    assert_eq!(
        receipts::get(&db, Uuid::new_v4(), scanned).await.unwrap(),
        (None, 2),
        "another organization does not see the receipt"
    );

    // Every event delivered once more changes nothing.
    let before = rebuild::checksum(&db, receipts::TABLE).await.unwrap();
    let all = read_after(&db, GlobalPosition::default(), 1000)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    projection.apply(&mut tx, &all).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        rebuild::checksum(&db, receipts::TABLE).await.unwrap(),
        before
    );
    assert!(before.starts_with("3:"), "{before}");
    assert_eq!(
        assert_read_models_equal_a_rebuild(&db, store.vault()).await,
        3
    );
    db.close().await;
    database.drop_database().await;
}

on_both_backends!(
    receipts_follow_uploads_and_scans_and_ignore_repeats,
    a_projection_is_handed_only_the_aggregates_it_reads
);

/// A read model of receipts alone that keeps what it is handed.
#[derive(Default)]
struct ReceiptsOnly {
    handed: std::sync::Mutex<Vec<RecordedEvent>>,
}

#[async_trait::async_trait]
impl Projection for ReceiptsOnly {
    fn name(&self) -> &'static str {
        "receipts-only"
    }

    fn table(&self) -> &str {
        "none"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[expensewise_domain::receipt::AGGREGATE_TYPE]
    }

    async fn apply(&self, _tx: &mut Tx, events: &[RecordedEvent]) -> anyhow::Result<()> {
        self.handed.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// A projection is handed the events of the aggregates it reads and none of the others'
/// (whose personal fields are then never opened for it); its checkpoint still moves past
/// them all.
async fn a_projection_is_handed_only_the_aggregates_it_reads(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    register_directly(&store).await;
    let actor = new_employee();
    let first = upload(&store, &actor, "aa").await;
    register_directly(&store).await;
    let second = upload(&store, &actor, "bb").await;
    let stored = stored_event_ids(&db).await;

    let projection = ReceiptsOnly::default();
    let mut position = GlobalPosition::default();
    while let Some(next) = apply_batch(&db, store.vault(), &projection, position)
        .await
        .unwrap()
    {
        position = next;
    }
    let all = read_after(&db, GlobalPosition::default(), 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), stored.len());
    assert_eq!(position, all.last().unwrap().global, "past every event");
    let handed = projection.handed.lock().unwrap();
    let ids: Vec<String> = handed.iter().map(|e| e.aggregate_id.clone()).collect();
    assert_eq!(ids, [first.to_string(), second.to_string()]);
}
