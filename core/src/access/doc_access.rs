//! One document's access record: owner, class and grants.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ACCESS_KEY_PREFIX, Access, Principal, Relationship, UserRole};
use crate::domain::Visibility;
use crate::error::{Error, Result};
use crate::id::DocumentId;
use crate::store::StoreWrite;

/// Whom a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// One user, by name.
    User(String),
    /// Every member of a group.
    Group(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(name) => write!(f, "user {name}"),
            Subject::Group(name) => write!(f, "group {name}"),
        }
    }
}

/// One grant: what, and who gave it (the rules look at the granter's role).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// What it gives.
    pub access: Access,
    /// Who gave it.
    pub by: String,
    /// Their role then.
    pub by_role: UserRole,
    /// Whether they were a client of the document then (of its relationship, or by
    /// role): only a client's grants carry coaching content out of a relationship
    /// or to an evaluator.
    #[serde(default)]
    pub by_document_client: bool,
}

impl Grant {
    /// Whether a client of the document made it.
    pub fn by_client(&self) -> bool {
        self.by_document_client || self.by_role == UserRole::Client
    }
}

/// Who owns a document, its class, and who else was granted what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocAccess {
    /// The user who stored its first change; `None` for a document stored before
    /// access control or by an anonymous peer.
    pub owner: Option<String>,
    /// The owner's organisation.
    pub org: Option<String>,
    /// The kind its `schema` named when it was first stored.
    pub kind: Option<String>,
    /// Its class, fixed by the first `schema` it was stored with: later edits of
    /// `schema` never move a document to another audience. `None` until then: a
    /// plain document, read by its owner and whoever they grant.
    #[serde(with = "visibility_name")]
    pub visibility: Option<Visibility>,
    /// The coaching relationship it belongs to, fixed by the first `relationship`
    /// field it was stored with that names a relationship its owner belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// The team (a group) a team document belongs to, fixed by the `group` field it
    /// was first stored with, when its owner is in that group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Grants, by subject.
    #[serde(with = "grant_list")]
    pub grants: BTreeMap<Subject, Grant>,
    /// When it was claimed, milliseconds since 1970.
    pub created_ms: i64,
}

impl DocAccess {
    /// The record of a document `owner` just created.
    pub fn new(
        owner: &Principal,
        kind: Option<String>,
        visibility: Option<Visibility>,
        unix_ms: i64,
    ) -> Self {
        Self {
            owner: Some(owner.name.clone()),
            org: Some(owner.org.clone()),
            kind,
            visibility,
            relationship: None,
            group: None,
            grants: BTreeMap::new(),
            created_ms: unix_ms,
        }
    }

    /// The store write that keeps this record.
    pub fn store_write(&self, document: &DocumentId) -> StoreWrite {
        StoreWrite::Meta {
            key: format!("{ACCESS_KEY_PREFIX}{document}"),
            value: serde_json::to_vec(self).expect("an access record always serializes"),
        }
    }

    /// What `user` may do at `now_ms`, given the document's relationship (looked up
    /// by the caller): the owner writes; the relationship's members write while it
    /// lasts and read for a while after; grants to the user or their groups give
    /// what they say; everyone in the organisation reads org documents. A private
    /// document is its owner's alone, whatever was granted before it was
    /// classified. Coaching content reaches anyone outside its relationship only
    /// through a grant a client of it made, and an evaluator only through a grant
    /// to them by name that a client made.
    pub fn access_of(
        &self,
        user: &Principal,
        relationship: Option<&Relationship>,
        now_ms: i64,
    ) -> Option<Access> {
        if self.owner.as_deref() == Some(user.name.as_str()) {
            return Some(Access::Write);
        }
        if self.visibility == Some(Visibility::Private) {
            return None;
        }
        let by_relationship = relationship.and_then(|r| r.access_of(user, now_ms));
        let coaching = self.visibility == Some(Visibility::Coaching);
        let evaluator_of_coaching = coaching && user.role == UserRole::Evaluator;
        // In a relationship the client decides what leaves it: only their grants
        // count for coaching content.
        let client_only = coaching && relationship.is_some();
        let named = self
            .grants
            .get(&Subject::User(user.name.clone()))
            .filter(|g| !(evaluator_of_coaching || client_only) || g.by_client())
            .map(|g| g.access);
        let by_group = if evaluator_of_coaching {
            None
        } else {
            user.groups
                .iter()
                .filter_map(|g| self.grants.get(&Subject::Group(g.clone())))
                .filter(|g| !client_only || g.by_client())
                .map(|g| g.access)
                .max()
        };
        let by_org = (self.visibility == Some(Visibility::Org)
            && self.org.as_deref() == Some(user.org.as_str()))
        .then_some(Access::Read);
        let by_team = (self.visibility == Some(Visibility::Team)
            && self.group.as_ref().is_some_and(|g| user.groups.contains(g)))
        .then_some(Access::Write);
        [by_relationship, named, by_group, by_org, by_team]
            .into_iter()
            .flatten()
            .max()
    }

