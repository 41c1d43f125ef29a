//! What one server tells the others that share its database: after each commit, a
//! `NOTIFY coachsync` with the documents it appended to (and their new heads) and
//! the records it changed. PostgreSQL delivers a notification only if its
//! transaction commits, and in commit order, so a listener never hears of a change
//! it cannot read.

use std::time::Duration;

use automerge::ChangeHash;
use coachsync_core::DocumentId;
use coachsync_core::store::StoreWrite;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The channel every server listens on.
pub const CHANNEL: &str = "coachsync";
/// PostgreSQL refuses payloads of 8000 bytes or more; batches are split below this.
const MAX_PAYLOAD: usize = 7_000;

/// What another server stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// It appended changes to a document, which now has these heads.
    Stored {
        /// The document.
        document: DocumentId,
        /// Its heads after the append.
        heads: Vec<ChangeHash>,
    },
    /// It set or removed a record (an access record, a relationship, a user…).
    Record {
        /// The record's key.
        key: String,
    },
    /// The listening connection was lost and is back: notices may have been missed.
    Resync,
}

/// One notification's payload.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Payload {
    /// The sending server, so that it skips its own notices.
    node: String,
    /// When the sender began its commit (before taking a connection), in
    /// microseconds since the epoch by its clock: the listener's lag metric. Absent
    /// from older nodes' notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_us: Option<u64>,
    /// Documents appended to: ID and heads (hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stored: Vec<(String, Vec<String>)>,
    /// Records set or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    records: Vec<String>,
}

/// The payloads that announce `writes`, each small enough for one notification.
pub(super) fn payloads(node: &str, writes: &[StoreWrite]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Payload {
        node: node.to_owned(),
        at_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_micros() as u64),
        ..Payload::default()
    };
    let mut size = 0;
    let mut flush = |current: &mut Payload, size: &mut usize| {
        if !current.stored.is_empty() || !current.records.is_empty() {
            out.push(serde_json::to_string(current).expect("a payload serializes"));
        }
        current.stored.clear();
        current.records.clear();
        *size = 0;
    };
    for write in writes {
        let added = match write {
            StoreWrite::Append {
                document, heads, ..
            } => {
                let heads: Vec<String> = heads.iter().map(ToString::to_string).collect();
                let len = document.to_string().len()
                    + heads.iter().map(|h| h.len() + 3).sum::<usize>()
                    + 8;
                current.stored.push((document.to_string(), heads));
                len
            }
            StoreWrite::Meta { key, .. } | StoreWrite::RemoveMeta { key } => {
                current.records.push(key.clone());
                key.len() + 3
            }
            _ => 0,
        };
        size += added;
        if size > MAX_PAYLOAD {
            flush(&mut current, &mut size);
        }
    }
    flush(&mut current, &mut size);
    out
}

/// The notices in one payload, unless it is this server's own, and when it was
/// sent.
fn notices_of(node: &str, payload: &str) -> (Vec<Notice>, Option<u64>) {
    let Ok(payload) = serde_json::from_str::<Payload>(payload) else {
        tracing::warn!("a database notification does not decode; ignored");
        return (Vec::new(), None);
    };
    if payload.node == node {
        return (Vec::new(), None);
    }
    let mut notices = Vec::new();
    for (document, heads) in payload.stored {
        let (Ok(document), Ok(heads)) = (
            document.parse::<DocumentId>(),
            heads
                .iter()
                .map(|h| h.parse::<ChangeHash>())
                .collect::<Result<Vec<_>, _>>(),
        ) else {
            continue;
        };
        notices.push(Notice::Stored { document, heads });
    }
    notices.extend(
        payload
            .records
            .into_iter()
            .map(|key| Notice::Record { key }),
    );
    (notices, payload.at_us.filter(|&us| us > 0))
}

/// Listen for the other servers' notices on a connection of its own, reconnecting
/// (and sending [`Notice::Resync`]) when it is lost, until the receiver is dropped.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    tls: super::tls::MakeRustlsConnect,
    node: String,
    tx: mpsc::UnboundedSender<Notice>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let mut first = true;
    let mut backoff = Duration::from_millis(100);
    while !tx.is_closed() {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let statement = format!("LISTEN {CHANNEL}");
                let ready = {
                    let listening = client.batch_execute(&statement);
                    // The connection only makes progress while its messages are polled.
                    let mut listening = std::pin::pin!(listening);
                    loop {
                        tokio::select! {
                            done = &mut listening => break done.is_ok(),
                            message = messages.next() => if message.is_none() { break false },
                        }
                    }
                };
                if ready {
                    backoff = Duration::from_millis(100);
                    if !first && tx.send(Notice::Resync).is_err() {
                        return;
                    }
                    while let Some(message) = messages.next().await {
                        if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = message {
                            let (notices, sent) = notices_of(&node, n.payload());
                            if let Some(sent) = sent {
                                metrics.database.notified(sent);
                            }
                            for notice in notices {
                                if tx.send(notice).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    tracing::warn!(
                        "lost the database connection that listens for other servers' changes; reconnecting"
                    );
                }
                drop(client);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other servers' changes; retrying");
            }
        }
        first = false;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_appends_and_records_split_small_and_skip_the_sender() {
        let doc = DocumentId::from_random([1; 16]);
        let heads = vec![ChangeHash([7; 32])];
        let mut writes = vec![StoreWrite::Append {
            document: doc.clone(),
            data: vec![1, 2, 3],
            heads: heads.clone(),
        }];
        for i in 0..200 {
            writes.push(StoreWrite::Meta {
                key: format!("access/doc/{i:064}"),
                value: Vec::new(),
            });
        }
        let sent = payloads("node-a", &writes);
        assert!(sent.len() > 1, "split into several notifications");
        assert!(sent.iter().all(|p| p.len() < 8_000));
        let heard: Vec<Notice> = sent
            .iter()
            .flat_map(|p| notices_of("node-b", p).0)
            .collect();
        assert_eq!(
            heard[0],
            Notice::Stored {
                document: doc,
                heads
            }
        );
        assert_eq!(heard.len(), 201);
        assert!(sent.iter().all(|p| notices_of("node-a", p).0.is_empty()));
        let (_, at) = notices_of("node-b", &sent[0]);
        assert!(
            at.is_some_and(|ms| ms > 1_600_000_000_000),
            "stamped: {at:?}"
        );
        assert!(payloads("node-a", &[]).is_empty());
    }
}
