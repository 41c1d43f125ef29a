//! Who is on the other end of a connection.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A user's role in their organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserRole {
    /// Coaches principals, teacher leaders or teams.
    Coach,
    /// Is coached: a principal or teacher leader.
    Client,
    /// Takes part in a team's improvement work.
    TeamMember,
    /// Supervises (a principal's supervisor, a district administrator); never reads
    /// coaching content unless its client shares it.
    Evaluator,
    /// Manages accounts and reads the audit log; no coaching content by office.
    Admin,
}

impl UserRole {
    /// Every role, in the order the docs list them.
    pub const ALL: [UserRole; 5] = [
        UserRole::Coach,
        UserRole::Client,
        UserRole::TeamMember,
        UserRole::Evaluator,
        UserRole::Admin,
    ];

    /// Its name: `coach`, `client`, `team-member`, `evaluator`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Coach => "coach",
            UserRole::Client => "client",
            UserRole::TeamMember => "team-member",
            UserRole::Evaluator => "evaluator",
            UserRole::Admin => "admin",
        }
    }

    /// Parse a role's name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::Access(format!(
                    "{s:?} is not a role; the roles are {}",
                    Self::ALL.map(UserRole::as_str).join(", ")
                ))
            })
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated user, as a connection or an API call carries them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's name, unique on the server.
    pub name: String,
    /// Their role.
    pub role: UserRole,
    /// Their organisation.
    pub org: String,
    /// The groups they belong to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// The identity behind a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// No token, on a server started with anonymous access for demos and tests:
    /// reaches only documents nobody owns.
    Anonymous,
    /// A signed-in user.
    User(Arc<Principal>),
}

impl Who {
    /// The user, if signed in.
    pub fn user(&self) -> Option<&Principal> {
        match self {
            Who::Anonymous => None,
            Who::User(p) => Some(p),
        }
    }

    /// A name for logs and the audit log.
    pub fn label(&self) -> &str {
        match self {
            Who::Anonymous => "anonymous",
            Who::User(p) => &p.name,
        }
    }
}
