//! Users and their bearer tokens, kept by the server in its store.
//!
//! A token is 32 random bytes, shown once when it is made; only its SHA-256 is
//! stored, so a copy of the data directory does not hand out sessions.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use coachsync_core::access::{Principal, UserRole};
use coachsync_core::store::{Store, StoreWrite};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

const USER_PREFIX: &str = "account/user/";
const TOKEN_PREFIX: &str = "account/token/";
/// Tokens start with this, so that one pasted into the wrong place is recognisable.
const TOKEN_MARK: &str = "cs_";

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: UserRole,
    /// Organisation.
    pub org: String,
    /// Groups.
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Email address, from the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// School, from the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Offboarded: signs in no more, whatever token or JWT they show.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// When they were offboarded, ms since 1970: their private notes are purged a
    /// retention period after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarded_ms: Option<i64>,
    /// When it was made, ms since 1970.
    pub created_ms: i64,
}

/// What a roster line does to the accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RosterChange {
    /// A new user.
    Added,
    /// An existing user whose role, email or school changes.
    Updated,
    /// An existing user as the line says.
    Unchanged,
}

impl User {
    /// The identity connections and API calls carry.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            role: self.role,
            org: self.org.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// A token as stored (under its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    /// Whose it is.
    pub user: String,
    /// A short public name for it (the start of its hash), for listing and revoking.
    pub id: String,
    /// When it was made.
    pub created_ms: i64,
    /// When it stops working, if ever.
    pub expires_ms: Option<i64>,
}

/// Every user and token, in memory; each change is written to the store first.
#[derive(Debug, Default)]
pub struct Accounts {
    users: HashMap<String, User>,
    /// By SHA-256 of the token, hex.
    tokens: HashMap<String, TokenRecord>,
}

/// Accounts shared between the HTTP handlers, the admin socket and the driver.
pub type SharedAccounts = Arc<std::sync::RwLock<Accounts>>;

/// Whether a store record is one of the accounts' (a user or a token).
pub fn is_account_key(key: &str) -> bool {
    key.starts_with(USER_PREFIX) || key.starts_with(TOKEN_PREFIX)
}

/// A user name or group name: what a person can type, and nothing that would need
/// escaping in a store key, a URL or a log line.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{what} {name:?} must be 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

