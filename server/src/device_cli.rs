//! `coachsync device`: a terminal device over the core's device runtime, for people
//! without a phone and for tests.

use std::io::{Read, Write};
use std::time::Duration;

use coachsync_core::access::{Access, Subject};
use coachsync_core::device::{Backoff, Connection};
use coachsync_core::domain;
use coachsync_core::json::JsonPath;
use coachsync_core::{AutomergeUrl, Device, DeviceConfig, DocumentId, DocumentStatus, Status};

use crate::cli::{DeviceArgs, DeviceCommand};
use crate::error::{Error, Result};

/// Run one device command, writing its output to `out`.
pub async fn run(args: DeviceArgs, stdin: impl Read, out: &mut impl Write) -> Result<()> {
    // Check everything the command was given before opening the store, so bad
    // input changes nothing.
    match &args.command {
        DeviceCommand::Create { kind } => {
            let mut value = read_object(stdin)?;
            if let Some(name) = kind {
                value = domain::as_kind(value, name)?;
            }
            let device = open(&args, false).await?;
            let result = device.create(value).await;
            device.close().await?;
            writeln!(out, "{}", result?.url())?;
        }
        DeviceCommand::Show { url } => {
            let document = parse_url(url)?;
            let device = open(&args, false).await?;
            let value = device.value(&document).await;
            device.close().await?;
            // As an app sees it: an older coaching document migrated.
            writeln!(out, "{}", pretty(&domain::current(&value?))?)?;
        }
        DeviceCommand::Set { url, path, json } | DeviceCommand::Push { url, path, json } => {
            let document = parse_url(url)?;
            let path: JsonPath = path.parse()?;
            let value: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| Error::Usage(format!("the value is not valid JSON: {e}")))?;
            let device = open(&args, false).await?;
            let result = if matches!(args.command, DeviceCommand::Set { .. }) {
                device.set(&document, &path, value).await
            } else {
                device.push(&document, &path, value).await
            };
            device.close().await?;
            result?;
        }
        DeviceCommand::Kinds => {
            for kind in domain::KINDS {
                writeln!(
                    out,
                    "{}\tv{}\t{}\t{}",
                    kind.name,
                    kind.version,
                    kind.visibility.as_str(),
                    kind.doc
                )?;
            }
        }
        DeviceCommand::Template { kind } => {
            let kind = known_kind(kind)?;
            let example = domain::example(kind.name).expect("every kind has an example");
            writeln!(out, "{}", pretty(&example)?)?;
        }
        DeviceCommand::Schema { kind } => {
            let kind = known_kind(kind)?;
            writeln!(out, "{}", pretty(&domain::json_schema(kind))?)?;
        }
        DeviceCommand::List { kind } => {
            if let Some(name) = kind {
                known_kind(name)?;
            }
            let device = open(&args, false).await?;
            let listed = device.summaries(kind.as_deref()).await;
            device.close().await?;
            for summary in listed? {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    summary.status.document.url(),
                    summary.kind.unwrap_or("-"),
                    summary.title.unwrap_or_default()
                )?;
            }
        }
        DeviceCommand::Status => {
            let device = open(&args, false).await?;
            let statuses = device.statuses().await;
            device.close().await?;
            for status in statuses? {
                writeln!(out, "{}", status_line(&status))?;
            }
        }
        DeviceCommand::Fetch { url, timeout } => {
            let document = parse_url(url)?;
            let device = open(&args, true).await?;
            let result = within(&device, &args, *timeout, device.fetch(&document)).await;
            device.close().await?;
            result?;
        }
        DeviceCommand::Grant {
            url,
            user,
            group,
            access,
        } => {
            let document = parse_url(url)?;
            let subject = subject(user, group)?;
            let access = Access::parse(access)?;
            let device = open(&args, true).await?;
            let result = device.grant(&document, &subject, Some(access)).await;
            device.close().await?;
            result?;
            writeln!(out, "{subject} may {} {}", access.as_str(), document.url())?;
        }
        DeviceCommand::Revoke { url, user, group } => {
            let document = parse_url(url)?;
            let subject = subject(user, group)?;
            let device = open(&args, true).await?;
            let result = device.grant(&document, &subject, None).await;
            device.close().await?;
            result?;
            writeln!(out, "{subject} no longer has a grant on {}", document.url())?;
        }
        DeviceCommand::Sync { timeout } => {
            let device = open(&args, true).await?;
            let result = within(&device, &args, *timeout, device.wait_synced()).await;
            let statuses = device.statuses().await;
            device.close().await?;
            result?;
            let safe = statuses?
                .iter()
                .filter(|s| s.status == Status::SafeOnServer)
                .count();
            let noun = if safe == 1 { "document" } else { "documents" };
            writeln!(out, "{safe} {noun} safe on the server")?;
        }
    }
    Ok(())
}

