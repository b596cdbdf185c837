//! Subscriptions through the shared-memory ring, against a real server: the
//! switch from replay to the ring, subscribers overrun in a small ring, a hub
//! without a ring, and the server going away.

mod common;

use std::time::Duration;

use aether_ipc::msg::{Body, Frame};
use aether_ipc::{Client, Subscription};
use common::start_with_ring;

/// Reads until record `last`; returns the records' seqs, the Lagged cursors,
/// and whether any record came from the ring.
async fn read_until(sub: &mut Subscription, last: u64) -> (Vec<u64>, Vec<u64>, bool) {
    let mut seqs = Vec::new();
    let mut lags = Vec::new();
    let mut ring = false;
    let mut f = Frame::default();
    loop {
        sub.next_frame_into(&mut f).await.unwrap();
        ring |= sub.in_ring();
        match &f.body {
            Some(Body::Record(r)) => {
                assert_eq!(r.data, [b'x'; 16], "record {}", r.seq);
                seqs.push(r.seq);
                if r.seq == last {
                    return (seqs, lags, ring);
                }
            }
            Some(Body::Lagged(l)) => lags.push(l.resume_from),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Publishes and reads one record at a time from `n` on until the subscriber
/// reads from the ring (bounded); returns the next record's number.
async fn until_in_ring(sub: &mut Subscription, s: &common::Setup, mut n: u64) -> u64 {
    let first = n;
    while !sub.in_ring() {
        assert!(
            n - first < 2000,
            "the subscriber never attached to the ring"
        );
        s.journal.append_batch(&s.hub, 1, 16);
        let (got, _, _) = read_until(sub, n).await;
        assert_eq!(got, [n]);
        n += 1;
    }
    n
}

async fn subscribe(path: &std::path::Path, since: u64) -> Subscription {
    let c = Client::connect(path).await.unwrap();
    c.subscribe_shared(since).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_subscribers_get_every_record_once_from_any_cursor() {
    let s = start_with_ring(64, 1 << 20);
    s.journal.append_batch(&s.hub, 700, 16);
    let mut subs = Vec::new();
    for since in [0, 1, 699, 700, 2000, 3100] {
        subs.push((since, subscribe(&s.path, since).await));
    }
    let (journal, hub) = (s.journal.clone(), s.hub.clone());
    let publisher = tokio::spawn(async move {
        for n in [1, 255, 256, 257, 600, 3, 1000, 77] {
            journal.append_batch(&hub, n, 16);
            tokio::task::yield_now().await;
        }
    });
    let last = 3148;
    // A socket subscriber alongside gets the same records.
    let mut plain = Client::connect(&s.path).await.unwrap();
    plain.subscribe(0).await.unwrap();
    publisher.await.unwrap();
    for (since, sub) in &mut subs {
        let since = *since;
        let (seqs, lags, _) = read_until(sub, last).await;
        assert!(lags.is_empty(), "from {since}: lagged {lags:?}");
        assert_eq!(seqs, (since..=last).collect::<Vec<_>>(), "from {since}");
    }
    // Each reads the ring once it has taken its RingAttach (after the replay;
    // a record more at a time until it has, bounded).
    let mut newest = last;
    for (since, sub) in &mut subs {
        for _ in 0..100 {
            if sub.in_ring() {
                break;
            }
            s.journal.append_batch(&s.hub, 1, 16);
            newest += 1;
            read_until(sub, newest).await;
        }
        assert!(sub.in_ring(), "from {since}: never attached to the ring");
    }
    // Subscribers in the ring count as subscribers (the plain one too), until
    // they go (bounded wait: the server sees each connection close).
    assert_eq!(s.hub.subscribers(), 1 + subs.len());
    drop(subs);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.hub.subscribers() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "ring subscribers not let go"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut n = 0;
    while n <= last {
        match plain.next_frame().await.unwrap().body {
            Some(Body::Record(r)) => {
                assert_eq!(r.seq, n);
                n += 1;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert!(s.hub.ring_failure().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_overrun_in_the_ring_is_told_and_resumes_from_the_journal() {
    // The smallest ring: 64 KiB, about 1,300 of these records.
    let s = start_with_ring(8, 1);
    let mut sub = subscribe(&s.path, 0).await;
    s.journal.append_batch(&s.hub, 1, 16);
    let (first, _, _) = read_until(&mut sub, 0).await;
    assert_eq!(first, [0]);
    let n = until_in_ring(&mut sub, &s, 1).await;
    // 20,000 records while the subscriber reads nothing: the ring is
    // overwritten many times over.
    for _ in 0..100 {
        s.journal.append_batch(&s.hub, 200, 16);
    }
    let last = n + 20_000 - 1;
    let (seqs, lags, _) = read_until(&mut sub, last).await;
    assert!(
        !lags.is_empty(),
        "the subscriber was never told it was overrun"
    );
    assert_eq!(lags[0], n, "the first Lagged names the next record owed");
    assert_eq!(seqs, (n..=last).collect::<Vec<_>>());
    // And live records come from the ring again, once the replay is over.
    until_in_ring(&mut sub, &s, last + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ring_records_come_over_the_socket() {
    let s = start_with_ring(64, 0);
    s.journal.append_batch(&s.hub, 100, 16);
    let mut sub = subscribe(&s.path, 10).await;
    s.journal.append_batch(&s.hub, 100, 16);
    let (seqs, lags, ring) = read_until(&mut sub, 199).await;
    assert!(lags.is_empty() && !ring);
    assert_eq!(seqs, (10..200).collect::<Vec<_>>());
}

#[test]
fn a_ring_subscriber_sees_the_server_go() {
    let rt = |threads| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    // The server on a runtime of its own, to be shut down with every task.
    let server = rt(1);
    let s = server.block_on(async { start_with_ring(64, 1 << 16) });
    let client = rt(1);
    let mut sub = client.block_on(async {
        let mut sub = subscribe(&s.path, 0).await;
        until_in_ring(&mut sub, &s, 0).await;
        sub
    });
    assert!(sub.in_ring());
    let common::Setup {
        hub, journal, _dir, ..
    } = s;
    drop((hub, journal));
    server.shutdown_timeout(Duration::from_secs(10));
    let r = client.block_on(async {
        let mut f = Frame::default();
        tokio::time::timeout(Duration::from_secs(30), sub.next_frame_into(&mut f)).await
    });
    assert!(
        matches!(r, Ok(Err(aether_ipc::ClientError::Closed))),
        "{r:?}"
    );
    drop(_dir);
}
