//! Administration: users, tokens, groups and the audit log.
//!
//! sled lets one process hold a data directory, so a running server listens on a
//! Unix socket inside it (`admin.sock`, mode 0600: only the account that owns the
//! data may use it) and `coachsync admin` sends its request there; with no server
//! running, the command opens the store itself. Both run [`Admin::execute`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use coachsync_core::access::{RELATIONSHIP_KEY_PREFIX, Relationship, UserRole};
use coachsync_core::store::{Store, StoreWrite};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::accounts::{RosterChange, SharedAccounts, User};
use crate::audit::{AuditLog, Record};
use crate::driver::{DriverHandle, DriverMsg};
use crate::error::{Error, Result};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// The longest request line read from the socket.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// One administrative request, as sent over the socket (one JSON line).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminRequest {
    /// Add a user and issue their first token.
    UserAdd {
        /// Name.
        name: String,
        /// Role.
        role: UserRole,
        /// Organisation.
        org: String,
        /// Groups.
        groups: Vec<String>,
        /// The token stops working after this many days.
        expires_days: Option<u64>,
    },
    /// List users and their tokens' ids.
    UserList,
    /// Make a one-time sign-in link for a user.
    UserInvite {
        /// The user.
        name: String,
        /// Hours until it stops working.
        expires_hours: u32,
        /// The address the app is opened at; the running server's own if absent.
        #[serde(default)]
        public_url: Option<String>,
    },
    /// Issue another token for a user.
    TokenIssue {
        /// The user.
        name: String,
        /// The token stops working after this many days.
        expires_days: Option<u64>,
    },
    /// Revoke one token (by the token or its id) or every token of a user.
    TokenRevoke {
        /// The token or its id.
        token: Option<String>,
        /// The user.
        user: Option<String>,
    },
    /// Put a user in a group, or take them out.
    Group {
        /// The user.
        user: String,
        /// The group.
        group: String,
        /// In or out.
        member: bool,
    },
    /// Read the audit log.
    Audit {
        /// Entries after this sequence number.
        after: u64,
        /// At most this many.
        limit: usize,
    },
    /// Record a coaching relationship.
    RelationshipAdd {
        /// Its coaches.
        coaches: Vec<String>,
        /// Its clients.
        clients: Vec<String>,
        /// Teams that are clients, by group.
        #[serde(default)]
        client_groups: Vec<String>,
        /// The school.
        school: String,
        /// What the coaching is about.
        focus: Option<String>,
        /// When it starts, `YYYY-MM-DD` (default today).
        start: Option<String>,
        /// Days its members keep read access after it ends.
        read_after_end_days: u32,
    },
    /// List the relationships.
    RelationshipList,
    /// A user leaves: their relationships and documents (but their private notes)
    /// pass to another coach, their tokens are revoked and they sign in no more.
    Offboard {
        /// Who leaves.
        user: String,
        /// The coach who takes over.
        transfer_to: String,
    },
    /// Add or update users from a roster (already checked line by line).
    ImportRoster {
        /// The lines.
        rows: Vec<RosterRow>,
        /// Their organisation.
        org: String,
        /// Only say what would change.
        dry_run: bool,
    },
    /// Purge documents for good: every byte leaves the data directory, and the
    /// devices that hold them drop them at their next sync.
    DocPurge {
        /// The document IDs.
        documents: Vec<String>,
    },
    /// Write a relationship's documents as JSON, for a records request.
    Export {
        /// The relationship.
        relationship: String,
    },
    /// End a relationship: members keep read access for its read period.
    RelationshipEnd {
        /// The relationship.
        id: String,
        /// Change the read period (days) first.
        read_after_end_days: Option<u32>,
    },
    /// Add a member to a relationship, or remove one.
    RelationshipMember {
        /// The relationship.
        id: String,
        /// The user, or the group with `team`.
        user: String,
        /// `user` names a group: a team that is a client.
        #[serde(default)]
        team: bool,
        /// As a client (else as a coach) when adding.
        client: bool,
        /// Add, or remove.
        add: bool,
    },
}

