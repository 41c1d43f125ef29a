//! Export for a records request: every document of one coaching relationship, as
//! JSON, with who owns it, its class and its heads. Private notes tied to the
//! relationship are their author's alone and are counted, not exported.

use std::time::{Duration, SystemTime};

use coachsync_core::access::{AccessBook, Relationship};
use coachsync_core::domain::Visibility;
use coachsync_core::store::Store;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The export of `relationship`'s documents from `store`.
pub fn export_relationship(store: &dyn Store, relationship: &Relationship) -> Result<Value> {
    let book = AccessBook::load(store)?;
    let mut ids = book.documents_of(&relationship.id);
    ids.sort();
    let mut documents = Vec::new();
    let mut private = 0;
    for id in ids {
        let Some(record) = book.record(&id) else {
            continue;
        };
        if record.visibility == Some(Visibility::Private) {
            private += 1;
            continue;
        }
        let Some(stored) = store.load(&id)? else {
            continue;
        };
        if let Some(reason) = &stored.quarantined {
            return Err(Error::Usage(format!(
                "document {id} does not load ({reason}); the export would be incomplete"
            )));
        }
        let doc = automerge::Automerge::load(&stored.data).map_err(|e| {
            Error::Usage(format!(
                "document {id} does not load ({e}); the export would be incomplete"
            ))
        })?;
        let created =
            SystemTime::UNIX_EPOCH + Duration::from_millis(record.created_ms.max(0) as u64);
        documents.push(json!({
            "id": id.to_string(),
            "url": format!("automerge:{id}"),
            "kind": record.kind,
            "class": record.visibility.map(Visibility::as_str),
            "owner": record.owner,
            "created": coachsync_core::utc::rfc3339(created),
            "heads": doc.get_heads().iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "content": coachsync_core::json::to_json(&doc),
        }));
    }
    Ok(json!({
        "relationship": relationship,
        "exportedAt": coachsync_core::utc::rfc3339(SystemTime::now()),
        "documents": documents,
        "privateNotesNotExported": private,
    }))
}
