//! What is kept of a purged document: no content, only who could read it (so that
//! only they are told it is gone), when and by whom.

use serde::{Deserialize, Serialize};

use super::DocAccess;
use crate::id::DocumentId;
use crate::store::StoreWrite;

/// The key prefix of purge records: `purged/<document ID>` → [`Purged`] as JSON.
pub const PURGED_KEY_PREFIX: &str = "purged/";

/// The record a purge leaves in place of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Purged {
    /// When, ms since 1970.
    pub at_ms: i64,
    /// Who purged it: an admin's name, or the server for a retention rule.
    pub by: String,
    /// Its access record as it was (none for a document nobody owned): who may be
    /// told that it is gone.
    pub access: Option<DocAccess>,
}

impl Purged {
    /// The write that keeps this record.
    pub fn store_write(&self, document: &DocumentId) -> StoreWrite {
        StoreWrite::Meta {
            key: format!("{PURGED_KEY_PREFIX}{document}"),
            value: serde_json::to_vec(self).expect("a purge record serializes"),
        }
    }
}