fn subject(user: &Option<String>, group: &Option<String>) -> Result<Subject> {
    match (user, group) {
        (Some(user), None) => Ok(Subject::User(user.clone())),
        (None, Some(group)) => Ok(Subject::Group(group.clone())),
        _ => Err(Error::Usage("give --user or --group".into())),
    }
}

async fn open(args: &DeviceArgs, with_server: bool) -> Result<Device> {
    let mut config = DeviceConfig::new(&args.data_dir);
    config.token = args.token.clone();
    if with_server {
        let Some(server) = &args.server else {
            return Err(Error::Usage(
                "no server: pass --server ws://HOST:PORT/sync or set COACHSYNC_SERVER".into(),
            ));
        };
        config = config.with_server(server);
        // A command waits for the server: retry soon rather than back off for long.
        config.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2), 0.5);
        config.connect_timeout = Duration::from_secs(5);
    }
    Ok(Device::open(config).await?)
}

/// Wait for `work`, or fail after `secs` with what stopped it.
async fn within(
    device: &Device,
    args: &DeviceArgs,
    secs: u64,
    work: impl Future<Output = coachsync_core::Result<()>>,
) -> Result<()> {
    match tokio::time::timeout(Duration::from_secs(secs), work).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            let server = args.server.as_deref().unwrap_or_default();
            let state = device.connection().borrow().clone();
            Err(Error::Usage(match state {
                Connection::Connected => {
                    let pending = device.outbox().await.map(|o| o.len()).unwrap_or(0);
                    format!(
                        "connected to {server}, but not done within {secs} s ({pending} documents not yet safe on the server)"
                    )
                }
                Connection::Waiting { error, .. } => {
                    format!("cannot reach the server within {secs} s: {error}")
                }
                Connection::Connecting | Connection::Offline => {
                    format!("cannot reach the server at {server} within {secs} s")
                }
            }))
        }
    }
}

fn known_kind(name: &str) -> Result<&'static domain::Kind> {
    domain::kind(name).ok_or_else(|| coachsync_core::Error::UnknownKind(name.to_owned()).into())
}

fn pretty(value: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::Usage(format!("cannot print the document: {e}")))
}

fn parse_url(url: &str) -> Result<DocumentId> {
    Ok(url.parse::<AutomergeUrl>()?.document_id)
}

fn read_object(mut stdin: impl Read) -> Result<serde_json::Value> {
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| Error::Usage(format!("cannot read stdin: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("stdin is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::Usage(
            "stdin must hold a JSON object, such as {\"title\": \"Walkthrough\"}".into(),
        ));
    }
    Ok(value)
}

/// `automerge:… <TAB> status <TAB> last sync (UTC) or never`.
fn status_line(status: &DocumentStatus) -> String {
    let when = status
        .last_synced
        .map(coachsync_core::utc::rfc3339)
        .unwrap_or_else(|| "never".into());
    format!("{}\t{}\t{when}", status.document.url(), status.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_must_be_a_json_object() {
        assert!(read_object(&b"{\"a\": 1}"[..]).is_ok());
        for bad in ["[1]", "nope", "", "\"x\""] {
            let e = read_object(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("stdin"), "{bad}: {e}");
        }
    }
}
