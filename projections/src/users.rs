//! The users read model: one row per member of an organization, for the admins' list.
//!
//! Sign-in and permission checks read the organization aggregate itself, so a
//! deactivation takes effect at once; this model only answers `GET /v1/users`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use expensewise_domain::organization::{OrganizationEvent, AGGREGATE_TYPE};
use expensewise_domain::personal::ERASED;
use expensewise_domain::Role;
use expensewise_infra::db::Tx;
use expensewise_infra::{on_database, on_tx, Database, RecordedEvent};
use sqlx::Row;
use uuid::Uuid;

use crate::runner::Projection;

pub const NAME: &str = "users";
pub const TABLE: &str = "rm_users";

pub struct UsersProjection {
    table: &'static str,
    checkpoint: &'static str,
}

impl UsersProjection {
    pub fn live() -> Self {
        Self {
            table: TABLE,
            checkpoint: NAME,
        }
    }

    pub fn shadow() -> Self {
        Self {
            table: "rm_users_rebuild",
            checkpoint: "users.rebuild",
        }
    }
}

/// What one event does to one user's row.
enum Change {
    Joined {
        user_id: Uuid,
        name: String,
        email: String,
        role: Role,
        at: DateTime<Utc>,
    },
    Role {
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    },
    Active {
        user_id: Uuid,
        active: bool,
        at: DateTime<Utc>,
    },
    /// Their name and address read erased, as the events now do after a rebuild.
    Erased { user_id: Uuid, at: DateTime<Utc> },
    Manager {
        user_id: Uuid,
        manager_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
}

impl Change {
    /// What `event` changes in the model; passwords and tokens change nothing it shows.
    fn of(event: OrganizationEvent) -> Option<Self> {
        Some(match event {
            OrganizationEvent::OrganizationRegistered {
                admin_user_id,
                admin_name,
                admin_email,
                registered_at,
                ..
            } => Change::Joined {
                user_id: admin_user_id,
                name: admin_name,
                email: admin_email,
                role: Role::Admin,
                at: registered_at,
            },
            OrganizationEvent::UserAdded {
                user_id,
                name,
                email,
                role,
                added_at,
                ..
            } => Change::Joined {
                user_id,
                name,
                email,
                role,
                at: added_at,
            },
            OrganizationEvent::UserRoleChanged {
                user_id,
                role,
                changed_at,
            } => Change::Role {
                user_id,
                role,
                at: changed_at,
            },
            OrganizationEvent::UserDeactivated {
                user_id,
                deactivated_at,
            } => Change::Active {
                user_id,
                active: false,
                at: deactivated_at,
            },
            OrganizationEvent::UserReactivated {
                user_id,
                reactivated_at,
            } => Change::Active {
                user_id,
                active: true,
                at: reactivated_at,
            },
            OrganizationEvent::UserErased {
                user_id, erased_at, ..
            } => Change::Erased {
                user_id,
                at: erased_at,
            },
            OrganizationEvent::ManagerSet {
                user_id,
                manager_id,
                set_at,
            } => Change::Manager {
                user_id,
                manager_id,
                at: set_at,
            },
            OrganizationEvent::PasswordChanged { .. }
            | OrganizationEvent::DelegationSet { .. }
            | OrganizationEvent::DelegationEnded { .. }
            | OrganizationEvent::ApiTokenIssued { .. }
            | OrganizationEvent::ApiTokenRevoked { .. }
            | OrganizationEvent::RetentionEnded { .. }
            | OrganizationEvent::SingleSignOnConfigured { .. }
            | OrganizationEvent::SingleSignOnRemoved { .. }
            | OrganizationEvent::IdentityLinked { .. }
            | OrganizationEvent::DeadLetterRetried { .. }
            | OrganizationEvent::DeadLetterDiscarded { .. } => return None,
        })
    }
}

#[async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        self.checkpoint
    }

    fn table(&self) -> &str {
        self.table
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[AGGREGATE_TYPE]
    }

    /// Membership changes are rare next to expenses, so a statement per event is cheap;
    /// each is guarded by the row's version so a repeated event changes nothing.
    async fn apply(&self, tx: &mut Tx, events: &[RecordedEvent]) -> anyhow::Result<()> {
        let table = self.table;
        for event in events.iter().filter(|e| e.aggregate_type == AGGREGATE_TYPE) {
            let organization_id = event.aggregate_id.as_str();
            let version = event.sequence;
            let payload: OrganizationEvent = serde::Deserialize::deserialize(&*event.payload)?;
            let insert = format!(
                "INSERT INTO {table} (id, organization_id, name, email, role, active, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (id) DO NOTHING"
            );
            let set_role = format!(
                "UPDATE {table} SET role = $2, version = $3, updated_at = $4 WHERE id = $1 AND version < $3"
            );
            let set_active = format!(
                "UPDATE {table} SET active = $2, version = $3, updated_at = $4 WHERE id = $1 AND version < $3"
            );
            let erase = format!(
                "UPDATE {table} SET name = $2, email = $2, active = $3, version = $4, \
                 updated_at = $5 WHERE id = $1 AND version < $4"
            );
            let set_manager = format!(
                "UPDATE {table} SET manager_id = $2, version = $3, updated_at = $4 WHERE id = $1 AND version < $3"
            );
            let Some(change) = Change::of(payload) else {
                continue;
            };
            match change {
                Change::Joined {
                    user_id,
                    name,
                    email,
                    role,
                    at,
                } => on_tx!(tx, |conn| {
                    sqlx::query(&insert)
                        .bind(user_id.to_string())
                        .bind(organization_id)
                        .bind(name)
                        .bind(email)
                        .bind(role.as_str())
                        .bind(true)
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }),
                Change::Role { user_id, role, at } => on_tx!(tx, |conn| {
                    sqlx::query(&set_role)
                        .bind(user_id.to_string())
                        .bind(role.as_str())
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }),
                Change::Active {
                    user_id,
                    active,
                    at,
                } => on_tx!(tx, |conn| {
                    sqlx::query(&set_active)
                        .bind(user_id.to_string())
                        .bind(active)
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }),
                Change::Manager {
                    user_id,
                    manager_id,
                    at,
                } => on_tx!(tx, |conn| {
                    sqlx::query(&set_manager)
                        .bind(user_id.to_string())
                        .bind(manager_id.map(|m| m.to_string()))
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }),
                Change::Erased { user_id, at } => on_tx!(tx, |conn| {
                    sqlx::query(&erase)
                        .bind(user_id.to_string())
                        .bind(ERASED)
                        .bind(false)
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }),
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    pub manager_id: Option<Uuid>,
}

/// A page of the organization's users ordered by id, after `after`; one more row than
/// `limit` tells the caller there is a next page.
pub async fn list(
    db: &Database,
    organization_id: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> anyhow::Result<Vec<UserRow>> {
    let sql = format!(
        "SELECT id, name, email, role, active, manager_id FROM {TABLE} \
         WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let limit = i64::try_from(limit + 1)?;
    let rows = on_database!(db, |pool| {
        let mut rows = Vec::new();
        for row in sqlx::query(&sql)
            .bind(organization_id.to_string())
            .bind(&after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        {
            let id: String = row.try_get("id")?;
            let role: String = row.try_get("role")?;
            rows.push(UserRow {
                user_id: Uuid::parse_str(&id)?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                role: Role::parse(&role)
                    .ok_or_else(|| anyhow::anyhow!("unknown role {role:?} in the read model"))?,
                active: row.try_get("active")?,
                manager_id: row
                    .try_get::<Option<String>, _>("manager_id")?
                    .map(|m| Uuid::parse_str(&m))
                    .transpose()?,
            });
        }
        rows
    });
    Ok(rows)
}

/// The organization `user_id` belongs to, if the read model knows them.
pub async fn organization_of(db: &Database, user_id: Uuid) -> anyhow::Result<Option<Uuid>> {
    let sql = format!("SELECT organization_id FROM {TABLE} WHERE id = $1");
    let organization: Option<String> = on_database!(db, |pool| {
        sqlx::query_scalar(&sql)
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?
    });
    Ok(organization.map(|o| Uuid::parse_str(&o)).transpose()?)
}

/// Every member's name by id: how exports name whose expense it is.
pub async fn names(
    db: &Database,
    organization_id: Uuid,
) -> anyhow::Result<std::collections::HashMap<Uuid, String>> {
    let mut names = std::collections::HashMap::new();
    let mut after = None;
    loop {
        let page = list(db, organization_id, after, 500).await?;
        let more = page.len() > 500;
        for row in page.into_iter().take(500) {
            after = Some(row.user_id);
            names.insert(row.user_id, row.name);
        }
        if !more {
            return Ok(names);
        }
    }
}
