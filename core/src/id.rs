//! Identifiers: documents, peers, storage, and `automerge:` URLs.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use automerge::ChangeHash;

use crate::error::{Error, Result, printable};

/// The longest document ID accepted, in bytes. Real IDs are 16 bytes; this only bounds
/// what a hostile peer can make us hash and store.
pub const MAX_DOCUMENT_ID_BYTES: usize = 256;
/// The longest peer or storage ID accepted, in bytes.
pub const MAX_PEER_ID_LEN: usize = 256;

/// A document ID: opaque bytes written as bs58check (base58 with a 4-byte
/// double-sha256 checksum), as automerge-repo does.
///
/// Any length that decodes and checksums is accepted; new IDs are 16 bytes because
/// samod takes only UUID-sized IDs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId {
    text: Arc<str>,
    bytes: Arc<[u8]>,
}

impl DocumentId {
    /// Make an ID from its raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::InvalidDocumentId {
                input: String::new(),
                reason: "it is empty",
            });
        }
        if bytes.len() > MAX_DOCUMENT_ID_BYTES {
            return Err(Error::InvalidDocumentId {
                input: format!("{} bytes", bytes.len()),
                reason: "it is too long",
            });
        }
        let text = bs58::encode(bytes).with_check().into_string();
        Ok(Self {
            text: text.into(),
            bytes: bytes.into(),
        })
    }

    /// A new ID from 16 random bytes, made a UUID v4 as automerge-repo makes them;
    /// the caller supplies the randomness. (automerge-repo 1.x refuses IDs that are
    /// not UUIDs; samod takes only 16-byte IDs.)
    pub fn from_random(mut random: [u8; 16]) -> Self {
        random[6] = (random[6] & 0x0f) | 0x40; // version 4
        random[8] = (random[8] & 0x3f) | 0x80; // RFC 4122 variant
        Self::from_bytes(&random).expect("16 bytes are a valid document id")
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bs58check text, as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the ID is UUID-sized (16 bytes), the only size samod accepts.
    pub fn is_uuid_sized(&self) -> bool {
        self.bytes.len() == 16
    }

    /// The `automerge:` URL of this document.
    pub fn url(&self) -> AutomergeUrl {
        AutomergeUrl {
            document_id: self.clone(),
            heads: None,
        }
    }
}

impl FromStr for DocumentId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidDocumentId {
            input: printable(s),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("it is empty"));
        }
        // Each base58 digit carries under 6 bits, so this bounds the decoded size
        // before any work is done on hostile input.
        if s.len() > (MAX_DOCUMENT_ID_BYTES + 4) * 2 {
            return Err(invalid("it is too long"));
        }
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|e| match e {
                bs58::decode::Error::InvalidChecksum { .. } => {
                    invalid("its checksum does not match")
                }
                bs58::decode::Error::NoChecksum => invalid("it is too short to hold a checksum"),
                _ => invalid("it is not base58"),
            })?;
        let id = Self::from_bytes(&bytes).map_err(|_| invalid("it decodes to no bytes"))?;
        // Leading zero bytes and '1' digits map one to one, so the re-encoding is the
        // same text; checking keeps IDs canonical (one text per document).
        if &*id.text != s {
            return Err(invalid("it is not in canonical form"));
        }
        Ok(id)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({})", self.text)
    }
}

/// An `automerge:<documentId>` URL, optionally pinned to heads
/// (`automerge:<id>#<head>|<head>`, each head a bs58check change hash).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AutomergeUrl {
    /// The document.
    pub document_id: DocumentId,
    /// The heads the URL points at, if any.
    pub heads: Option<Vec<ChangeHash>>,
}

const URL_SCHEME: &str = "automerge:";

