//! Reconnects of a client holding 1,000 small documents, all synced with the server
//! before, with persisted sync states on both sides; both engines run in-process
//! (frames encoded and decoded, store operations answered from `MemoryStore`s) until
//! neither has anything left to send.
//!
//! Cases:
//! - `per_document`: nothing changed, the stock protocol's way (one sync exchange per
//!   document);
//! - `warm`: nothing changed, with the `manifest/1` extension: the client holds the
//!   server's change cursor and lists no document, the server reads its change log;
//! - `server_evicted`: the same after the server dropped every document from memory;
//! - `ten_changed_per_document` and `ten_changed`: 10 of the 1,000 changed while the
//!   client was offline, without and with the manifest: the device's everyday
//!   reconnect, until the server has stored all 10 and said so.
//!
//! The bytes on the wire per reconnect are printed once per case; the targets are
//! under 100 KB for a no-op reconnect, and for ten changed at least 10x fewer bytes
//! and 5x less time than document by document.

#![allow(clippy::print_stderr, missing_docs)]

#[path = "support/driver.rs"]
mod driver;

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, Role};
use coachsync_core::{DocumentId, StorageId};
use criterion::{Criterion, criterion_group, criterion_main};
use driver::{Node, Wire, connect, disconnect, run_until_quiet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DOCUMENTS: usize = 1_000;
/// Documents changed offline in the `ten_changed` cases.
const CHANGED: usize = 10;

struct Setup {
    now: Instant,
    server: Node,
    client: Node,
    docs: Vec<DocumentId>,
    next_conn: u64,
    round: i64,
}

impl Setup {
    /// Create the documents on the client, sync them all over a first connection,
    /// and drop it: both stores now hold the documents and each other's sync states.
    fn new(manifest: bool) -> Self {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut now = Instant::now();
        let mut server = Node::new(Role::Server, "server");
        let mut client = Node::new(Role::Client, "client");
        for node in [&mut server, &mut client] {
            let config = EngineConfig {
                manifest,
                ..node.engine.config().clone()
            };
            node.engine = Engine::new(config);
        }
        let mut docs = Vec::with_capacity(DOCUMENTS);
        for i in 0..DOCUMENTS {
            let doc = client.engine.create_document(now, rng.random());
            client
                .engine
                .change(now, &doc, |tx| {
                    tx.put(ROOT, "schema", "coaching-log")?;
                    tx.put(ROOT, "schemaVersion", 1)?;
                    tx.put(ROOT, "minutes", (i % 90) as i64)?;
                    let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
                    tx.splice_text(&notes, 0, 0, &format!("session {i}: rondo drill"))?;
                    Ok(())
                })
                .unwrap();
            docs.push(doc);
        }
        let mut setup_wire = Wire::default();
        run_until_quiet(now, &mut server, &mut client, &mut setup_wire);
        connect(now, &mut server, &mut client, ConnId(0));
        run_until_quiet(now, &mut server, &mut client, &mut setup_wire);
        disconnect(now, &mut server, &mut client, ConnId(0));
        now += Duration::from_secs(1);

        let setup = Self {
            now,
            server,
            client,
            docs,
            next_conn: 1,
            round: 0,
        };
        setup.check_synced();
        setup
    }

    /// Both sides hold every document at the same heads, in memory and in their
    /// stores, and each store has the other side's sync state for every document.
    fn check_synced(&self) {
        let client_storage = StorageId::new("client-storage").unwrap();
        let server_storage = StorageId::new("server-storage").unwrap();
        assert_eq!(self.client.engine.loaded_documents(), DOCUMENTS);
        assert_eq!(self.server.store.document_ids().unwrap().len(), DOCUMENTS);
        assert_eq!(self.client.store.document_ids().unwrap().len(), DOCUMENTS);
        for doc in &self.docs {
            let heads = self.client.engine.document(doc).unwrap().get_heads();
            assert!(!heads.is_empty());
            assert_eq!(
                self.client.engine.durable_heads(doc),
                Some(heads.as_slice())
            );
            for (store, peer_storage) in [
                (&self.server.store, &client_storage),
                (&self.client.store, &server_storage),
            ] {
                let stored = store.load(doc).unwrap().unwrap();
                let mut stored_heads = automerge::Automerge::load(&stored.data)
                    .unwrap()
                    .get_heads();
                stored_heads.sort();
                let mut want = heads.clone();
                want.sort();
                assert_eq!(stored_heads, want, "{doc} is stored whole");
                let (_, state) = stored
                    .sync_states
                    .iter()
                    .find(|(s, _)| s == peer_storage)
                    .unwrap_or_else(|| panic!("{doc} has a persisted sync state"));
                let state = automerge::sync::State::decode(state).unwrap();
                assert_eq!(state.shared_heads, heads, "{doc}: persisted shared heads");
            }
        }
    }

    /// Drop every document from the server's memory, as its idle timer would.
    fn evict_server_documents(&mut self) {
        self.now += self.server.engine.config().evict_after + Duration::from_secs(1);
        self.server.engine.handle_timeout(self.now);
        assert_eq!(self.server.engine.loaded_documents(), 0, "evicted");
    }

    /// While disconnected, the client changes `n` documents (stored locally, as a
    /// device stores every edit): the next `n` in turn, so that over many rounds
    /// every document gets a few changes, as a coach's notes do, rather than a few
    /// documents growing thousands.
    fn change_offline(&mut self, n: usize) {
        self.round += 1;
        let round = self.round;
        self.now += Duration::from_millis(1);
        let start = (round as usize - 1) * n % DOCUMENTS;
        for doc in self.docs.iter().cycle().skip(start).take(n) {
            self.client
                .engine
                .change(self.now, doc, |tx| {
                    tx.put(ROOT, "minutes", round)?;
                    Ok(())
                })
                .unwrap();
        }
        let mut none = std::collections::VecDeque::new();
        self.client.pump(self.now, &mut none);
        assert!(none.is_empty(), "nothing is sent while disconnected");
    }

    /// One reconnect, start to quiet, and the disconnect after it.
    fn reconnect(&mut self) -> Wire {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.now += Duration::from_millis(10);
        let mut wire = Wire::default();
        connect(self.now, &mut self.server, &mut self.client, conn);
        run_until_quiet(self.now, &mut self.server, &mut self.client, &mut wire);
        disconnect(self.now, &mut self.server, &mut self.client, conn);
        wire
    }
}

/// Run one reconnect outside the measurement, check it, and print what it cost.
fn report(case: &str, setup: &mut Setup, evict: bool) {
    if evict {
        setup.evict_server_documents();
    }
    let (server_loads, server_heads_reads, server_commits, client_commits) = (
        setup.server.loads,
        setup.server.heads_reads,
        setup.server.commits,
        setup.client.commits,
    );
    let started = Instant::now();
    let wire = setup.reconnect();
    let took = started.elapsed();
    let loads = setup.server.loads - server_loads;
    let heads_reads = setup.server.heads_reads - server_heads_reads;
    // Nothing changed: the server loads no document, evicted or not.
    assert_eq!(loads, 0, "server loads");
    setup.check_synced();
    eprintln!(
        "reconnect/{case}: {DOCUMENTS} documents, one reconnect: {} B on the wire \
         ({} B/doc; client→server {} frames {} B, server→client {} frames {} B); \
         server loads {loads}, heads reads {heads_reads}, store writes server {} client {}; \
         {took:?} (unmeasured run); \
         target < 100 KB and < 20 ms",
        wire.bytes(),
        wire.bytes() / DOCUMENTS,
        wire.frames_to_server,
        wire.bytes_to_server,
        wire.frames_to_client,
        wire.bytes_to_client,
        setup.server.commits - server_commits,
        setup.client.commits - client_commits,
    );
}

fn bench_reconnect(c: &mut Criterion) {
    let mut group = c.benchmark_group("reconnect");

    // Document by document, as the stock protocol does it.
    let mut setup = Setup::new(false);
    report("per_document", &mut setup, false);
    group.bench_function("per_document", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                setup.reconnect();
            }
            started.elapsed()
        })
    });

    // With the manifest extension.
    let mut setup = Setup::new(true);
    report("warm", &mut setup, false);
    group.bench_function("warm", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                setup.reconnect();
            }
            started.elapsed()
        })
    });

    report("server_evicted", &mut setup, true);
    group.bench_function("server_evicted", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                setup.evict_server_documents();
                let started = Instant::now();
                setup.reconnect();
                total += started.elapsed();
            }
            total
        })
    });

    // 10 of the 1,000 documents changed offline: the device's everyday reconnect.
    for (case, manifest) in [("ten_changed_per_document", false), ("ten_changed", true)] {
        let mut setup = Setup::new(manifest);
        setup.change_offline(CHANGED);
        let wire = setup.reconnect();
        eprintln!(
            "reconnect/{case}: {DOCUMENTS} documents, {CHANGED} changed offline: {} B on the wire \
             (client→server {} frames {} B, server→client {} frames {} B)",
            wire.bytes(),
            wire.frames_to_server,
            wire.bytes_to_server,
            wire.frames_to_client,
            wire.bytes_to_client,
        );
        group.bench_function(case, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    setup.change_offline(CHANGED);
                    let started = Instant::now();
                    setup.reconnect();
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_reconnect
}
criterion_main!(benches);
