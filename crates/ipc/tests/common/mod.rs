//! A journal stand-in for the tests: records in memory, appended then published, in
//! the order the `Replay` contract asks for.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aether_ipc::msg::{Control, ControlReply, Record};
use aether_ipc::{ControlHandler, GroupPolicy, Hub, PeerCred, Replay, Server, ServerConfig};

#[derive(Default)]
pub struct MemJournal {
    records: Mutex<Vec<Record>>,
}

impl MemJournal {
    /// Appends the next record (seq = its index) and publishes it on `hub`.
    pub fn append(&self, hub: Option<&Hub>, data_len: usize) -> u64 {
        let rec = {
            let mut records = self.records.lock().unwrap();
            let seq = records.len() as u64;
            let rec = record(seq, data_len);
            records.push(rec.clone());
            rec
        };
        let seq = rec.seq;
        if let Some(hub) = hub {
            hub.publish(rec);
        }
        seq
    }
}

impl MemJournal {
    /// Appends `n` records, then publishes them as one batch (as a journal commit).
    pub fn append_batch(&self, hub: &Hub, n: usize, data_len: usize) {
        let batch: Vec<Record> = {
            let mut records = self.records.lock().unwrap();
            (0..n)
                .map(|_| {
                    let rec = record(records.len() as u64, data_len);
                    records.push(rec.clone());
                    rec
                })
                .collect()
        };
        hub.publish_batch(batch);
    }
}

pub fn record(seq: u64, data_len: usize) -> Record {
    Record {
        seq,
        time_ns: 1_000_000 + seq,
        kind: 1,
        name: "exec".into(),
        data: vec![b'x'; data_len],
    }
}

impl Replay for MemJournal {
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String> {
        let records = self.records.lock().unwrap();
        let start = usize::try_from(seq)
            .unwrap_or(usize::MAX)
            .min(records.len());
        Ok(records[start..].iter().take(max).cloned().collect())
    }
}

pub fn journal() -> Arc<MemJournal> {
    Arc::new(MemJournal::default())
}

pub struct Obey;

impl ControlHandler for Obey {
    fn control(&self, peer: &PeerCred, c: &Control) -> ControlReply {
        ControlReply {
            id: c.id,
            ok: true,
            message: format!("{} done for uid {}", c.command, peer.uid),
        }
    }
}

pub const GROUP: u32 = 4242;

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub hub: Hub,
    pub journal: Arc<MemJournal>,
}

pub fn start(capacity: usize) -> Setup {
    start_with_ring(capacity, aether_ipc::DEFAULT_RING_CAPACITY)
}

/// A server whose hub keeps `capacity` batches for socket subscribers and a
/// shared-memory ring of `ring` bytes.
pub fn start_with_ring(capacity: usize, ring: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // Let other uids reach the socket: the refusals tested are the server's own.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("aetherd.sock");
    let hub = Hub::new(capacity).with_ring_capacity(ring);
    let journal = journal();
    let config = ServerConfig {
        max_frame: 4096,
        frame_timeout: Duration::from_millis(300),
        authorize: Arc::new(GroupPolicy { group: Some(GROUP) }),
        control: Some(Arc::new(Obey)),
        scan: None,
        max_scans_in_flight: 0,
        refusals: None,
    };
    let server = Server::bind(&path, 0o666, config, hub.clone(), journal.clone()).unwrap();
    tokio::spawn(server.run());
    Setup {
        _dir: dir,
        path,
        hub,
        journal,
    }
}
