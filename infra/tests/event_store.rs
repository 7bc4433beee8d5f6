//! The event store below the API: global order, upcasting on load, append-only rows.

// Scenarios are plain async functions run by generated #[tokio::test]s; in them a panic
// is how a failure is reported.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use expensewise_domain::organization::OrganizationCommand;
use expensewise_domain::{Currency, Organization};
use expensewise_infra::event_store::read_after;
use expensewise_infra::event_store::Scope;
use expensewise_infra::on_both_backends;
use expensewise_infra::testing::{
    acting_now, draft_expense, event_metadata, new_employee, register_directly as register,
    store_v1_registration, Backend, TestDatabase,
};
use expensewise_infra::{on_database, on_writer, Database, GlobalPosition};
use uuid::Uuid;

async fn all_after(db: &Database, from: GlobalPosition) -> Vec<(GlobalPosition, String)> {
    read_after(db, from, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.global, e.aggregate_id))
        .collect()
}

/// Reads until at least `count` events came back. Transaction ids are shared by the whole
/// PostgreSQL cluster, so another test's open transaction may hold the tail back for a
/// moment; the tail waits for it, which is the point.
async fn at_least(
    db: &Database,
    from: GlobalPosition,
    count: usize,
) -> Vec<(GlobalPosition, String)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = all_after(db, from).await;
        if seen.len() >= count || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A writer that took its position early but commits late must not be skipped by a
/// tailer that has already moved past later, faster writers.
#[tokio::test]
async fn the_tailer_never_skips_a_transaction_that_commits_late() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let Database::Postgres(pool) = &db else {
        unreachable!("a PostgreSQL test database")
    };

    let first = register(&store).await;
    // A slow writer: its row has a position, but its transaction stays open.
    let mut slow = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('probe', 'slow-writer', 1, 'Probe', '1.0', '{}', '{}')",
    )
    .execute(&mut *slow)
    .await
    .unwrap();
    let later_a = register(&store).await;
    let later_b = register(&store).await;

    let seen = at_least(&db, GlobalPosition::default(), 1).await;
    // Give the later writers every chance to show up, which they must not.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(seen, all_after(&db, GlobalPosition::default()).await);
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids,
        [first.to_string()],
        "nothing past the in-flight writer is handed out"
    );
    let cursor = seen.last().unwrap().0;

    // What a naive "position > last seen" tailer would have done: it sees the later
    // writers, moves its cursor past the slow writer's position, and loses it.
    let naive: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap();
    let naive_cursor = *naive.last().unwrap();

    slow.commit().await.unwrap();
    let rest = at_least(&db, cursor, 3).await;
    let ids: Vec<&str> = rest.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "slow-writer",
            later_a.to_string().as_str(),
            later_b.to_string().as_str()
        ]
    );
    assert!(
        rest.windows(2).all(|w| w[0].0 < w[1].0),
        "handed out in global order"
    );

    let slow_position = rest[0].0.position;
    assert!(
        slow_position < naive_cursor,
        "the naive tailer would have skipped position {slow_position}"
    );
    assert!(all_after(&db, rest.last().unwrap().0).await.is_empty());
    db.close().await;
    database.drop_database().await;
}