/// One line of a roster file (`name,email,role,school`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterRow {
    /// The user's name.
    pub name: String,
    /// Their email address.
    pub email: String,
    /// Their role.
    pub role: UserRole,
    /// Their school.
    pub school: String,
}

/// What carries out requests: the accounts, the store, the audit log and, in a
/// running server, the driver (to end the sessions of revoked tokens).
#[derive(Clone)]
pub struct Admin {
    /// Users and tokens.
    pub accounts: SharedAccounts,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The running server's driver, if any.
    pub driver: Option<DriverHandle>,
    /// The address the app is opened at, for sign-in links.
    pub public_url: String,
}

/// Where sign-in links point when neither the command nor a running server says.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:3030";

fn expiry(now: i64, days: Option<u64>) -> Option<i64> {
    days.map(|d| now.saturating_add((d as i64).saturating_mul(86_400_000)))
}

impl Admin {
    /// Carry out a request; `from` says where it came from, for the audit log.
    /// Blocking (store writes): call from a blocking thread in async code.
    pub fn execute(&self, request: AdminRequest, from: &str) -> Result<Value> {
        let now = coachsync_core::utc::unix_ms();
        let record =
            |action: &'static str, subject: Option<String>, detail: Option<String>| Record {
                who: "operator".into(),
                action,
                subject,
                from: Some(from.to_owned()),
                detail,
                document: None,
            };
        match request {
            AdminRequest::UserAdd {
                name,
                role,
                org,
                groups,
                expires_days,
            } => {
                let (token, writes) = self.change(|a| {
                    let user = User {
                        name: name.clone(),
                        role,
                        org,
                        groups: groups.into_iter().collect(),
                        email: None,
                        school: None,
                        disabled: false,
                        offboarded_ms: None,
                        created_ms: now,
                    };
                    let w1 = a.add_user(user)?;
                    let (token, w2) = a.issue_token(&name, now, expiry(now, expires_days))?;
                    Ok((token, vec![w1, w2]))
                })?;
                self.commit(
                    writes,
                    vec![record(
                        "user-add",
                        Some(name.clone()),
                        Some(role.to_string()),
                    )],
                )?;
                Ok(json!({ "user": name, "role": role, "token": token }))
            }
            AdminRequest::UserInvite {
                name,
                expires_hours,
                public_url,
            } => {
                let base = match public_url {
                    Some(url) => crate::config::check_public_url(&url)?,
                    None => self.public_url.clone(),
                };
                if expires_hours == 0 {
                    return Err(Error::Usage("--expires-hours must be at least 1".into()));
                }
                let expires_ms = now.saturating_add(i64::from(expires_hours) * 3_600_000);
                let (code, write) = {
                    let accounts = self.accounts.read().expect("accounts lock");
                    crate::invites::create(&accounts, &name, now, expires_ms)?
                };
                self.commit(
                    vec![write],
                    vec![record(
                        "invite",
                        Some(name.clone()),
                        Some(format!("expires in {expires_hours} h")),
                    )],
                )?;
                Ok(json!({
                    "user": name,
                    "link": format!("{base}/#/invite/{code}"),
                    "expiresMs": expires_ms,
                }))
            }
            AdminRequest::UserList => {
                let accounts = self.accounts.read().expect("accounts lock");
                let users: Vec<Value> = accounts
                    .users()
                    .into_iter()
                    .map(|u| {
                        json!({
                            "name": u.name, "role": u.role, "org": u.org, "groups": u.groups,
                            "tokens": accounts.tokens_of(&u.name),
                        })
                    })
                    .collect();
                Ok(Value::Array(users))
            }
            AdminRequest::TokenIssue { name, expires_days } => {
                let (token, writes) = self.change(|a| {
                    let (token, w) = a.issue_token(&name, now, expiry(now, expires_days))?;
                    Ok((token, vec![w]))
                })?;
                self.commit(
                    writes,
                    vec![record("token-issue", Some(name.clone()), None)],
                )?;
                Ok(json!({ "user": name, "token": token }))
            }
            AdminRequest::TokenRevoke { token, user } => {
                let (ids, writes) = self.change(|a| a.revoke(token.as_deref(), user.as_deref()))?;
                self.commit(
                    writes,
                    vec![record("token-revoke", user.clone(), Some(ids.join(",")))],
                )?;
                self.end_sessions(ids.clone(), Vec::new());
                Ok(json!({ "revoked": ids }))
            }
            AdminRequest::Group {
                user,
                group,
                member,
            } => {
                let ((), writes) =
                    self.change(|a| Ok(((), vec![a.set_group(&user, &group, member)?])))?;
                let action = if member { "group-add" } else { "group-remove" };
                self.commit(
                    writes,
                    vec![record(action, Some(user.clone()), Some(group.clone()))],
                )?;
                // Connections carry the groups they started with: end them, and the
                // devices reconnect with the new ones.
                self.end_sessions(Vec::new(), vec![user.clone()]);
                Ok(json!({ "user": user, "group": group, "member": member }))
            }
            AdminRequest::Audit { after, limit } => {
                let entries = AuditLog::read(&*self.store, after, limit)?;
                Ok(serde_json::to_value(entries).expect("entries serialize"))
            }
            AdminRequest::ImportRoster { rows, org, dry_run } => {
                let mut accounts = self.accounts.write().expect("accounts lock");
                let mut plan = Vec::new();
                for row in &rows {
                    let line = User {
                        name: row.name.clone(),
                        role: row.role,
                        org: org.clone(),
                        groups: BTreeSet::new(),
                        email: Some(row.email.clone()),
                        school: Some(row.school.clone()),
                        disabled: false,
                        offboarded_ms: None,
                        created_ms: now,
                    };
                    plan.push(accounts.plan_roster(&line));
                }
                let changes: Vec<Value> = plan
                    .iter()
                    .map(|(change, user)| json!({ "user": user.name, "change": change }))
                    .collect();
                let updated: Vec<String> = plan
                    .iter()
                    .filter(|(change, _)| *change == RosterChange::Updated)
                    .map(|(_, user)| user.name.clone())
                    .collect();
                let changed: Vec<User> = plan
                    .into_iter()
                    .filter(|(change, _)| *change != RosterChange::Unchanged)
                    .map(|(_, user)| user)
                    .collect();
                if !dry_run && !changed.is_empty() {
                    let mut writes = Vec::new();
                    for user in &changed {
                        writes.push(accounts.put_user(user.clone())?);
                    }
                    drop(accounts);
                    let detail = format!("{} users added or updated", changed.len());
                    self.commit(writes, vec![record("roster-import", None, Some(detail))])?;
                    // Connections carry the role they started with.
                    self.end_sessions(Vec::new(), updated);
                }
                Ok(json!({ "dryRun": dry_run, "changes": changes }))
            }
            AdminRequest::Offboard { user, transfer_to } => {
                let successor = {
                    let accounts = self.accounts.read().expect("accounts lock");
                    if accounts.user(&user).is_none() {
                        return Err(Error::Usage(format!("no user named {user:?}")));
                    }
                    let to = accounts
                        .user(&transfer_to)
                        .filter(|u| !u.disabled)
                        .ok_or_else(|| Error::Usage(format!("no user named {transfer_to:?}")))?;
                    if to.role != UserRole::Coach || user == transfer_to {
                        return Err(Error::Usage(format!(
                            "{transfer_to} cannot take over: hand a coach's work to another coach"
                        )));
                    }
                    to.principal()
                };
                // Sign-in first, so nothing more arrives from the departing user.
                let (revoked, mut writes) = self.change(|a| {
                    let (ids, mut writes) = a.revoke(None, Some(&user))?;
                    writes.push(a.disable(&user, now)?);
                    Ok((ids, writes))
                })?;
                let mut relationships = Vec::new();
                for mut r in self.relationships()? {
                    if r.coaches.remove(&user) {
                        r.coaches.insert(transfer_to.clone());
                        writes.push(r.store_write());
                        relationships.push(r);
                    }
                }
                let detail = format!(
                    "to {transfer_to}; {} relationships; tokens {}",
                    relationships.len(),
                    revoked.join(",")
                );
                self.commit(
                    writes,
                    vec![record("offboard", Some(user.clone()), Some(detail))],
                )?;
                self.end_sessions(revoked, vec![user.clone()]);
                for r in &relationships {
                    self.notify_relationship(r);
                }
                let documents = self.transfer_documents(&user, successor)?;
                Ok(json!({
                    "user": user,
                    "transferTo": transfer_to,
                    "relationships": relationships.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                    "documents": documents,
                }))
            }
            AdminRequest::DocPurge { documents } => {
                let documents = crate::purge::check_purgeable(&*self.store, &documents)?;
                let report = crate::purge::purge(
                    &*self.store,
                    &self.audit,
                    self.driver.as_ref(),
                    documents.clone(),
                    "operator",
                    from,
                )?;
                Ok(json!({
                    "purged": documents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "bytesBefore": report.bytes_before,
                    "bytesAfter": report.bytes_after,
                }))
            }
            AdminRequest::Export { relationship } => {
                let relationship = self.relationship(&relationship)?;
                let export = crate::export::export_relationship(&*self.store, &relationship)?;
                let count = export["documents"].as_array().map_or(0, Vec::len);
                self.commit(
                    Vec::new(),
                    vec![record(
                        "export",
                        Some(relationship.id.clone()),
                        Some(format!("{count} documents")),
                    )],
                )?;
                Ok(export)
            }
            AdminRequest::RelationshipList => {
                Ok(serde_json::to_value(self.relationships()?).expect("relationships serialize"))
            }
            AdminRequest::RelationshipAdd {
                coaches,
                clients,
                client_groups,
                school,
                focus,
                start,
                read_after_end_days,
            } => {
                if coaches.is_empty() || (clients.is_empty() && client_groups.is_empty()) {
                    return Err(Error::Usage(
                        "a relationship needs at least one --coach and one --client or --client-group"
                            .into(),
                    ));
                }
                for group in &client_groups {
                    crate::accounts::check_name("group", group)?;
                }
                let org = {
                    let accounts = self.accounts.read().expect("accounts lock");
                    for name in coaches.iter().chain(&clients) {
                        if accounts.user(name).is_none() {
                            return Err(Error::Usage(format!("no user named {name:?}")));
                        }
                    }
                    accounts
                        .user(&coaches[0])
                        .map(|u| u.org.clone())
                        .unwrap_or_default()
                };
                let start = match start {
                    Some(date) => check_date(&date)?,
                    None => coachsync_core::utc::rfc3339(SystemTime::now())[..10].to_owned(),
                };
                let mut random = [0u8; 6];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
                let id = format!(
                    "rel-{}",
                    random
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                let relationship = Relationship {
                    id: id.clone(),
                    org,
                    coaches: coaches.into_iter().collect(),
                    clients: clients.into_iter().collect(),
                    client_groups: client_groups.into_iter().collect(),
                    school,
                    focus,
                    start,
                    ended_ms: None,
                    read_after_end_days,
                    created_ms: now,
                };
                self.save_relationship(
                    &relationship,
                    record("relationship-add", None, Some(id.clone())),
                )?;
                Ok(serde_json::to_value(&relationship).expect("a relationship serializes"))
            }
            AdminRequest::RelationshipEnd {
                id,
                read_after_end_days,
            } => {
                let mut relationship = self.relationship(&id)?;
                if relationship.ended_ms.is_some() {
                    return Err(Error::Usage(format!("relationship {id} has already ended")));
                }
                relationship.ended_ms = Some(now);
                if let Some(days) = read_after_end_days {
                    relationship.read_after_end_days = days;
                }
                let detail = format!("{id}; read for {} days", relationship.read_after_end_days);
                self.save_relationship(
                    &relationship,
                    record("relationship-end", None, Some(detail)),
                )?;
                Ok(serde_json::to_value(&relationship).expect("a relationship serializes"))
            }
            AdminRequest::RelationshipMember {
                id,
                user,
                team,
                client,
                add,
            } => {
                let mut relationship = self.relationship(&id)?;
                if team {
                    crate::accounts::check_name("group", &user)?;
                    let changed = if add {
                        relationship.client_groups.insert(user.clone())
                    } else {
                        relationship.client_groups.remove(&user)
                    };
                    if !changed {
                        return Err(Error::Usage(format!(
                            "group {user} is {} a client team of {id}",
                            if add { "already" } else { "not" }
                        )));
                    }
                    let action = if add {
                        "relationship-team-add"
                    } else {
                        "relationship-team-remove"
                    };
                    self.save_relationship(&relationship, record(action, Some(user), Some(id)))?;
                    return Ok(
                        serde_json::to_value(&relationship).expect("a relationship serializes")
                    );
                }
                if add {
                    if self
                        .accounts
                        .read()
                        .expect("accounts lock")
                        .user(&user)
                        .is_none()
                    {
                        return Err(Error::Usage(format!("no user named {user:?}")));
                    }
                    if client {
                        relationship.clients.insert(user.clone());
                    } else {
                        relationship.coaches.insert(user.clone());
                    }
                } else if !relationship.coaches.remove(&user) & !relationship.clients.remove(&user)
                {
                    return Err(Error::Usage(format!("{user} is not a member of {id}")));
                }
                let action = if add {
                    "relationship-member-add"
                } else {
                    "relationship-member-remove"
                };
                self.save_relationship(&relationship, record(action, Some(user), Some(id)))?;
                Ok(serde_json::to_value(&relationship).expect("a relationship serializes"))
            }
        }
    }

