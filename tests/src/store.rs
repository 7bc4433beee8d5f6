//! Looking under the hood: the event store and read models straight, without HTTP.

use expensewise_infra::event_store::Scope;
use expensewise_infra::Database;
use serde_json::json;
use uuid::Uuid;

/// Every event id in the store, in global order. The tail hands out only events of
/// finished transactions, which other tests' transactions on the same cluster can hold
/// back for a moment: wait until it has all of them.
pub async fn stored_event_ids(db: &Database) -> Vec<String> {
    let total = expensewise_infra::on_database!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count the events")
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = expensewise_infra::event_store::read_after(
            db,
            expensewise_infra::GlobalPosition::default(),
            100_000,
        )
        .await
        .expect("read the event store");
        if events.len() as i64 >= total || std::time::Instant::now() > deadline {
            return events
                .iter()
                .map(|e| {
                    expensewise_infra::nats::event_id(
                        &e.aggregate_type,
                        &e.aggregate_id,
                        e.sequence,
                    )
                    .to_string()
                })
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Checks that every read model equals what a rebuild from the event store makes of the
/// events it has read: nothing missing, nothing doubled. Returns how many read models.
pub async fn assert_read_models_equal_a_rebuild(db: &Database) -> usize {
    let models = expensewise_projections::status::read_models();
    for model in &models {
        let verified = expensewise_projections::rebuild::rebuild(
            db,
            model.live.as_ref(),
            model.shadow.as_ref(),
            false,
            &|_| {},
        )
        .await
        .expect("verify the read model");
        assert!(
            verified.identical(),
            "the {} read model equals a rebuild: {verified:?}",
            model.name
        );
    }
    models.len()
}

/// Registers an organization straight through the event store (no HTTP, no password
/// hashing); returns its id.
pub async fn register_directly(store: &expensewise_infra::EventStore) -> Uuid {
    use expensewise_domain::organization::{NewUser, OrganizationCommand, PasswordHash};
    let org = Uuid::new_v4();
    let command = OrganizationCommand::RegisterOrganization {
        name: "Acme".into(),
        default_currency: expensewise_domain::Currency::parse("EUR").expect("EUR"),
        admin: NewUser {
            user_id: Uuid::new_v4(),
            name: "Ada".into(),
            email: format!("{org}@acme.test"),
            password_hash: PasswordHash("$argon2id$test".into()),
        },
        at: chrono::Utc::now(),
    };
    store
        .execute::<expensewise_domain::Organization>(
            &Scope::none(),
            &org.to_string(),
            command,
            &event_metadata(org, None),
        )
        .await
        .expect("register an organization");
    org
}

/// Metadata for a command a test issues straight through the event store.
pub fn event_metadata(
    organization_id: Uuid,
    actor_id: Option<Uuid>,
) -> expensewise_domain::EventMetadata {
    let id = Uuid::new_v4();
    expensewise_domain::EventMetadata {
        organization_id,
        actor_id,
        occurred_at: chrono::Utc::now(),
        correlation_id: id,
        causation_id: id,
        request_id: None,
        traceparent: None,
    }
}

/// Writes an `OrganizationRegistered` of version 1.0 (before organizations had a default
/// currency) straight into the event store, as it was stored then; returns the
/// organization's id.
pub async fn store_v1_registration(db: &Database) -> Uuid {
    let org = Uuid::new_v4();
    let v1 = json!({"OrganizationRegistered": {
        "name": "Old Corp",
        "admin_user_id": Uuid::new_v4(),
        "admin_name": "Ada",
        "admin_email": "ada@old.test",
        "admin_password_hash": "$argon2id$old",
        "registered_at": "2024-05-01T10:00:00Z"
    }})
    .to_string();
    // PostgreSQL stores payloads as json, SQLite as text.
    let payload = match db {
        Database::Postgres(_) => "CAST($2 AS json)",
        Database::Sqlite(_) => "$2",
    };
    let insert = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('organization', $1, 1, 'OrganizationRegistered', '1.0', {payload}, '{{}}')"
    );
    expensewise_infra::on_database!(db, |pool| {
        sqlx::query(&insert)
            .bind(org.to_string())
            .bind(&v1)
            .execute(pool)
            .await
            .expect("store a version 1.0 registration");
    });
    org
}