/// The SHA-256 of a secret (a token or an invite code), hex: what is stored of it.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Accounts {
    /// Read every user and token from the store.
    pub fn load(store: &dyn Store) -> Result<Self> {
        let mut accounts = Self::default();
        for (key, value) in store.meta(USER_PREFIX)? {
            match serde_json::from_slice::<User>(&value) {
                Ok(user) => {
                    accounts.users.insert(user.name.clone(), user);
                }
                Err(e) => {
                    tracing::error!(%key, error = %e, "a user record does not decode; skipped")
                }
            }
        }
        for (key, value) in store.meta(TOKEN_PREFIX)? {
            let Some(hash) = key.strip_prefix(TOKEN_PREFIX) else {
                continue;
            };
            match serde_json::from_slice::<TokenRecord>(&value) {
                Ok(token) => {
                    accounts.tokens.insert(hash.to_owned(), token);
                }
                Err(e) => {
                    tracing::error!(%key, error = %e, "a token record does not decode; skipped")
                }
            }
        }
        Ok(accounts)
    }

    /// What changed from `self` to `next` that ends sessions: the ids of tokens
    /// that are gone, and the users whose role, groups or standing changed.
    pub fn differences(&self, next: &Accounts) -> (Vec<String>, Vec<String>) {
        let tokens = self
            .tokens
            .iter()
            .filter(|(hash, _)| !next.tokens.contains_key(*hash))
            .map(|(_, r)| r.id.clone())
            .collect();
        let users = self
            .users
            .values()
            .filter(|u| {
                next.users.get(&u.name).is_none_or(|n| {
                    n.role != u.role || n.groups != u.groups || n.disabled != u.disabled
                })
            })
            .map(|u| u.name.clone())
            .collect();
        (tokens, users)
    }

    /// Whether there are no users yet.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<&User> {
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// Every token of a user (records only; the tokens themselves are not kept).
    pub fn tokens_of(&self, name: &str) -> Vec<&TokenRecord> {
        let mut tokens: Vec<&TokenRecord> =
            self.tokens.values().filter(|t| t.user == name).collect();
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        tokens
    }

    /// Who a token belongs to, if it is known and not expired, and the token's id.
    pub fn authenticate(&self, token: &str, now_ms: i64) -> Option<(Principal, String)> {
        let record = self.tokens.get(&hash(token))?;
        if record.expires_ms.is_some_and(|at| at <= now_ms) {
            return None;
        }
        let user = self.users.get(&record.user).filter(|u| !u.disabled)?;
        Some((user.principal(), record.id.clone()))
    }

    /// Add a user; returns the write that stores them.
    pub fn add_user(&mut self, user: User) -> Result<StoreWrite> {
        check_name("user name", &user.name)?;
        check_name("organisation", &user.org)?;
        for g in &user.groups {
            check_name("group", g)?;
        }
        if self.users.contains_key(&user.name) {
            return Err(Error::Usage(format!("a user named {:?} exists", user.name)));
        }
        let write = user_write(&user);
        self.users.insert(user.name.clone(), user);
        Ok(write)
    }

    /// What a roster line would do, and the user it would leave.
    pub fn plan_roster(&self, line: &User) -> (RosterChange, User) {
        match self.users.get(&line.name) {
            None => (RosterChange::Added, line.clone()),
            Some(user) => {
                let same = user.role == line.role
                    && user.email == line.email
                    && user.school == line.school;
                let mut updated = user.clone();
                updated.role = line.role;
                updated.email.clone_from(&line.email);
                updated.school.clone_from(&line.school);
                let change = if same {
                    RosterChange::Unchanged
                } else {
                    RosterChange::Updated
                };
                (change, updated)
            }
        }
    }

    /// Store a user as a roster line left them (added or updated); returns the write.
    pub fn put_user(&mut self, user: User) -> Result<StoreWrite> {
        check_name("user name", &user.name)?;
        check_name("organisation", &user.org)?;
        let write = user_write(&user);
        self.users.insert(user.name.clone(), user);
        Ok(write)
    }

    /// Disable a user (offboarded at `now_ms`); returns the write.
    pub fn disable(&mut self, name: &str, now_ms: i64) -> Result<StoreWrite> {
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| Error::Usage(format!("no user named {name:?}")))?;
        user.disabled = true;
        user.offboarded_ms.get_or_insert(now_ms);
        Ok(user_write(user))
    }

    /// Every offboarded user, with when.
    pub fn offboarded(&self) -> Vec<(String, i64)> {
        self.users
            .values()
            .filter_map(|u| u.offboarded_ms.map(|at| (u.name.clone(), at)))
            .collect()
    }

    /// Put a user in a group or take them out; returns the write.
    pub fn set_group(&mut self, name: &str, group: &str, member: bool) -> Result<StoreWrite> {
        check_name("group", group)?;
        let user = self
            .users
            .get_mut(name)
            .ok_or_else(|| Error::Usage(format!("no user named {name:?}")))?;
        if member {
            user.groups.insert(group.to_owned());
        } else if !user.groups.remove(group) {
            return Err(Error::Usage(format!("{name} is not in group {group}")));
        }
        Ok(user_write(user))
    }

    /// Make a new token for a user. Returns the token (shown once) and the write.
    pub fn issue_token(
        &mut self,
        name: &str,
        now_ms: i64,
        expires_ms: Option<i64>,
    ) -> Result<(String, StoreWrite)> {
        if !self.users.contains_key(name) {
            return Err(Error::Usage(format!("no user named {name:?}")));
        }
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let token = format!("{TOKEN_MARK}{}", bs58::encode(random).into_string());
        let hash = hash(&token);
        let record = TokenRecord {
            user: name.to_owned(),
            id: hash[..12].to_owned(),
            created_ms: now_ms,
            expires_ms,
        };
        let write = StoreWrite::Meta {
            key: format!("{TOKEN_PREFIX}{hash}"),
            value: serde_json::to_vec(&record).expect("a token record serializes"),
        };
        self.tokens.insert(hash, record);
        Ok((token, write))
    }

    /// Revoke tokens: the one given (the token itself or its id), or every token of
    /// a user. Returns the ids revoked and the writes.
    pub fn revoke(
        &mut self,
        token: Option<&str>,
        user: Option<&str>,
    ) -> Result<(Vec<String>, Vec<StoreWrite>)> {
        let hashes: Vec<String> = match (token, user) {
            (Some(token), None) => {
                let by_token = hash(token);
                let found: Vec<String> = self
                    .tokens
                    .iter()
                    .filter(|(h, r)| **h == by_token || r.id == token)
                    .map(|(h, _)| h.clone())
                    .collect();
                if found.is_empty() {
                    return Err(Error::Usage("no such token".into()));
                }
                found
            }
            (None, Some(name)) => {
                if !self.users.contains_key(name) {
                    return Err(Error::Usage(format!("no user named {name:?}")));
                }
                self.tokens
                    .iter()
                    .filter(|(_, r)| r.user == name)
                    .map(|(h, _)| h.clone())
                    .collect()
            }
            _ => return Err(Error::Usage("give either --token or --user".into())),
        };
        let mut ids = Vec::new();
        let mut writes = Vec::new();
        for h in hashes {
            if let Some(record) = self.tokens.remove(&h) {
                ids.push(record.id);
                writes.push(StoreWrite::RemoveMeta {
                    key: format!("{TOKEN_PREFIX}{h}"),
                });
            }
        }
        Ok((ids, writes))
    }
}

