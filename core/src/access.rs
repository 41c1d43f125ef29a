//! Who may read or write a document: owners, grants, visibility classes and the
//! rules between them (docs/SECURITY.md). Pure data and decisions, no IO: the sync
//! engine asks it before it sends or accepts anything, and persists its records
//! through ordinary store writes.

mod doc_access;
mod principal;
mod purged;
mod relationship;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::Visibility;
use crate::error::{Error, Result};
use crate::id::DocumentId;
use crate::store::StoreWrite;

pub use doc_access::{DocAccess, Grant, Subject};
pub use principal::{Principal, UserRole, Who};
pub use purged::{PURGED_KEY_PREFIX, Purged};
pub use relationship::{RELATIONSHIP_KEY_PREFIX, Relationship};

/// The store meta key prefix of the per-document access records.
pub const ACCESS_KEY_PREFIX: &str = "access/doc/";

/// What a user may do with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Sync it and receive its changes; changes sent are refused.
    Read,
    /// Read it and change it.
    Write,
}

impl Access {
    /// The word used in the API: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }

    /// Parse `read` or `write`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            other => Err(Error::Access(format!(
                "access must be \"read\" or \"write\", not {other:?}"
            ))),
        }
    }
}

/// The decision for one connection and one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// May neither read nor learn that the document exists.
    Denied,
    /// May read.
    Read,
    /// May read and write.
    Write,
    /// Nobody owns it: if it does not exist yet, whoever stores its first change
    /// creates and owns it.
    Unclaimed,
}

/// What a document says about its audience: the fields the server reads when it
/// first stores a document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    /// The kind its root `schema` names.
    pub kind: Option<String>,
    /// Its class, when that is a known kind.
    pub visibility: Option<Visibility>,
    /// The relationship its root `relationship` names.
    pub relationship: Option<String>,
    /// The team (group) its root `group` names.
    pub group: Option<String>,
}

/// A change of access to persist: the record to write, already applied in memory.
#[derive(Debug)]
pub struct AccessChange {
    /// The write that makes it durable.
    pub write: StoreWrite,
}

/// Every document's access record, kept in memory (each is a few dozen bytes).
#[derive(Debug, Default)]
pub struct AccessBook {
    docs: HashMap<DocumentId, DocAccess>,
    /// Documents owned per user, for the per-user limit.
    owned: HashMap<String, u64>,
    /// Stored bytes per document, and their sum per owner, for the per-user limit.
    sizes: HashMap<DocumentId, u64>,
    owner_bytes: HashMap<String, u64>,
    /// Coaching relationships, by ID.
    relationships: HashMap<String, Relationship>,
    /// The wall-clock time decisions are made at (a relationship's read access ends
    /// after its grace period), ms since 1970.
    now_ms: i64,
    /// Documents purged for good: never stored again, and only their former readers
    /// are told they are gone (none, when the record did not decode).
    purged: HashMap<DocumentId, Option<Purged>>,
}

impl AccessBook {
    /// An empty book: every document unclaimed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every access record a store holds, outside a running engine (admin commands
    /// on the store itself, exports, retention).
    pub fn load(store: &dyn crate::store::Store) -> Result<Self> {
        let mut book = Self::new();
        book.restore(store.meta(ACCESS_KEY_PREFIX)?);
        Ok(book)
    }

    /// Read back the records written earlier (`Store::meta(ACCESS_KEY_PREFIX)`).
    /// A record that does not decode is skipped and reported: its document stays
    /// closed to every user (only an owner opens a document), so nothing leaks.
    pub fn restore(&mut self, records: impl IntoIterator<Item = (String, Vec<u8>)>) -> usize {
        let mut skipped = 0;
        for (key, value) in records {
            let Some(id) = key.strip_prefix(ACCESS_KEY_PREFIX) else {
                continue;
            };
            let (Ok(document), Ok(record)) = (
                id.parse::<DocumentId>(),
                serde_json::from_slice::<DocAccess>(&value),
            ) else {
                tracing::error!(%key, "an access record does not decode; its document stays closed");
                skipped += 1;
                continue;
            };
            self.insert(document, record);
        }
        skipped
    }

    fn insert(&mut self, document: DocumentId, record: DocAccess) {
        let size = self.sizes.get(&document).copied().unwrap_or(0);
        if let Some(owner) = &record.owner {
            *self.owned.entry(owner.clone()).or_default() += 1;
            *self.owner_bytes.entry(owner.clone()).or_default() += size;
        }
        if let Some(old) = self.docs.insert(document, record)
            && let Some(owner) = old.owner
        {
            if let Some(n) = self.owned.get_mut(&owner) {
                *n = n.saturating_sub(1);
            }
            if let Some(b) = self.owner_bytes.get_mut(&owner) {
                *b = b.saturating_sub(size);
            }
        }
    }

