//! `coachsync admin`: through the running server's admin socket, or on the store
//! directly when no server holds the data directory.

use std::io::Write;
use std::sync::Arc;

use coachsync_core::access::UserRole;
use coachsync_core::store::{SledOptions, SledStore, Store};
use serde_json::Value;

use crate::accounts::Accounts;
use crate::admin::{Admin, AdminRequest, RosterRow};
use crate::audit::AuditLog;
use crate::cli::{
    AdminArgs, AdminCommand, DocCommand, GroupCommand, RelationshipCommand, TokenCommand,
    UserCommand,
};
use crate::error::{Error, Result};
use crate::pg_store::{DatabaseUrl, PgOptions, PostgresStore};

/// Run one admin command, writing its answer to `out`.
pub async fn run(args: AdminArgs, out: &mut impl Write) -> Result<()> {
    if matches!(args.command, AdminCommand::MigrateStore) {
        return migrate_store(&args, out).await;
    }
    let mut request = request(&args.command)?;
    if let AdminRequest::UserInvite { public_url, .. } = &mut request {
        public_url.clone_from(&args.public_url);
    }
    // Checked before anything else, so that a bad URL is reported as such even while
    // a server answers on the socket.
    let database = args
        .database_url
        .as_deref()
        .map(DatabaseUrl::parse)
        .transpose()?;
    let answer = match crate::admin::send(&args.data_dir, &request).await? {
        Some(answer) => answer,
        None => {
            let dir = args.data_dir.clone();
            tokio::task::spawn_blocking(move || execute_offline(&dir, database.as_ref(), request))
                .await
                .map_err(|e| Error::Usage(format!("the command failed: {e}")))??
        }
    };
    print(&args.command, &answer, out)
}

fn request(command: &AdminCommand) -> Result<AdminRequest> {
    Ok(match command.clone() {
        AdminCommand::MigrateStore => {
            return Err(Error::Usage(
                "migrate-store is not a request to a server".into(),
            ));
        }
        AdminCommand::User(UserCommand::Add {
            name,
            role,
            org,
            groups,
            expires_days,
        }) => AdminRequest::UserAdd {
            name,
            role: UserRole::parse(&role).map_err(|e| Error::Usage(e.to_string()))?,
            org,
            groups,
            expires_days,
        },
        AdminCommand::User(UserCommand::List) => AdminRequest::UserList,
        AdminCommand::User(UserCommand::Invite {
            name,
            expires_hours,
        }) => AdminRequest::UserInvite {
            name,
            expires_hours,
            public_url: None,
        },
        AdminCommand::User(UserCommand::Offboard { name, transfer_to }) => AdminRequest::Offboard {
            user: name,
            transfer_to,
        },
        AdminCommand::Token(TokenCommand::Create { name, expires_days }) => {
            AdminRequest::TokenIssue { name, expires_days }
        }
        AdminCommand::Token(TokenCommand::Revoke { token, user }) => {
            AdminRequest::TokenRevoke { token, user }
        }
        AdminCommand::Group(GroupCommand::Add { group, user }) => AdminRequest::Group {
            user,
            group,
            member: true,
        },
        AdminCommand::Group(GroupCommand::Remove { group, user }) => AdminRequest::Group {
            user,
            group,
            member: false,
        },
        AdminCommand::Audit { after, limit } => AdminRequest::Audit { after, limit },
        AdminCommand::Doc(DocCommand::Purge { documents }) => AdminRequest::DocPurge {
            documents: documents
                .iter()
                .map(|d| d.strip_prefix("automerge:").unwrap_or(d).to_owned())
                .collect(),
        },
        AdminCommand::Export { relationship, .. } => AdminRequest::Export {
            relationship: relationship.clone(),
        },
        AdminCommand::ImportRoster { file, org, dry_run } => {
            crate::accounts::check_name("organisation", &org)?;
            AdminRequest::ImportRoster {
                rows: read_roster(&file)?,
                org,
                dry_run,
            }
        }
        AdminCommand::Relationship(RelationshipCommand::Add {
            coaches,
            clients,
            client_groups,
            school,
            focus,
            start,
            read_days,
        }) => AdminRequest::RelationshipAdd {
            coaches,
            clients,
            client_groups,
            school,
            focus,
            start,
            read_after_end_days: read_days,
        },
        AdminCommand::Relationship(RelationshipCommand::List) => AdminRequest::RelationshipList,
        AdminCommand::Relationship(RelationshipCommand::End { id, read_days }) => {
            AdminRequest::RelationshipEnd {
                id,
                read_after_end_days: read_days,
            }
        }
        AdminCommand::Relationship(RelationshipCommand::AddMember {
            id,
            user,
            role,
            client_group,
        }) => AdminRequest::RelationshipMember {
            id,
            team: client_group.is_some(),
            client: client_group.is_some() || role.as_deref() == Some("client"),
            user: client_group.or(user).unwrap_or_default(),
            add: true,
        },
        AdminCommand::Relationship(RelationshipCommand::RemoveMember {
            id,
            user,
            client_group,
        }) => AdminRequest::RelationshipMember {
            id,
            team: client_group.is_some(),
            client: false,
            user: client_group.or(user).unwrap_or_default(),
            add: false,
        },
    })
}