fn user_write(user: &User) -> StoreWrite {
    StoreWrite::Meta {
        key: format!("{USER_PREFIX}{}", user.name),
        value: serde_json::to_vec(user).expect("a user record serializes"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A user of the district, with nothing else set.
    pub(crate) fn user(name: &str, role: UserRole) -> User {
        User {
            name: name.into(),
            role,
            org: "district".into(),
            groups: BTreeSet::new(),
            email: None,
            school: None,
            disabled: false,
            offboarded_ms: None,
            created_ms: 0,
        }
    }

    #[test]
    fn a_token_works_until_it_expires_or_is_revoked_and_only_its_hash_is_kept() {
        let mut a = Accounts::default();
        a.add_user(user("ana", UserRole::Coach)).unwrap();
        let (token, write) = a.issue_token("ana", 1_000, Some(2_000)).unwrap();
        let StoreWrite::Meta { key, value } = write else {
            panic!("a meta write")
        };
        assert!(!key.contains(&token) && !String::from_utf8_lossy(&value).contains(&token));
        assert_eq!(a.authenticate(&token, 1_500).unwrap().0.name, "ana");
        assert!(a.authenticate(&token, 2_000).is_none(), "expired");
        assert!(a.authenticate("cs_nope", 1_500).is_none());
        let (token2, _) = a.issue_token("ana", 1_000, None).unwrap();
        let (ids, _) = a.revoke(Some(&token2), None).unwrap();
        assert_eq!(ids.len(), 1);
        assert!(a.authenticate(&token2, 1_500).is_none(), "revoked");
    }

    #[test]
    fn names_are_checked_and_unique() {
        let mut a = Accounts::default();
        assert!(a.add_user(user("bad name", UserRole::Coach)).is_err());
        a.add_user(user("ana", UserRole::Coach)).unwrap();
        assert!(a.add_user(user("ana", UserRole::Client)).is_err());
        assert!(a.issue_token("nobody", 0, None).is_err());
    }
}
