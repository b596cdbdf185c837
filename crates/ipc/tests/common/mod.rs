//! A journal stand-in for the tests: records in memory, appended then published, in
//! the order the `Replay` contract asks for.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use aether_ipc::Hub;
use aether_ipc::Replay;
use aether_ipc::msg::Record;

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