    /// Whether `user` is a client of this document: of its relationship when it has
    /// one, else by role.
    pub fn is_client(&self, user: &Principal, relationship: Option<&Relationship>) -> bool {
        match relationship {
            Some(r) => r.is_client(user),
            None => user.role == UserRole::Client,
        }
    }

    /// Whether `user` may change grants at all: the owner, and the client of
    /// coaching content they may read.
    pub fn may_grant(
        &self,
        user: &Principal,
        relationship: Option<&Relationship>,
        now_ms: i64,
    ) -> bool {
        self.owner.as_deref() == Some(user.name.as_str())
            || (self.visibility == Some(Visibility::Coaching)
                && self.is_client(user, relationship)
                && self.access_of(user, relationship, now_ms).is_some())
    }

    /// The rules of who may be granted what by whom (docs/SECURITY.md).
    pub fn check_grant(
        &self,
        granter: &Principal,
        relationship: Option<&Relationship>,
        subject: &Subject,
        subject_role: Option<UserRole>,
    ) -> Result<()> {
        if self.visibility == Some(Visibility::Private) {
            return Err(Error::Forbidden(
                "a private document stays its author's alone; it cannot be shared".into(),
            ));
        }
        if *subject == Subject::User(granter.name.clone()) {
            return Err(Error::Forbidden(
                "nobody can grant themselves access".into(),
            ));
        }
        let is_owner = self.owner.as_deref() == Some(granter.name.as_str());
        let is_client = self.is_client(granter, relationship);
        if self.visibility == Some(Visibility::Coaching) {
            if relationship.is_some() && !is_client {
                return Err(Error::Forbidden(
                    "only a client of the coaching relationship decides who outside it reads its documents"
                        .into(),
                ));
            }
            if subject_role == Some(UserRole::Evaluator) && !is_client {
                return Err(Error::Forbidden(
                    "only the coaching document's client can share it with an evaluator".into(),
                ));
            }
            if !is_owner && relationship.is_none() && subject_role != Some(UserRole::Evaluator) {
                return Err(Error::Forbidden(
                    "a client shares coaching content they did not create only with evaluators"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

mod visibility_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::Visibility;

    pub fn serialize<S: Serializer>(v: &Option<Visibility>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Visibility>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        [
            Visibility::Private,
            Visibility::Coaching,
            Visibility::Team,
            Visibility::Org,
        ]
        .into_iter()
        .find(|v| v.as_str() == name)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown visibility {name:?}")))
    }
}

mod grant_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Grant, Subject};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        #[serde(flatten)]
        subject: Subject,
        #[serde(flatten)]
        grant: Grant,
    }

    pub fn serialize<S: Serializer>(
        grants: &BTreeMap<Subject, Grant>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        grants
            .iter()
            .map(|(subject, grant)| Entry {
                subject: subject.clone(),
                grant: grant.clone(),
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Subject, Grant>, D::Error> {
        Ok(Vec::<Entry>::deserialize(d)?
            .into_iter()
            .map(|e| (e.subject, e.grant))
            .collect())
    }
}