    fn remove(&mut self, document: &DocumentId) -> Option<DocAccess> {
        let size = self.sizes.remove(document).unwrap_or(0);
        let old = self.docs.remove(document)?;
        if let Some(owner) = &old.owner {
            if let Some(n) = self.owned.get_mut(owner) {
                *n = n.saturating_sub(1);
            }
            if let Some(b) = self.owner_bytes.get_mut(owner) {
                *b = b.saturating_sub(size);
            }
        }
        Some(old)
    }

    /// Purge a document: its record gives way to a [`Purged`] one. Returns the
    /// writes that make it durable (the content itself is the caller's to delete).
    pub fn purge(&mut self, document: &DocumentId, by: &str, at_ms: i64) -> Vec<StoreWrite> {
        let purged = Purged {
            at_ms,
            by: by.to_owned(),
            access: self.remove(document),
        };
        let writes = vec![
            StoreWrite::RemoveMeta {
                key: format!("{ACCESS_KEY_PREFIX}{document}"),
            },
            purged.store_write(document),
        ];
        self.purged.insert(document.clone(), Some(purged));
        writes
    }

    /// Read back the purge records written earlier (`Store::meta(PURGED_KEY_PREFIX)`).
    /// A record that does not decode still marks its document purged, told to nobody.
    pub fn restore_purged(&mut self, records: impl IntoIterator<Item = (String, Vec<u8>)>) {
        for (key, value) in records {
            let Some(Ok(document)) = key
                .strip_prefix(PURGED_KEY_PREFIX)
                .map(str::parse::<DocumentId>)
            else {
                continue;
            };
            let purged = serde_json::from_slice(&value)
                .inspect_err(
                    |e| tracing::error!(%key, error = %e, "a purge record does not decode"),
                )
                .ok();
            self.purged.insert(document, purged);
        }
    }