impl FromStr for AutomergeUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidUrl {
            input: printable(s),
            reason,
        };
        let rest = s
            .strip_prefix(URL_SCHEME)
            .ok_or_else(|| invalid("it does not start with automerge:"))?;
        let (id, heads) = match rest.split_once('#') {
            Some((id, heads)) => (id, Some(heads)),
            None => (rest, None),
        };
        let document_id = id
            .parse::<DocumentId>()
            .map_err(|_| invalid("its document id is not valid bs58check"))?;
        let heads = heads
            .map(|heads| {
                heads
                    .split('|')
                    .map(|head| {
                        let bytes = bs58::decode(head)
                            .with_check(None)
                            .into_vec()
                            .map_err(|_| invalid("a head is not valid bs58check"))?;
                        ChangeHash::try_from(bytes.as_slice())
                            .map_err(|_| invalid("a head is not a 32-byte change hash"))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        Ok(Self { document_id, heads })
    }
}

impl fmt::Display for AutomergeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URL_SCHEME}{}", self.document_id)?;
        if let Some(heads) = &self.heads {
            let heads: Vec<String> = heads
                .iter()
                .map(|h| bs58::encode(h.as_ref()).with_check().into_string())
                .collect();
            write!(f, "#{}", heads.join("|"))?;
        }
        Ok(())
    }
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Check and wrap an ID: any non-empty string of at most
            #[doc = concat!("[`MAX_PEER_ID_LEN`] bytes is a valid ", $what, ".")]
            pub fn new(id: &str) -> Result<Self> {
                if id.is_empty() {
                    return Err(Error::InvalidId { what: $what, reason: "it is empty" });
                }
                if id.len() > MAX_PEER_ID_LEN {
                    return Err(Error::InvalidId { what: $what, reason: "it is too long" });
                }
                Ok(Self(id.into()))
            }

            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

opaque_id!(
    /// A peer's ID: an opaque string chosen by the peer (`peer-<random>` in JS).
    PeerId,
    "peer id"
);
opaque_id!(
    /// A storage ID: an opaque string naming one persistent store (a UUID in JS).
    /// Sync state is persisted per storage ID, so it survives a peer's restarts.
    StorageId,
    "storage id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_round_trips_through_text() {
        let id = DocumentId::from_random([7; 16]);
        let parsed: DocumentId = id.as_str().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.as_bytes(), id.as_bytes());
        assert!(parsed.is_uuid_sized());
    }

    #[test]
    fn new_document_ids_are_uuid_v4() {
        for random in [[0u8; 16], [0xff; 16], [0x5a; 16]] {
            let bytes = DocumentId::from_random(random).as_bytes().to_vec();
            assert_eq!(bytes[6] >> 4, 4, "version nibble");
            assert_eq!(bytes[8] >> 6, 0b10, "variant bits");
        }
    }

    #[test]
    fn other_lengths_are_accepted_and_opaque() {
        for len in [1, 3, 32, 64] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let id = DocumentId::from_bytes(&bytes).unwrap();
            let parsed: DocumentId = id.to_string().parse().unwrap();
            assert_eq!(parsed.as_bytes(), bytes.as_slice());
            assert_eq!(parsed.is_uuid_sized(), len == 16);
        }
    }

    #[test]
    fn bad_document_ids_are_typed_errors() {
        let good = DocumentId::from_random([1; 16]).to_string();
        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'2' { b'3' } else { b'2' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in ["", "0OIl", "abc", tampered.as_str()] {
            let err = bad.parse::<DocumentId>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidDocumentId { .. }),
                "{bad:?}: {err}"
            );
        }
        let long = "2".repeat(10_000);
        assert!(long.parse::<DocumentId>().is_err());
    }

    #[test]
    fn urls_parse_with_and_without_heads() {
        let id = DocumentId::from_random([9; 16]);
        let url: AutomergeUrl = format!("automerge:{id}").parse().unwrap();
        assert_eq!(url.document_id, id);
        assert_eq!(url.heads, None);
        assert_eq!(url.to_string(), format!("automerge:{id}"));

        let hash = ChangeHash([5; 32]);
        let pinned = AutomergeUrl {
            document_id: id.clone(),
            heads: Some(vec![hash, ChangeHash([6; 32])]),
        };
        let parsed: AutomergeUrl = pinned.to_string().parse().unwrap();
        assert_eq!(parsed, pinned);
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        let id = DocumentId::from_random([9; 16]);
        for bad in [
            id.to_string(),
            "automerge:".to_owned(),
            "automerge:xyz0".to_owned(),
            format!("automerge:{id}#notahash"),
            format!("https://{id}"),
        ] {
            assert!(
                matches!(bad.parse::<AutomergeUrl>(), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn peer_ids_are_opaque_but_bounded() {
        assert_eq!(PeerId::new("peer-abc").unwrap().as_str(), "peer-abc");
        assert!(PeerId::new("").is_err());
        assert!(StorageId::new(&"x".repeat(MAX_PEER_ID_LEN + 1)).is_err());
    }
}
