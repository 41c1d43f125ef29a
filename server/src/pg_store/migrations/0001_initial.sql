-- The first schema: the key-value layout of the embedded store (core/src/store/layout.rs)
-- as tables. Keys are bytes where the layout's are bytes, so that every listing sorts
-- as it does in sled.

-- The store's own storage ID, created once (one row).
CREATE TABLE store_identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    storage_id text NOT NULL
);

-- One row per document: what sled's DocMeta record holds, in columns.
CREATE TABLE documents (
    id bytea PRIMARY KEY,
    -- The heads of what the chunks hold: 32-byte change hashes, concatenated.
    heads bytea NOT NULL DEFAULT ''::bytea,
    -- The next chunk's sequence number.
    next_seq bigint NOT NULL DEFAULT 0,
    -- Bytes in the live chunks, what an owner is charged for.
    size bigint NOT NULL DEFAULT 0,
    -- Why the document was put aside, if it was.
    quarantine text,
    -- The document's entry in the change log (NULL: none yet).
    change_seq bigint
);

-- The chunks of each document, in parts: one snapshot and the appends after it.
CREATE TABLE chunks (
    doc bytea NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    part integer NOT NULL,
    snapshot boolean NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (doc, seq, part)
);

-- Persisted sync states, one per document and peer storage. No foreign key: a state
-- may be written before the document's first chunk, as in sled.
CREATE TABLE sync_states (
    doc bytea NOT NULL,
    peer text COLLATE "C" NOT NULL,
    state bytea NOT NULL,
    PRIMARY KEY (doc, peer)
);

-- The application's own records (accounts, access, audit log, ...), by UTF-8 key.
CREATE TABLE meta (
    key bytea PRIMARY KEY,
    value bytea NOT NULL
);

-- The last change sequence number given (one row). A row rather than a SEQUENCE:
-- nextval is not transactional, so a reader could see sequence N committed while
-- N-1 is still in flight and step over it for good. Every append takes this row's
-- lock until its transaction ends, so numbers are given in commit order, without
-- gaps, and "every change up to the counter is visible" holds for any reader.
CREATE TABLE change_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last bigint NOT NULL
);
INSERT INTO change_counter (last) VALUES (0);

-- The change log: each document's latest append.
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    doc bytea NOT NULL UNIQUE REFERENCES documents (id) ON DELETE CASCADE
);