/// `admin migrate-store`: the sled store in the data directory into the database.
async fn migrate_store(args: &AdminArgs, out: &mut impl Write) -> Result<()> {
    let Some(url) = args.database_url.as_deref() else {
        return Err(Error::Usage(
            "migrate-store needs --database-url (or COACHSYNC_DATABASE_URL): the database to copy the data directory into".into(),
        ));
    };
    let url = DatabaseUrl::parse(url)?;
    let dir = args.data_dir.clone();
    if !dir.join("db").is_file() {
        return Err(Error::Usage(format!(
            "there is no embedded store to migrate in {}",
            dir.display()
        )));
    }
    if tokio::net::UnixStream::connect(dir.join(crate::admin::SOCKET_NAME))
        .await
        .is_ok()
    {
        return Err(Error::Usage(format!(
            "a server is running on {}: stop it first, so that nothing changes during the copy",
            dir.display()
        )));
    }
    let report = tokio::task::spawn_blocking(move || -> Result<_> {
        let source = SledStore::open(&dir, &SledOptions::default(), crate::server::new_storage_id)?;
        let target = PostgresStore::open(
            &url,
            &PgOptions {
                pool_size: 2,
                ..PgOptions::default()
            },
            crate::server::new_storage_id,
        )?;
        crate::migrate_store::migrate(&source, &target)
    })
    .await
    .map_err(|e| Error::Usage(format!("the migration failed: {e}")))??;
    writeln!(out, "{report}")?;
    Ok(())
}

/// No server runs on the data directory: open the store (the sled store there, or
/// the PostgreSQL database), carry out the request, close it.
///
/// With PostgreSQL, servers using the same database from other data directories or
/// machines apply these changes at once: the store's commits notify them, whoever
/// makes them.
fn execute_offline(
    dir: &std::path::Path,
    database: Option<&DatabaseUrl>,
    request: AdminRequest,
) -> Result<Value> {
    let store: Arc<dyn Store> = match database {
        Some(url) => Arc::new(PostgresStore::open(
            url,
            &PgOptions {
                pool_size: 2,
                ..PgOptions::default()
            },
            crate::server::new_storage_id,
        )?),
        None => open_sled(dir, &request)?,
    };
    let accounts = Accounts::load(store.as_ref())?;
    let audit = if database.is_some() {
        AuditLog::open_shared(store.as_ref())?
    } else {
        AuditLog::open(store.as_ref())?
    };
    let admin = Admin {
        accounts: Arc::new(std::sync::RwLock::new(accounts)),
        store,
        audit: Arc::new(audit),
        driver: None,
        public_url: crate::admin::DEFAULT_PUBLIC_URL.to_owned(),
    };
    admin.execute(request, "admin command")
}

/// The sled store in the data directory.
fn open_sled(dir: &std::path::Path, request: &AdminRequest) -> Result<Arc<dyn Store>> {
    // A store is created only by commands that create something.
    let creates = matches!(
        request,
        AdminRequest::UserAdd { .. }
            | AdminRequest::TokenIssue { .. }
            | AdminRequest::ImportRoster { .. }
    );
    if !creates && !dir.join("db").exists() && !dir.exists() {
        return Err(Error::Usage(format!(
            "no data directory at {}",
            dir.display()
        )));
    }
    Ok(Arc::new(SledStore::open(
        dir,
        &SledOptions::default(),
        crate::server::new_storage_id,
    )?))
}