    /// Apply a change to the accounts in memory; the caller commits its writes.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut crate::accounts::Accounts) -> Result<(T, Vec<StoreWrite>)>,
    ) -> Result<(T, Vec<StoreWrite>)> {
        let mut accounts = self.accounts.write().expect("accounts lock");
        f(&mut accounts)
    }

    /// Store account writes with their audit entries, in one batch. If the store
    /// fails, the accounts are read back so that memory matches the disk.
    fn commit(&self, mut writes: Vec<StoreWrite>, audit: Vec<Record>) -> Result<()> {
        writes.extend(audit.into_iter().map(|r| self.audit.write(r)));
        if let Err(e) = self.store.commit(&writes) {
            if let Ok(reloaded) = crate::accounts::Accounts::load(&*self.store) {
                *self.accounts.write().expect("accounts lock") = reloaded;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Every relationship, as stored.
    fn relationships(&self) -> Result<Vec<Relationship>> {
        Ok(self
            .store
            .meta(RELATIONSHIP_KEY_PREFIX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    fn relationship(&self, id: &str) -> Result<Relationship> {
        let key = format!("{RELATIONSHIP_KEY_PREFIX}{id}");
        self.store
            .meta(&key)?
            .into_iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| serde_json::from_slice(&v).ok())
            .ok_or_else(|| Error::Usage(format!("no relationship {id:?}")))
    }

    /// Store a relationship with its audit entry, then let the running server's
    /// engine apply it (connections that lost access stop receiving at once).
    fn save_relationship(&self, relationship: &Relationship, audit: Record) -> Result<()> {
        self.commit(vec![relationship.store_write()], vec![audit])?;
        self.notify_relationship(relationship);
        Ok(())
    }

    fn notify_relationship(&self, relationship: &Relationship) {
        if let Some(driver) = &self.driver
            && let Err(e) = driver.try_send(DriverMsg::Relationship(relationship.clone()))
        {
            tracing::error!(error = %e, "the running server did not take a relationship change; it applies at restart");
        }
    }

    /// Hand a departing user's documents to `to`: through the running server's
    /// engine (which owns the access records and detaches the user at once), or in
    /// the store when none runs. Returns how many moved.
    fn transfer_documents(
        &self,
        from: &str,
        to: coachsync_core::access::Principal,
    ) -> Result<usize> {
        match &self.driver {
            Some(driver) => Ok(crate::driver::ask_blocking(driver, |reply| {
                DriverMsg::Transfer {
                    from: from.to_owned(),
                    to,
                    reply,
                }
            })??),
            None => {
                let mut book = coachsync_core::access::AccessBook::load(&*self.store)?;
                let writes: Vec<StoreWrite> = book
                    .transfer(from, &to)
                    .into_iter()
                    .map(|(_, w)| w)
                    .collect();
                let moved = writes.len();
                self.store.commit(&writes)?;
                Ok(moved)
            }
        }
    }

    fn end_sessions(&self, tokens: Vec<String>, users: Vec<String>) {
        if let Some(driver) = &self.driver
            && let Err(e) = driver.try_send(DriverMsg::EndSessions { tokens, users })
        {
            tracing::warn!(error = %e, "could not end the sessions of a revoked token");
        }
    }
}

/// A date as `YYYY-MM-DD`.
fn check_date(date: &str) -> Result<String> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (1..=12).contains(&date[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&date[8..10].parse::<u8>().unwrap_or(0));
    if ok {
        Ok(date.to_owned())
    } else {
        Err(Error::Usage(format!(
            "{date:?} is not a date like 2026-09-01"
        )))
    }
}

/// The socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Serve the admin socket until the task is dropped.
pub async fn serve_socket(listener: tokio::net::UnixListener, admin: Admin) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST_BYTES));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = match serde_json::from_str::<AdminRequest>(&line) {
                Ok(request) => {
                    let admin = admin.clone();
                    match tokio::task::spawn_blocking(move || {
                        admin.execute(request, "admin socket")
                    })
                    .await
                    {
                        Ok(Ok(value)) => json!({ "ok": value }),
                        Ok(Err(e)) => json!({ "error": e.to_string() }),
                        Err(e) => json!({ "error": format!("the request failed: {e}") }),
                    }
                }
                Err(e) => json!({ "error": format!("bad request: {e}") }),
            };
            let mut out = reply.to_string();
            out.push('\n');
            let _ = write.write_all(out.as_bytes()).await;
        });
    }
}

/// Bind the admin socket in the data directory, readable by its owner only. A
/// socket file left by a server that stopped without cleaning up is replaced (the
/// store's lock already proved no other server holds this directory).
pub fn bind_socket(data_dir: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot replace {}: {e}",
                path.display()
            )));
        }
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Send a request to a running server's socket. `Ok(None)` when no server listens
/// there (no socket, or nobody accepting).
pub async fn send(data_dir: &Path, request: &AdminRequest) -> Result<Option<Value>> {
    let path = socket_path(data_dir);
    let mut stream = match tokio::net::UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "cannot reach the server at {}: {e}",
                path.display()
            )));
        }
    };
    let mut line = serde_json::to_string(request).expect("a request serializes");
    line.push('\n');
    stream.write_all(line.as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    let reply: Value = serde_json::from_str(&reply)
        .map_err(|e| Error::Usage(format!("the server's answer is not JSON: {e}")))?;
    match (reply.get("ok"), reply.get("error")) {
        (Some(ok), _) => Ok(Some(ok.clone())),
        (None, Some(Value::String(e))) => Err(Error::Usage(e.clone())),
        _ => Err(Error::Usage(
            "the server's answer has neither ok nor error".into(),
        )),
    }
}