    /// Documents purged at or after `since_ms` that `who` could read: what a
    /// reconnecting device of theirs is told of.
    pub fn purged_for(&self, who: &Who, since_ms: i64) -> Vec<DocumentId> {
        self.purged
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.at_ms >= since_ms))
            .filter(|(d, _)| self.could_read_purged(who, d))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Whether a document was purged.
    pub fn is_purged(&self, document: &DocumentId) -> bool {
        self.purged.contains_key(document)
    }

    /// Whether `who` could read a purged document before it went, and so may be
    /// told it is gone; anyone else hears it is unavailable, like any unknown ID.
    pub fn could_read_purged(&self, who: &Who, document: &DocumentId) -> bool {
        let Some(Some(purged)) = self.purged.get(document) else {
            return false;
        };
        match (&purged.access, who) {
            (None, Who::Anonymous) => true,
            (None, Who::User(_)) | (Some(_), Who::Anonymous) => false,
            (Some(record), Who::User(user)) => self.access_of(record, user).is_some(),
        }
    }

    /// The stored size of every document (`Store::document_sizes`), read at start.
    pub fn restore_sizes(&mut self, sizes: impl IntoIterator<Item = (DocumentId, u64)>) {
        for (document, bytes) in sizes {
            self.record_size(&document, bytes);
        }
    }

    /// A document now takes `bytes` in the store; its owner is charged for them.
    pub fn record_size(&mut self, document: &DocumentId, bytes: u64) {
        let old = self.sizes.insert(document.clone(), bytes).unwrap_or(0);
        if let Some(owner) = self.docs.get(document).and_then(|r| r.owner.as_ref()) {
            let total = self.owner_bytes.entry(owner.clone()).or_default();
            *total = total.saturating_sub(old).saturating_add(bytes);
        }
    }

    /// The bytes stored in the documents a user owns.
    pub fn bytes_of(&self, user: &str) -> u64 {
        self.owner_bytes.get(user).copied().unwrap_or(0)
    }

    /// The wall-clock time from now on, ms since 1970.
    pub fn set_now(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
    }

    /// Read back the relationship records (`Store::meta(RELATIONSHIP_KEY_PREFIX)`);
    /// returns how many did not decode (their documents stay with owner and grants).
    pub fn restore_relationships(
        &mut self,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> usize {
        let mut skipped = 0;
        for (key, value) in records {
            match serde_json::from_slice::<Relationship>(&value) {
                Ok(r) => {
                    self.relationships.insert(r.id.clone(), r);
                }
                Err(e) => {
                    tracing::error!(%key, error = %e, "a relationship record does not decode");
                    skipped += 1;
                }
            }
        }
        skipped
    }

    /// Add or replace a relationship (as the admins changed it).
    pub fn set_relationship(&mut self, relationship: Relationship) {
        self.relationships
            .insert(relationship.id.clone(), relationship);
    }

    /// A relationship by ID.
    pub fn relationship(&self, id: &str) -> Option<&Relationship> {
        self.relationships.get(id)
    }

    /// Every document `user` may read, with what they may do: what an app lists as
    /// theirs. (Documents nobody owns are left out: users never reach them.) One pass
    /// over every record.
    pub fn readable_by(&self, user: &Principal) -> Vec<(DocumentId, &DocAccess, Access)> {
        let mut found: Vec<(DocumentId, &DocAccess, Access)> = self
            .docs
            .iter()
            .filter_map(|(d, r)| self.access_of(r, user).map(|a| (d.clone(), r, a)))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// The documents a user owns.
    pub fn owned_documents(&self, user: &str) -> Vec<DocumentId> {
        self.docs
            .iter()
            .filter(|(_, r)| r.owner.as_deref() == Some(user))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// The documents tied to a relationship.
    pub fn documents_of(&self, relationship: &str) -> Vec<DocumentId> {
        self.docs
            .iter()
            .filter(|(_, r)| r.relationship.as_deref() == Some(relationship))
            .map(|(d, _)| d.clone())
            .collect()
    }

    fn relationship_of(&self, record: &DocAccess) -> Option<&Relationship> {
        record
            .relationship
            .as_deref()
            .and_then(|id| self.relationships.get(id))
    }

    /// What `user` may do with a document that has a record.
    fn access_of(&self, record: &DocAccess, user: &Principal) -> Option<Access> {
        record.access_of(user, self.relationship_of(record), self.now_ms)
    }

    /// Whether `user` may read a document's access log: its owner and the members of
    /// its relationship.
    pub fn may_see_log(&self, user: &Principal, document: &DocumentId) -> bool {
        self.docs.get(document).is_some_and(|record| {
            record.owner.as_deref() == Some(user.name.as_str())
                || self
                    .relationship_of(record)
                    .is_some_and(|r| r.is_member(user))
        })
    }

    /// A departing user's documents pass to `to`, except their private ones, which
    /// stay theirs (and so unreadable by anyone once the user can no longer sign in).
    /// Returns the documents moved with the writes that keep the change.
    pub fn transfer(&mut self, from: &str, to: &Principal) -> Vec<(DocumentId, StoreWrite)> {
        let moved: Vec<DocumentId> = self
            .docs
            .iter()
            .filter(|(_, r)| {
                r.owner.as_deref() == Some(from) && r.visibility != Some(Visibility::Private)
            })
            .map(|(d, _)| d.clone())
            .collect();
        let mut writes = Vec::new();
        for document in moved {
            let mut record = self.docs[&document].clone();
            record.owner = Some(to.name.clone());
            record.org = Some(to.org.clone());
            writes.push((document.clone(), record.store_write(&document)));
            self.insert(document, record);
        }
        writes
    }

    /// A document's record, if it has one.
    pub fn record(&self, document: &DocumentId) -> Option<&DocAccess> {
        self.docs.get(document)
    }

    /// How many documents a user owns.
    pub fn owned_by(&self, user: &str) -> u64 {
        self.owned.get(user).copied().unwrap_or(0)
    }

    /// What `who` may do with `document`. `exists` says whether the document has
    /// content: an existing document nobody owns (stored before access control, or
    /// by an anonymous peer) is open to anonymous peers only.
    pub fn decide(&self, who: &Who, document: &DocumentId, exists: bool) -> Decision {
        let Some(record) = self.docs.get(document) else {
            return match (who, exists) {
                (_, false) => Decision::Unclaimed,
                (Who::Anonymous, true) => Decision::Write,
                (Who::User(_), true) => Decision::Denied,
            };
        };
        let Who::User(user) = who else {
            return Decision::Denied;
        };
        match self.access_of(record, user) {
            Some(Access::Write) => Decision::Write,
            Some(Access::Read) => Decision::Read,
            None => Decision::Denied,
        }
    }

    /// Whether `who` may receive `document`'s content.
    pub fn may_read(&self, who: &Who, document: &DocumentId, exists: bool) -> bool {
        !matches!(self.decide(who, document, exists), Decision::Denied)
    }

    /// `user` stored the first change of an unclaimed document: they own it. Its
    /// class, relationship and team come from what the document said then
    /// (`audience`) and never change with later edits.
    pub fn claim(
        &mut self,
        document: &DocumentId,
        user: &Principal,
        audience: Audience,
        unix_ms: i64,
    ) -> AccessChange {
        let mut record = DocAccess::new(user, audience.kind, audience.visibility, unix_ms);
        record.relationship =
            self.joinable(audience.relationship.as_deref(), |r| r.is_member(user));
        // A team document is its team's when its creator is in that team.
        record.group = audience.group.filter(|g| user.groups.contains(g));
        let write = record.store_write(document);
        self.insert(document.clone(), record);
        AccessChange { write }
    }

    /// The relationship a document names, if its owner belongs to it (a document
    /// cannot join a relationship its owner is not in).
    fn joinable(
        &self,
        relationship: Option<&str>,
        owner_is_member: impl FnOnce(&Relationship) -> bool,
    ) -> Option<String> {
        let id = relationship?;
        let r = self.relationships.get(id)?;
        owner_is_member(r).then(|| id.to_owned())
    }

    /// A document took its first `schema` (fixing its class) or its first
    /// `relationship` (tying it to one its owner belongs to): fix what was not fixed
    /// yet. Returns the write to persist, or `None` when nothing changed.
    pub fn classify(
        &mut self,
        document: &DocumentId,
        kind: Option<String>,
        visibility: Option<Visibility>,
        relationship: Option<&str>,
    ) -> Option<AccessChange> {
        let record = self.docs.get(document)?;
        let joined = match (&record.relationship, &record.owner) {
            (None, Some(owner)) => self.joinable(relationship, |r| r.names(owner)),
            _ => None,
        };
        let record = self.docs.get_mut(document)?;
        let mut changed = false;
        if record.visibility.is_none()
            && let (Some(kind), Some(visibility)) = (kind, visibility)
        {
            record.kind = Some(kind);
            record.visibility = Some(visibility);
            changed = true;
        }
        if joined.is_some() {
            record.relationship = joined;
            changed = true;
        }
        changed.then(|| AccessChange {
            write: record.store_write(document),
        })
    }

    /// `granter` gives `subject` `access` to `document`. `subject_role` is the
    /// grantee's role when the subject is a user. Refused with [`Error::NotFound`]
    /// when the granter may not read the document (exactly as for one that does not
    /// exist, so a grant attempt tells nothing about documents the granter cannot
    /// see), and with [`Error::Forbidden`] when they may read it but not grant, or
    /// the rules forbid this grant.
    pub fn grant(
        &mut self,
        granter: &Principal,
        document: &DocumentId,
        subject: Subject,
        subject_role: Option<UserRole>,
        access: Access,
    ) -> Result<AccessChange> {
        let record = self.editable(granter, document)?;
        let relationship = self.relationship_of(record);
        record.check_grant(granter, relationship, &subject, subject_role)?;
        let by_document_client = record.is_client(granter, relationship);
        let mut record = record.clone();
        record.grants.insert(
            subject,
            Grant {
                access,
                by: granter.name.clone(),
                by_role: granter.role,
                by_document_client,
            },
        );
        let write = record.store_write(document);
        self.docs.insert(document.clone(), record);
        Ok(AccessChange { write })
    }

    /// `granter` takes back whatever `subject` was granted on `document`.
    pub fn revoke(
        &mut self,
        granter: &Principal,
        document: &DocumentId,
        subject: &Subject,
    ) -> Result<AccessChange> {
        let record = self.editable(granter, document)?;
        // Whoever may grant may revoke, except that an evaluator's grant on coaching
        // content is the client's to take back as well as to give.
        let mut record = record.clone();
        if record.grants.remove(subject).is_none() {
            return Err(Error::Access(format!(
                "{subject} has no grant on this document"
            )));
        }
        let write = record.store_write(document);
        self.docs.insert(document.clone(), record);
        Ok(AccessChange { write })
    }

    /// The record of a document `user` may grant on, or the error to show.
    fn editable(&self, user: &Principal, document: &DocumentId) -> Result<&DocAccess> {
        let not_found = || Error::NotFound(format!("no document {document}"));
        let record = self.docs.get(document).ok_or_else(not_found)?;
        let relationship = self.relationship_of(record);
        match self.access_of(record, user) {
            None => Err(not_found()),
            Some(_) if record.may_grant(user, relationship, self.now_ms) => Ok(record),
            Some(_) => Err(Error::Forbidden(
                "only the document's owner (or, for coaching content, its client) can change who reads it"
                    .into(),
            )),
        }
    }
}