/// `id <TAB> school <TAB> coaches: … <TAB> clients: … <TAB> start <TAB> active|ended …`.
fn relationship_line(r: &Value) -> String {
    let names = |k: &str| -> String {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let state = match r["endedMs"].as_i64() {
        Some(ms) => format!(
            "ended {} (read for {} days)",
            coachsync_core::utc::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
            ),
            r["readAfterEndDays"]
        ),
        None => "active".to_owned(),
    };
    format!(
        "{}\t{}\tcoaches: {}\tclients: {}\tfrom {}\t{state}",
        r["id"].as_str().unwrap_or_default(),
        r["school"].as_str().unwrap_or_default(),
        names("coaches"),
        [names("clients"), names("clientGroups")]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        r["start"].as_str().unwrap_or_default(),
    )
}

/// The columns a roster has, in any order.
const ROSTER_COLUMNS: [&str; 4] = ["name", "email", "role", "school"];

/// Read and check a roster file; every problem, with its line number, or the rows.
pub fn read_roster(path: &std::path::Path) -> Result<Vec<RosterRow>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse_roster(file, &path.display().to_string())
}

fn parse_roster(input: impl std::io::Read, name: &str) -> Result<Vec<RosterRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| Error::Usage(format!("{name}: {e}")))?
        .clone();
    let column = |wanted: &str| headers.iter().position(|h| h == wanted);
    let columns: Vec<Option<usize>> = ROSTER_COLUMNS.iter().map(|c| column(c)).collect();
    if columns.iter().any(Option::is_none) || headers.len() != ROSTER_COLUMNS.len() {
        return Err(Error::Usage(format!(
            "{name}: line 1: the header must be {}, not {}",
            ROSTER_COLUMNS.join(","),
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let columns: Vec<usize> = columns.into_iter().flatten().collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(columns[i]).unwrap_or("").to_owned();
        let (name, email, role, school) = (field(0), field(1), field(2), field(3));
        let mut problem = |what: String| problems.push(format!("line {line}: {what}"));
        if let Err(e) = crate::accounts::check_name("user name", &name) {
            problem(e.to_string());
            continue;
        }
        if !seen.insert(name.clone()) {
            problem(format!("{name} is listed twice"));
            continue;
        }
        if !email.contains('@') || email.contains(char::is_whitespace) {
            problem(format!("{email:?} is not an email address"));
            continue;
        }
        let role = match UserRole::parse(&role) {
            Ok(r) => r,
            Err(e) => {
                problem(e.to_string());
                continue;
            }
        };
        if school.is_empty() {
            problem("the school is empty".into());
            continue;
        }
        rows.push(RosterRow {
            name,
            email,
            role,
            school,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(Error::Usage(format!(
            "{name}: nothing imported:\n  {}",
            problems.join("\n  ")
        )))
    }
}

fn print(command: &AdminCommand, answer: &Value, out: &mut impl Write) -> Result<()> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match command {
        AdminCommand::User(UserCommand::Add { .. }) => {
            writeln!(
                out,
                "user {} ({}) added; their bearer token (shown once, keep it secret):",
                text(answer, "user"),
                text(answer, "role")
            )?;
            writeln!(out, "{}", text(answer, "token"))?;
        }
        AdminCommand::Token(TokenCommand::Create { .. }) => {
            writeln!(
                out,
                "a new token for {} (shown once):",
                text(answer, "user")
            )?;
            writeln!(out, "{}", text(answer, "token"))?;
        }
        AdminCommand::Token(TokenCommand::Revoke { .. }) => {
            let ids: Vec<&str> = answer["revoked"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            writeln!(out, "revoked {} token(s): {}", ids.len(), ids.join(" "))?;
        }
        AdminCommand::User(UserCommand::List) => {
            for user in answer.as_array().into_iter().flatten() {
                let groups: Vec<&str> = user["groups"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let tokens: Vec<&str> = user["tokens"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|t| t["id"].as_str()).collect())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}\t{}\t{}\tgroups: {}\ttokens: {}",
                    text(user, "name"),
                    text(user, "role"),
                    text(user, "org"),
                    groups.join(","),
                    tokens.join(",")
                )?;
            }
        }
        AdminCommand::Group(GroupCommand::Add { group, user }) => {
            writeln!(out, "{user} is in group {group}")?;
        }
        AdminCommand::Group(GroupCommand::Remove { group, user }) => {
            writeln!(out, "{user} is no longer in group {group}")?;
        }
        AdminCommand::MigrateStore => writeln!(out, "{answer}")?,
        AdminCommand::Audit { .. } => {
            for entry in answer.as_array().into_iter().flatten() {
                writeln!(out, "{entry}")?;
            }
        }
        AdminCommand::User(UserCommand::Offboard { name, transfer_to }) => {
            let rels = answer["relationships"].as_array().map_or(0, Vec::len);
            writeln!(
                out,
                "{name} offboarded: {} documents and {rels} relationships passed to {transfer_to}; their tokens are revoked and their private notes stay unreadable",
                answer["documents"]
            )?;
        }
        AdminCommand::ImportRoster { .. } => {
            let changes = answer["changes"].as_array().cloned().unwrap_or_default();
            let count = |what: &str| changes.iter().filter(|c| c["change"] == what).count();
            for c in &changes {
                if c["change"] != "unchanged" {
                    writeln!(out, "{}\t{}", text(c, "change"), text(c, "user"))?;
                }
            }
            let dry = if answer["dryRun"] == true {
                " (dry run: nothing was changed)"
            } else {
                ""
            };
            writeln!(
                out,
                "{} added, {} updated, {} unchanged{dry}",
                count("added"),
                count("updated"),
                count("unchanged")
            )?;
        }
        AdminCommand::User(UserCommand::Invite { name, .. }) => {
            writeln!(
                out,
                "one-time sign-in link for {name}, valid until {} (open it on the device to sign in):",
                coachsync_core::utc::rfc3339(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(
                            answer["expiresMs"].as_i64().unwrap_or(0).max(0) as u64
                        )
                )
            )?;
            writeln!(out, "{}", text(answer, "link"))?;
        }
        AdminCommand::Doc(DocCommand::Purge { .. }) => {
            for id in answer["purged"].as_array().into_iter().flatten() {
                writeln!(out, "purged {}", id.as_str().unwrap_or_default())?;
            }
            writeln!(
                out,
                "store rewritten: {} bytes before, {} after",
                answer["bytesBefore"], answer["bytesAfter"]
            )?;
        }
        AdminCommand::Export { out: file, .. } => {
            let text = serde_json::to_string_pretty(answer).expect("JSON serializes");
            match file {
                Some(path) => {
                    std::fs::write(path, text + "\n").map_err(|e| {
                        Error::Usage(format!("cannot write {}: {e}", path.display()))
                    })?;
                    writeln!(
                        out,
                        "{} documents written to {}",
                        answer["documents"].as_array().map_or(0, Vec::len),
                        path.display()
                    )?;
                }
                None => writeln!(out, "{text}")?,
            }
        }
        AdminCommand::Relationship(RelationshipCommand::List) => {
            for r in answer.as_array().into_iter().flatten() {
                writeln!(out, "{}", relationship_line(r))?;
            }
        }
        AdminCommand::Relationship(RelationshipCommand::Add { .. }) => {
            writeln!(out, "relationship recorded: {}", relationship_line(answer))?;
            writeln!(out, "{}", text(answer, "id"))?;
        }
        AdminCommand::Relationship(_) => {
            writeln!(out, "{}", relationship_line(answer))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_with_a_bad_line_names_each_problem_and_imports_nothing() {
        let csv = "name,email,role,school\n\
                   ana,ana@district.example,coach,North\n\
                   bad name,x@district.example,coach,North\n\
                   lee,not-an-email,client,North\n\
                   kim,kim@district.example,wizard,South\n\
                   ana,ana2@district.example,coach,North\n";
        let e = parse_roster(csv.as_bytes(), "roster.csv")
            .unwrap_err()
            .to_string();
        for expected in [
            "line 3:", "line 4:", "line 5:", "line 6:", "wizard", "twice",
        ] {
            assert!(e.contains(expected), "{expected} in {e}");
        }
        assert!(!e.contains("line 2:"), "{e}");
    }

    #[test]
    fn columns_may_come_in_any_order_but_must_all_be_there() {
        let rows = parse_roster(
            "school,role,name,email\nNorth,coach,ana,ana@d.example\n".as_bytes(),
            "r.csv",
        )
        .unwrap();
        assert_eq!(rows[0].name, "ana");
        assert_eq!(rows[0].role, UserRole::Coach);
        let e = parse_roster("name,email,role\nana,a@d,coach\n".as_bytes(), "r.csv").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
