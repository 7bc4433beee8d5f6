use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a user may do in their organization. The wire and the event store both spell
/// roles in lower case; these strings are stored forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Employee,
    Approver,
    Auditor,
    Admin,
    /// Takes the finance steps of approval chains; sees every expense.
    Finance,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Employee,
        Role::Approver,
        Role::Auditor,
        Role::Admin,
        Role::Finance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Employee => "employee",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Finance => "finance",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Approvers, finance and admins decide on other people's submitted expenses (each
    /// on the steps of an approval chain that await their role).
    pub fn may_decide(self) -> bool {
        matches!(self, Role::Approver | Role::Admin | Role::Finance)
    }

    /// Auditors only read; everyone else may record expenses and receipts.
    pub fn may_record_expenses(self) -> bool {
        self != Role::Auditor
    }

    /// Roles that see every expense of the organization, not just their own.
    pub fn sees_all_expenses(self) -> bool {
        matches!(
            self,
            Role::Approver | Role::Auditor | Role::Admin | Role::Finance
        )
    }
}

/// The authenticated user a command is issued by, with the role their organization
/// currently gives them (looked up by the application, not taken from a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub role: Role,
}
