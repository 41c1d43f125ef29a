//! A coaching relationship: the unit of confidentiality for coaching content.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Access, Principal};
use crate::store::StoreWrite;

/// The store meta key prefix of relationship records.
pub const RELATIONSHIP_KEY_PREFIX: &str = "relationship/";

const DAY_MS: i64 = 86_400_000;

/// Who coaches whom, where, since when: a record kept by the server and changed only
/// by an organisation's admins, never by its members. Coaching documents tied to it
/// are read and written by its members without grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// Its ID (`rel-` and random hex), what documents name in their `relationship`
    /// field.
    pub id: String,
    /// The organisation.
    pub org: String,
    /// The coaches, by user name.
    pub coaches: BTreeSet<String>,
    /// The clients (a principal, a teacher leader), by user name.
    pub clients: BTreeSet<String>,
    /// Teams that are clients, by group: whoever is in the group when access is
    /// decided is a client.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub client_groups: BTreeSet<String>,
    /// The school.
    pub school: String,
    /// What the coaching is about, if said.
    #[serde(default)]
    pub focus: Option<String>,
    /// When it started, `YYYY-MM-DD`.
    pub start: String,
    /// When it ended, ms since 1970; members keep read access for
    /// `read_after_end_days` after that, then lose it.
    #[serde(default)]
    pub ended_ms: Option<i64>,
    /// Days of read access after the end.
    #[serde(default)]
    pub read_after_end_days: u32,
    /// When it was recorded.
    pub created_ms: i64,
}

impl Relationship {
    /// Whether `user` is a coach or a client of it.
    pub fn is_member(&self, user: &Principal) -> bool {
        self.coaches.contains(&user.name) || self.is_client(user)
    }

    /// Whether `user` is one of its clients, by name or as a member of a client team:
    /// who decides what is shared beyond it.
    pub fn is_client(&self, user: &Principal) -> bool {
        self.clients.contains(&user.name)
            || user.groups.iter().any(|g| self.client_groups.contains(g))
    }

    /// Whether the user named `name` is a member by name (a coach or a client named
    /// in the record, not through a team): all that can be known of a user who is
    /// not signed in.
    pub fn names(&self, name: &str) -> bool {
        self.coaches.contains(name) || self.clients.contains(name)
    }

    /// What a member may do at `now_ms`: write while it lasts, read for the grace
    /// period after it ends, nothing after that; `None` for a non-member.
    pub fn access_of(&self, user: &Principal, now_ms: i64) -> Option<Access> {
        if !self.is_member(user) {
            return None;
        }
        match self.ended_ms {
            None => Some(Access::Write),
            Some(end)
                if now_ms < end.saturating_add(i64::from(self.read_after_end_days) * DAY_MS) =>
            {
                Some(Access::Read)
            }
            Some(_) => None,
        }
    }

    /// The write that keeps this record.
    pub fn store_write(&self) -> StoreWrite {
        StoreWrite::Meta {
            key: format!("{RELATIONSHIP_KEY_PREFIX}{}", self.id),
            value: serde_json::to_vec(self).expect("a relationship serializes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_write_until_the_end_then_read_for_the_grace_period_then_nothing() {
        let mut r = Relationship {
            id: "rel-1".into(),
            org: "district".into(),
            coaches: ["coach".to_owned()].into(),
            clients: ["principal".to_owned()].into(),
            client_groups: ["grade-3".to_owned()].into(),
            school: "north".into(),
            focus: None,
            start: "2026-09-01".into(),
            ended_ms: None,
            read_after_end_days: 30,
            created_ms: 0,
        };
        let user = |name: &str, groups: &[&str]| Principal {
            name: name.into(),
            role: super::super::UserRole::Client,
            org: "district".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert_eq!(r.access_of(&user("coach", &[]), 0), Some(Access::Write));
        assert_eq!(r.access_of(&user("principal", &[]), 0), Some(Access::Write));
        assert_eq!(r.access_of(&user("supervisor", &[]), 0), None);
        // A team that is a client: its members are clients while they are in it.
        let teacher = user("teacher", &["grade-3"]);
        assert!(r.is_client(&teacher));
        assert_eq!(r.access_of(&teacher, 0), Some(Access::Write));
        assert_eq!(r.access_of(&user("teacher", &["grade-4"]), 0), None);
        r.ended_ms = Some(1_000);
        assert_eq!(
            r.access_of(&user("principal", &[]), 1_000 + 29 * DAY_MS),
            Some(Access::Read)
        );
        assert_eq!(
            r.access_of(&user("principal", &[]), 1_000 + 30 * DAY_MS),
            None
        );
    }
}
