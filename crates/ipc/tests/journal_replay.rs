//! The real journal as the replay source: records committed to an `aether-journal`
//! file reach a subscriber from its cursor, then live ones follow, with no gap or
//! duplicate. The adapter here is the one aetherd needs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aether_ipc::msg::{Body, Record};
use aether_ipc::{Client, GroupPolicy, Hub, Replay, Server, ServerConfig};
use aether_journal::{Entry, Journal, Lifecycle, Options, Reader, ScanResult, Verdict};

struct JournalReplay(Mutex<Reader>);

impl Replay for JournalReplay {
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String> {
        let reader = self.0.lock().map_err(|e| e.to_string())?;
        reader
            .read_raw_from(seq)
            .take(max)
            .map(|r| {
                r.map(|raw| Record {
                    seq: raw.seq,
                    time_ns: raw.time_ns,
                    kind: u32::from(raw.kind),
                    name: raw.name,
                    data: raw.data,
                })
                .map_err(|e| e.to_string())
            })
            .collect()
    }
}

fn scan(n: u64) -> Entry {
    Entry::Scan(ScanResult {
        target: format!("/srv/file{n}"),
        verdict: Verdict::Clean,
        client: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_replays_the_journal_then_follows_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let mut journal = Journal::open(&db, Options::default()).unwrap();
    journal
        .append(Entry::Lifecycle(Lifecycle::Started {
            version: "test".into(),
        }))
        .unwrap();
    for n in 0..1500 {
        journal.append(scan(n)).unwrap();
    }
    journal.flush().unwrap();
    let replay = Arc::new(JournalReplay(Mutex::new(Reader::open(&db).unwrap())));
    let hub = Hub::new(256);
    let sock = dir.path().join("s.sock");
    let config = ServerConfig {
        max_frame: 1 << 20,
        frame_timeout: Duration::from_secs(5),
        authorize: Arc::new(GroupPolicy { group: None }),
        control: None,
        scan: None,
        max_scans_in_flight: 0,
        refusals: None,
    };
    tokio::spawn(
        Server::bind(&sock, 0o600, config, hub.clone(), replay)
            .unwrap()
            .run(),
    );

    let mut client = Client::connect(&sock).await.unwrap();
    client.subscribe(1).await.unwrap();
    // The writer goes on: commit, then publish what was committed.
    let writer = tokio::task::spawn_blocking(move || {
        for batch in 0..20u64 {
            let first = journal.committed_seq().unwrap() + 1;
            for n in 0..100 {
                journal.append(scan(10_000 + batch * 100 + n)).unwrap();
            }
            journal.flush().unwrap();
            for raw in journal.read_raw_from(first) {
                let raw = raw.unwrap();
                hub.publish(Record {
                    seq: raw.seq,
                    time_ns: raw.time_ns,
                    kind: u32::from(raw.kind),
                    name: raw.name,
                    data: raw.data,
                });
            }
        }
        journal.committed_seq().unwrap()
    });
    let mut seqs = Vec::new();
    let mut first_payload = None;
    loop {
        match client.next_frame().await.unwrap().body {
            Some(Body::Record(r)) => {
                if r.seq == 1 {
                    first_payload = Some((r.kind, r.name.clone(), r.data.clone()));
                }
                seqs.push(r.seq);
                if r.seq == 3501 {
                    break;
                }
            }
            Some(Body::Lagged(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(writer.await.unwrap(), 3501);
    assert_eq!(seqs, (1..=3501).collect::<Vec<_>>());
    let (kind, name, data) = first_payload.unwrap();
    assert_eq!((kind, name.as_str()), (3, "started"));
    assert_eq!(data, br#"{"lifecycle":"started","version":"test"}"#);
}
