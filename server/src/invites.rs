//! One-time sign-in links: `coachsync admin user invite` makes a code, and the app
//! exchanges it once (`POST /api/invites/{code}`) for a device token, so that nobody
//! types a token on a phone. Only the code's SHA-256 is stored, like a token's.

use coachsync_core::store::{Store, StoreWrite};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, SharedAccounts, User, hash};
use crate::error::{Error, Result};

/// The store key prefix of invites: `invite/<sha256 of the code, hex>`.
pub const INVITE_PREFIX: &str = "invite/";
/// What every invite code starts with.
const INVITE_MARK: &str = "ci_";

/// An invite as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    /// Who it signs in.
    pub user: String,
    /// When it was made, ms since 1970.
    pub created_ms: i64,
    /// When it stops working.
    pub expires_ms: i64,
    /// When it was used; it works once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_ms: Option<i64>,
}

/// Why a code does not sign anyone in: each is told to the person holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such code.
    Unknown,
    /// It was used already.
    Used,
    /// It expired.
    Expired,
    /// Its user was offboarded.
    Disabled,
}

impl Refusal {
    /// What the app shows.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => "This sign-in link is not valid. Ask for a new one.",
            Refusal::Used => {
                "This sign-in link was already used. Each link signs in one device: ask for a new one."
            }
            Refusal::Expired => "This sign-in link has expired. Ask for a new one.",
            Refusal::Disabled => "This account can no longer sign in.",
        }
    }
}

fn key(code: &str) -> String {
    format!("{INVITE_PREFIX}{}", hash(code))
}

/// Make an invite for `name`, valid until `expires_ms`: the code (shown once) and
/// the write that keeps it.
pub fn create(
    accounts: &Accounts,
    name: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<(String, StoreWrite)> {
    match accounts.user(name) {
        Some(user) if !user.disabled => {}
        Some(_) => return Err(Error::Usage(format!("{name} was offboarded"))),
        None => return Err(Error::Usage(format!("no user named {name:?}"))),
    }
    let mut random = [0u8; 24];
    rand::rng().fill_bytes(&mut random);
    let code = format!("{INVITE_MARK}{}", bs58::encode(random).into_string());
    let invite = Invite {
        user: name.to_owned(),
        created_ms: now_ms,
        expires_ms,
        used_ms: None,
    };
    let write = StoreWrite::Meta {
        key: key(&code),
        value: serde_json::to_vec(&invite).expect("an invite serializes"),
    };
    Ok((code, write))
}

/// Exchange a code for a new token of its user, once: the invite is marked used and
/// the token stored in one batch, under the accounts' lock so that two devices
/// racing with one link cannot both win. `audit` is the audit entry's write.
pub fn redeem(
    store: &dyn Store,
    accounts: &SharedAccounts,
    code: &str,
    now_ms: i64,
    audit: impl FnOnce(&User) -> StoreWrite,
) -> Result<std::result::Result<(User, String), Refusal>> {
    let mut accounts = accounts.write().expect("accounts lock");
    let key = key(code);
    let Some((_, value)) = store.meta(&key)?.into_iter().find(|(k, _)| *k == key) else {
        return Ok(Err(Refusal::Unknown));
    };
    let mut invite: Invite = serde_json::from_slice(&value)
        .map_err(|e| Error::Usage(format!("an invite record does not decode: {e}")))?;
    if invite.used_ms.is_some() {
        return Ok(Err(Refusal::Used));
    }
    if now_ms >= invite.expires_ms {
        return Ok(Err(Refusal::Expired));
    }
    let user = match accounts.user(&invite.user) {
        Some(user) if !user.disabled => user.clone(),
        _ => return Ok(Err(Refusal::Disabled)),
    };
    let (token, token_write) = accounts.issue_token(&user.name, now_ms, None)?;
    invite.used_ms = Some(now_ms);
    let used = StoreWrite::Meta {
        key,
        value: serde_json::to_vec(&invite).expect("an invite serializes"),
    };
    if let Err(e) = store.commit(&[used, token_write, audit(&user)]) {
        // Memory must match the disk: the token was never stored.
        if let Ok(reloaded) = Accounts::load(store) {
            *accounts = reloaded;
        }
        return Err(e.into());
    }
    Ok(Ok((user, token)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coachsync_core::StorageId;
    use coachsync_core::access::UserRole;
    use coachsync_core::store::MemoryStore;

    use super::*;

    fn site() -> (MemoryStore, SharedAccounts) {
        let store = MemoryStore::new(StorageId::new("s").unwrap());
        let mut accounts = Accounts::default();
        let write = accounts
            .add_user(crate::accounts::tests::user("ana", UserRole::Coach))
            .unwrap();
        store.commit(&[write]).unwrap();
        (store, Arc::new(std::sync::RwLock::new(accounts)))
    }

    fn no_audit(_: &User) -> StoreWrite {
        StoreWrite::Meta {
            key: "audit-test".into(),
            value: Vec::new(),
        }
    }

    #[test]
    fn a_code_signs_in_once_before_it_expires_and_only_its_hash_is_kept() {
        let (store, accounts) = site();
        let (code, write) = create(&accounts.read().unwrap(), "ana", 1_000, 10_000).unwrap();
        store.commit(&[write]).unwrap();
        assert!(code.starts_with(INVITE_MARK));
        let stored = store.meta(INVITE_PREFIX).unwrap();
        assert!(
            stored.iter().all(|(k, v)| {
                !k.contains(&code) && !String::from_utf8_lossy(v).contains(&code)
            })
        );

        let (user, token) = redeem(&store, &accounts, &code, 2_000, no_audit)
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "ana");
        assert!(
            accounts
                .read()
                .unwrap()
                .authenticate(&token, 2_000)
                .is_some()
        );
        // The token survives a restart: it was stored with the invite's use.
        assert!(
            Accounts::load(&store)
                .unwrap()
                .authenticate(&token, 2_000)
                .is_some()
        );

        assert_eq!(
            redeem(&store, &accounts, &code, 2_001, no_audit).unwrap(),
            Err(Refusal::Used)
        );
        assert_eq!(
            redeem(&store, &accounts, "ci_nonsense", 2_001, no_audit).unwrap(),
            Err(Refusal::Unknown)
        );
        let (late, write) = create(&accounts.read().unwrap(), "ana", 1_000, 10_000).unwrap();
        store.commit(&[write]).unwrap();
        assert_eq!(
            redeem(&store, &accounts, &late, 10_000, no_audit).unwrap(),
            Err(Refusal::Expired)
        );
        assert!(create(&accounts.read().unwrap(), "nobody", 0, 1).is_err());
    }
}
