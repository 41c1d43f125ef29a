//! Two server engines over one store, as several server nodes share one database:
//! each tells the other what it stored (as PostgreSQL's LISTEN/NOTIFY will), and
//! `Engine::handle_stored_elsewhere` brings a document in memory up to date and
//! sends its peers what is new. Clients on different servers converge.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ReadDoc, ScalarValue};
use coachsync_core::store::{MemoryStore, Store};
use coachsync_core::sync::{ConnId, EngineConfig, Role};
use coachsync_core::{DocumentId, PeerId, StorageId};

#[path = "../benches/support/driver.rs"]
mod driver;

use driver::Node;

/// A node on `store`: a server takes the store's storage ID, as servers sharing a
/// database do; a client has its own.
fn node(role: Role, name: &str, store: Arc<dyn Store>) -> Node {
    let storage = (role == Role::Client)
        .then(|| StorageId::new(&format!("{name}-storage")).unwrap())
        .or_else(|| Some(store.storage_id()));
    Node::sharing(
        EngineConfig::new(role, PeerId::new(name).unwrap(), storage),
        store,
    )
}

/// Two servers on one store, a client on each (connection 1 to `a`, 2 to `b`).
struct Cluster {
    now: Instant,
    a: Node,
    b: Node,
    clients: [Node; 2],
    /// Whether the servers tell each other what they stored.
    notify: bool,
}

impl Cluster {
    fn new() -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StorageId::new("db").unwrap()));
        let now = Instant::now();
        let mut cluster = Self {
            now,
            a: node(Role::Server, "server-a", store.clone()),
            b: node(Role::Server, "server-b", store),
            clients: [
                node(
                    Role::Client,
                    "phone-0",
                    Arc::new(MemoryStore::new(StorageId::new("p0").unwrap())),
                ),
                node(
                    Role::Client,
                    "phone-1",
                    Arc::new(MemoryStore::new(StorageId::new("p1").unwrap())),
                ),
            ],
            notify: true,
        };
        for (i, conn) in [ConnId(1), ConnId(2)].into_iter().enumerate() {
            let server = if i == 0 {
                &mut cluster.a
            } else {
                &mut cluster.b
            };
            server.engine.handle_connect(now, conn);
            cluster.clients[i].engine.handle_connect(now, conn);
        }
        cluster.run();
        cluster
    }

    fn run(&mut self) {
        let now = self.now;
        for _ in 0..100_000 {
            let mut moved = false;
            let mut up: [VecDeque<(ConnId, Vec<u8>)>; 2] = Default::default();
            let mut down = VecDeque::new();
            for (i, client) in self.clients.iter_mut().enumerate() {
                moved |= client.pump(now, &mut up[i]);
            }
            moved |= self.a.pump(now, &mut down);
            moved |= self.b.pump(now, &mut down);
            for (i, frames) in up.iter_mut().enumerate() {
                let server = if i == 0 { &mut self.a } else { &mut self.b };
                while let Some((conn, frame)) = frames.pop_front() {
                    moved = true;
                    server.engine.handle_frame(now, conn, &frame);
                }
            }
            while let Some((conn, frame)) = down.pop_front() {
                moved = true;
                let client = if conn == ConnId(1) { 0 } else { 1 };
                self.clients[client].engine.handle_frame(now, conn, &frame);
            }
            if self.notify {
                for (document, heads) in std::mem::take(&mut self.a.stored) {
                    moved = true;
                    self.b
                        .engine
                        .handle_stored_elsewhere(now, &document, &heads);
                }
                for (document, heads) in std::mem::take(&mut self.b.stored) {
                    moved = true;
                    self.a
                        .engine
                        .handle_stored_elsewhere(now, &document, &heads);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the cluster did not settle");
    }

    fn put(&mut self, client: usize, doc: &DocumentId, key: &str, value: i64) {
        let now = self.now;
        self.clients[client]
            .engine
            .change(now, doc, |tx| {
                tx.put(automerge::ROOT, key, value)?;
                Ok(())
            })
            .unwrap();
    }

    fn value(&self, client: usize, doc: &DocumentId, key: &str) -> Option<i64> {
        let doc = self.clients[client].engine.document(doc)?;
        match doc.get(automerge::ROOT, key).ok()??.0 {
            automerge::Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Int(i) => Some(*i),
                _ => None,
            },
            _ => None,
        }
    }
}

#[test]
fn clients_of_two_servers_on_one_store_see_each_others_edits_live() {
    let mut cluster = Cluster::new();
    let now = cluster.now;
    let doc = cluster.clients[0].engine.create_document(now, [3; 16]);
    cluster.put(0, &doc, "from-a", 1);
    cluster.run();
    // Found through the other server: it reads the document the first one stored.
    cluster.clients[1].engine.find(now, &doc);
    cluster.run();
    assert_eq!(cluster.value(1, &doc, "from-a"), Some(1));

    // Both have it open; each one's edit reaches the other through its own server.
    cluster.put(1, &doc, "from-b", 2);
    cluster.run();
    assert_eq!(cluster.value(0, &doc, "from-b"), Some(2));
    cluster.put(0, &doc, "again-a", 3);
    cluster.put(1, &doc, "again-b", 4);
    cluster.run();
    for client in 0..2 {
        assert_eq!(cluster.value(client, &doc, "again-a"), Some(3));
        assert_eq!(cluster.value(client, &doc, "again-b"), Some(4));
    }
    let heads = |n: &Node| n.engine.document(&doc).unwrap().get_heads();
    assert_eq!(heads(&cluster.a), heads(&cluster.b));
    assert_eq!(heads(&cluster.clients[0]), heads(&cluster.clients[1]));
}

#[test]
fn without_notices_a_server_keeps_its_old_copy_and_one_notice_catches_it_up() {
    let mut cluster = Cluster::new();
    let now = cluster.now;
    let doc = cluster.clients[0].engine.create_document(now, [4; 16]);
    cluster.put(0, &doc, "first", 1);
    cluster.run();
    cluster.clients[1].engine.find(now, &doc);
    cluster.run();

    // Server b misses the notices: its client does not see a's edits.
    cluster.notify = false;
    cluster.put(0, &doc, "missed", 2);
    cluster.put(0, &doc, "missed-too", 3);
    cluster.run();
    assert_eq!(cluster.value(1, &doc, "missed"), None);
    let stored: Vec<(DocumentId, Vec<ChangeHash>)> = std::mem::take(&mut cluster.a.stored);
    assert!(!stored.is_empty());

    // The last notice alone is enough: the reread brings every stored change.
    cluster.notify = true;
    let (last_doc, last_heads) = stored.last().unwrap().clone();
    cluster
        .b
        .engine
        .handle_stored_elsewhere(now, &last_doc, &last_heads);
    cluster.run();
    assert_eq!(cluster.value(1, &doc, "missed"), Some(2));
    assert_eq!(cluster.value(1, &doc, "missed-too"), Some(3));
    // A notice of heads it has changes nothing.
    let before = cluster.b.stored.len();
    cluster
        .b
        .engine
        .handle_stored_elsewhere(now, &last_doc, &last_heads);
    cluster.run();
    assert_eq!(
        cluster.b.stored.len(),
        before,
        "nothing appended for changes already stored"
    );
}