async fn events_are_read_back_in_commit_order(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let mut written = Vec::new();
    for _ in 0..5 {
        written.push(register(&store).await.to_string());
    }
    let mut read = Vec::new();
    let mut cursor = GlobalPosition::default();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while read.len() < written.len() && tokio::time::Instant::now() < deadline {
        let page = read_after(&db, cursor, 2).await.unwrap();
        match page.last() {
            Some(last) => cursor = last.global,
            None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
        read.extend(page.into_iter().map(|e| e.aggregate_id));
    }
    assert_eq!(read, written);
    db.close().await;
    database.drop_database().await;
}

async fn an_old_event_version_is_upcast_when_loaded(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let org = store_v1_registration(&db).await;
    let store = database.event_store(&db).await;
    let loaded: Organization = store.load(&org.to_string()).await.unwrap();
    assert!(loaded.exists());
    assert_eq!(loaded.name(), "Old Corp");
    assert_eq!(
        loaded.default_currency().map(|c| c.to_string()),
        Some("EUR".to_string())
    );
    db.close().await;
    database.drop_database().await;
}

async fn stored_events_cannot_be_changed_or_removed(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let org = register(&store).await.to_string();
    let (update, delete) = on_writer!(&db, |pool| {
        let update = sqlx::query("UPDATE events SET event_type = 'Forged' WHERE aggregate_id = $1")
            .bind(&org)
            .execute(pool)
            .await;
        let delete = sqlx::query("DELETE FROM events WHERE aggregate_id = $1")
            .bind(&org)
            .execute(pool)
            .await;
        (update.is_err(), delete.is_err())
    });
    assert!(update && delete, "UPDATE and DELETE on events are refused");
    let loaded: Organization = store.load(&org).await.unwrap();
    assert_eq!(loaded.version(), 1);
    db.close().await;
    database.drop_database().await;
}

async fn organizations_load_the_same_from_snapshots(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let org = register(&store).await;
    let loaded: Organization = store.load(&org.to_string()).await.unwrap();
    let (admin, _) = loaded
        .members()
        .next()
        .map(|(id, m)| (*id, m.clone()))
        .unwrap();
    let users = 2 * expensewise_infra::event_store::ORGANIZATION_SNAPSHOT_EVERY + 5;
    for i in 0..users {
        let command = OrganizationCommand::AddUser {
            actor_id: admin,
            user: expensewise_domain::organization::NewUser {
                user_id: Uuid::new_v4(),
                name: format!("User {i}"),
                email: format!("user{i}@acme.test"),
            },
            role: expensewise_domain::Role::Employee,
            at: Utc::now(),
        };
        store
            .execute::<Organization>(
                &Scope::none(),
                &org.to_string(),
                command,
                &event_metadata(org, None),
            )
            .await
            .unwrap();
    }
    let loaded: Organization = store.load(&org.to_string()).await.unwrap();
    assert_eq!(loaded.members().count(), users + 1);
    assert_eq!(loaded.version() as usize, users + 1);
    let snapshots = on_database!(&db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM snapshots WHERE aggregate_id = $1")
            .bind(org.to_string())
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(snapshots, 1, "one snapshot row, kept up to date");
    // Folding every stored event, without the snapshot, gives the same organization.
    let events =
        expensewise_infra::event_store::aggregate_events(&db, "organization", &org.to_string())
            .await
            .unwrap();
    assert_eq!(events.len(), users + 1);
    let mut replayed = Organization::default();
    for event in store.vault().open_all(events).await.unwrap() {
        cqrs_es::Aggregate::apply(
            &mut replayed,
            serde_json::from_value((*event.payload).clone()).unwrap(),
        );
    }
    assert_eq!(replayed, loaded);
    db.close().await;
    database.drop_database().await;
}

async fn long_lived_expenses_load_the_same_from_snapshots(backend: Backend) {
    use expensewise_domain::expense::{Assessment, ExpenseChanges, ExpenseCommand, Valuation};
    use expensewise_domain::{Expense, Money};
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    let actor = new_employee();
    let eur = Currency::parse("EUR").unwrap();
    let id = Uuid::new_v4().to_string();
    let today = Utc::now().date_naive();
    let create = draft_expense(actor, "1.00", "Kiosk");
    let meta = event_metadata(actor.organization_id, None);
    store
        .execute::<Expense>(&Scope::none(), &id, create, &meta)
        .await
        .unwrap();
    let edits = 2 * expensewise_infra::event_store::EXPENSE_SNAPSHOT_EVERY + 7;
    for n in 0..edits {
        let money = Money::parse(&format!("{}.00", n + 2), eur).unwrap();
        let edit = ExpenseCommand::UpdateExpense {
            ctx: acting_now(actor),
            changes: ExpenseChanges {
                money: Some(money),
                ..Default::default()
            },
            today,
            valuation: Some(Valuation {
                base_amount: Some(money),
                rate: None,
            }),
            assessment: Assessment::default(),
        };
        let committed = store
            .execute::<Expense>(&Scope::none(), &id, edit, &meta)
            .await
            .unwrap();
        assert_eq!(committed.aggregate.version as usize, n + 2);
    }
    let loaded: Expense = store.load(&id).await.unwrap();
    let mut replayed = Expense::default();
    for event in expensewise_infra::event_store::aggregate_events(&db, "expense", &id)
        .await
        .unwrap()
    {
        cqrs_es::Aggregate::apply(
            &mut replayed,
            serde_json::from_value((*event.payload).clone()).unwrap(),
        );
    }
    assert_eq!(loaded, replayed);
    assert_eq!(loaded.version as usize, edits + 1);
    // One snapshot row, rewritten at each multiple of the snapshot size.
    let snapshot = on_database!(&db, |pool| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT last_sequence, current_snapshot FROM snapshots WHERE aggregate_id = $1",
        )
        .bind(&id)
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let every = expensewise_infra::event_store::EXPENSE_SNAPSHOT_EVERY as i64;
    assert_eq!(snapshot, [(2 * every, 2)]);
    db.close().await;
    database.drop_database().await;
}

/// A request that read one aggregate from memory and appends to another: that append
/// cannot vouch for the first, so the first is checked before it. Changed meanwhile by
/// another replica, nothing is appended and the request is to run again. (Only
/// PostgreSQL remembers aggregates.)
#[tokio::test]
async fn an_append_elsewhere_first_checks_what_was_read_from_memory() {
    use expensewise_domain::expense::{Assessment, ExpenseChanges, ExpenseCommand};
    use expensewise_domain::Expense;
    use expensewise_infra::event_store::{aggregate_version, CommandError};
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let this_replica = database.event_store(&db).await;
    let other_replica = database.event_store(&db).await;
    let actor = new_employee();
    let today = Utc::now().date_naive();
    let create = || draft_expense(actor, "1.00", "Kiosk");
    let meta = event_metadata(actor.organization_id, None);
    let read = Uuid::new_v4().to_string();
    let written = Uuid::new_v4().to_string();
    this_replica
        .execute::<Expense>(&Scope::none(), &read, create(), &meta)
        .await
        .unwrap();
    let rename = ExpenseCommand::UpdateExpense {
        ctx: acting_now(actor),
        changes: ExpenseChanges {
            merchant: Some("Elsewhere".into()),
            ..ExpenseChanges::default()
        },
        today,
        valuation: None,
        assessment: Assessment::default(),
    };
    other_replica
        .execute::<Expense>(&Scope::none(), &read, rename, &meta)
        .await
        .unwrap();

    let scope = Scope::optimistic();
    let loaded = this_replica
        .load_for_command::<Expense>(&scope, &read)
        .await
        .unwrap();
    assert_eq!(
        loaded.aggregate().visible_to(&actor).unwrap().merchant,
        "Kiosk",
        "decided on the copy in memory, which is out of date"
    );
    let appended = this_replica
        .execute_new::<Expense>(&scope, &written, create(), &meta)
        .await;
    assert!(
        matches!(appended, Err(CommandError::Stale)),
        "{:?}",
        appended.map(|c| c.appended)
    );
    assert_eq!(
        aggregate_version(&db, expensewise_domain::expense::AGGREGATE_TYPE, &written)
            .await
            .unwrap(),
        0,
        "nothing appended"
    );
    assert!(!this_replica.settle(scope).await.unwrap(), "run it again");

    // Run again outside the scope, it reads afresh.
    let again = Scope::optimistic();
    let loaded = this_replica
        .load_for_command::<Expense>(&again, &read)
        .await
        .unwrap();
    assert_eq!(
        loaded.aggregate().visible_to(&actor).unwrap().merchant,
        "Elsewhere"
    );
    this_replica
        .execute_new::<Expense>(&again, &written, create(), &meta)
        .await
        .unwrap();
    assert!(this_replica.settle(again).await.unwrap());
    db.close().await;
}

/// Consumers reading through one shared tail, each from its own place and in batches of
/// its own size, see what reading the store itself shows: every event once, in order —
/// whether the tail remembers the events, or they are behind what it remembers, or
/// ahead of it.
async fn consumers_sharing_a_tail_read_what_the_store_holds(backend: Backend) {
    use expensewise_infra::event_store::Tail;
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let store = database.event_store(&db).await;
    for _ in 0..12 {
        register(&store).await;
    }
    let stored = at_least(&db, GlobalPosition::default(), 12).await;
    let tail = Tail::remembering(db.clone(), 8);
    // Three consumers: from the start, from the middle, and (later) from the start again
    // once the tail has moved past what it can remember.
    let mut places = [
        (GlobalPosition::default(), 3usize, Vec::new()),
        (stored[5].0, 2, Vec::new()),
    ];
    register(&store).await;
    register(&store).await;
    let stored = at_least(&db, GlobalPosition::default(), 14).await;
    assert_eq!(stored.len(), 14);
    let head = stored[13].0;
    // The tail, like the store, may answer "nothing yet" while other transactions on the
    // cluster are open: read until both are at the head.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while places.iter().any(|(at, _, _)| *at < head) {
        assert!(tokio::time::Instant::now() < deadline, "the tail stalled");
        for (at, batch, seen) in places.iter_mut() {
            for event in tail.read_after(*at, *batch).await.unwrap() {
                assert!(event.global > *at, "in order");
                *at = event.global;
                seen.push((event.global, event.aggregate_id));
            }
        }
    }
    assert_eq!(places[0].2, stored);
    assert_eq!(places[1].2, stored[6..].to_vec());
    let mut late = Vec::new();
    let mut at = GlobalPosition::default();
    loop {
        let events = tail.read_after(at, 5).await.unwrap();
        let Some(last) = events.last() else { break };
        at = last.global;
        late.extend(events.into_iter().map(|e| (e.global, e.aggregate_id)));
    }
    assert_eq!(late, stored, "a consumer behind the tail reads the store");
    db.close().await;
}

/// Appends by another process (here: another event store on the same database, whose
/// appends this one's consumers are not told of in memory) wake every consumer of this
/// one promptly — through one LISTEN connection for all of them, not one each. The
/// consumers poll only every ten minutes here: without the notification they would
/// miss the ten seconds allowed.
#[tokio::test]
async fn appends_elsewhere_wake_every_consumer_through_one_listener() {
    use expensewise_infra::wake::Wake;
    use std::time::Duration;
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    let this_process = database.event_store(&db).await;
    let other_process = database.event_store(&db).await;
    let follow = this_process.follow();
    let mut consumers: Vec<Wake> = (0..3).map(|_| Wake::new(&follow)).collect();
    let listening = || async {
        on_database!(&db, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            )
            .fetch_one(pool)
            .await
            .unwrap()
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listening().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nobody listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The listener says once, on connecting, that something may have been missed: each
    // consumer takes that, and is then idle (a wait lasts its whole poll).
    let poll = Duration::from_millis(50);
    for wake in consumers.iter_mut() {
        loop {
            let started = tokio::time::Instant::now();
            wake.wait(poll).await;
            if started.elapsed() >= poll {
                break;
            }
        }
    }

    let woken = consumers.iter_mut().map(|wake| async {
        tokio::time::timeout(Duration::from_secs(10), wake.wait(Duration::from_secs(600)))
            .await
            .expect("not woken by the append of another process");
    });
    let append = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        register(&other_process).await;
    };
    futures::future::join(futures::future::join_all(woken), append).await;
    assert_eq!(
        listening().await,
        1,
        "one listening connection for the process"
    );
    db.close().await;
    database.drop_database().await;
}

/// Read models and checkpoints are committed on PostgreSQL without waiting for the log's
/// flush (they are made again from the events if a crash loses them); everything else,
/// events first, waits for it.
#[tokio::test]
async fn only_state_made_from_events_commits_before_its_flush() {
    use expensewise_infra::db::Tx;
    let database = TestDatabase::create(Backend::Postgres).await;
    // The test cluster runs with `synchronous_commit` off for speed (scripts/test.sh):
    // this database's connections have it on, as a production server does.
    let setup = database.connect().await;
    let Database::Postgres(pool) = &setup else {
        unreachable!("a PostgreSQL test database")
    };
    sqlx::query(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', \
         current_database()); END $$",
    )
    .execute(pool)
    .await
    .unwrap();
    setup.close().await;
    let db = database.connect().await;
    let synchronous_commit = |tx: Tx| async move {
        let Tx::Postgres(mut tx) = tx else {
            unreachable!("a PostgreSQL test database")
        };
        let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        setting
    };
    assert_eq!(
        synchronous_commit(db.begin_derived().await.unwrap()).await,
        "off"
    );
    for _ in 0..3 {
        assert_eq!(synchronous_commit(db.begin().await.unwrap()).await, "on");
    }
    db.close().await;
    database.drop_database().await;
}

on_both_backends!(
    consumers_sharing_a_tail_read_what_the_store_holds,
    long_lived_expenses_load_the_same_from_snapshots,
    organizations_load_the_same_from_snapshots,
    events_are_read_back_in_commit_order,
    an_old_event_version_is_upcast_when_loaded,
    stored_events_cannot_be_changed_or_removed,
);
