//! The UDP transport against real loopback sockets: forged, replayed, truncated,
//! oversized and bit-flipped datagrams are rejected and counted; gaps are refilled
//! from the replay source; the key file must be private.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aether_ipc::udp::{
    Datagram, Key, KeyError, UdpConfig, UdpReceiver, UdpSender, open, seal_heartbeat, seal_record,
};
use common::{journal, record};
use tokio::net::UdpSocket;

fn key() -> Key {
    Key::from_bytes(&[0x5a; 32]).unwrap()
}

#[test]
fn key_file_must_be_private_and_hex() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("udp.key");
    std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Key::load(&path).unwrap();
    for mode in [0o640, 0o604, 0o644, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        match Key::load(&path) {
            Err(KeyError::Permissions { mode: m, .. }) => assert_eq!(m, mode),
            other => panic!("mode {mode:o}: {other:?}"),
        }
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    Key::load(&path).unwrap();
    for bad in [
        "abcd",
        "zz".repeat(32).as_str(),
        "abc".repeat(21).as_str(),
        "",
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, bad).unwrap();
        assert!(
            matches!(Key::load(&path), Err(KeyError::Format { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Key::load(&dir.path().join("none")),
        Err(KeyError::Io { .. })
    ));
}

#[tokio::test]
async fn non_loopback_bind_is_refused_unless_configured() {
    let config = UdpConfig {
        bind: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..UdpConfig::default()
    };
    let e = UdpReceiver::bind(&config, key()).await.err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    let config = UdpConfig {
        allow_non_loopback: true,
        ..config
    };
    UdpReceiver::bind(&config, key()).await.unwrap();
}

#[tokio::test]
async fn bad_datagrams_are_rejected_and_counted() {
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key())
        .await
        .unwrap();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good0 = seal_record(&key(), 77, &record(0, 10));
    tx.send_to(&good0, to).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().record.seq, 0);

    // Replayed, bit-flipped (payload and MAC), forged under another key, truncated,
    // oversized; then one good datagram, which recv returns after counting the rest
    // (loopback keeps one sender's datagrams in order).
    tx.send_to(&good0, to).await.unwrap();
    let mut flipped = seal_record(&key(), 77, &record(1, 10));
    flipped[20] ^= 0x01;
    tx.send_to(&flipped, to).await.unwrap();
    let mut flipped_mac = seal_record(&key(), 77, &record(1, 10));
    let last = flipped_mac.len() - 1;
    flipped_mac[last] ^= 0x80;
    tx.send_to(&flipped_mac, to).await.unwrap();
    let other = Key::from_bytes(&[0x11; 32]).unwrap();
    tx.send_to(&seal_record(&other, 77, &record(1, 10)), to)
        .await
        .unwrap();
    tx.send_to(&good0[..20], to).await.unwrap();
    tx.send_to(&seal_record(&key(), 77, &record(1, 9000)), to)
        .await
        .unwrap();
    tx.send_to(b"AU", to).await.unwrap();
    let good1 = seal_record(&key(), 77, &record(1, 10));
    tx.send_to(&good1, to).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!((got.record.seq, got.refill), (1, false));

    let s = &rx.stats;
    assert_eq!(s.replayed.load(Ordering::Relaxed), 1);
    assert_eq!(s.bad_mac.load(Ordering::Relaxed), 3);
    assert_eq!(s.truncated.load(Ordering::Relaxed), 2);
    assert_eq!(s.oversized.load(Ordering::Relaxed), 1);
    assert_eq!(s.accepted.load(Ordering::Relaxed), 2);
    assert_eq!(s.rejected(), 7);
    // The good one, replayed late, is refused too.
    tx.send_to(&good1, to).await.unwrap();
    tx.send_to(&seal_record(&key(), 77, &record(2, 1)), to)
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap().record.seq, 2);
    assert_eq!(rx.stats.replayed.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_are_refilled_from_the_replay_source() {
    let j = journal();
    for _ in 0..20 {
        j.append(None, 8);
    }
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key())
        .await
        .unwrap();
    let sender = Arc::new(
        UdpSender::new(
            &UdpConfig::default(),
            rx.local_addr().unwrap(),
            key(),
            j.clone(),
        )
        .await
        .unwrap(),
    );
    let nacks = tokio::spawn({
        let sender = sender.clone();
        async move { sender.serve_nacks().await }
    });
    // Lost on the way: 3, 4, 5 and 9.
    let sent = [0u64, 1, 2, 6, 7, 8, 10, 11];
    for seq in sent {
        sender.send(&record(seq, 8)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 12 {
        let r = rx.recv().await.unwrap();
        assert_eq!(r.stream_id, sender.stream_id());
        assert_eq!(r.record, record(r.record.seq, 8));
        got.push((r.record.seq, r.refill));
    }
    let seqs: BTreeSet<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(seqs, (0..12).collect());
    let refills: BTreeSet<u64> = got.iter().filter(|g| g.1).map(|g| g.0).collect();
    assert_eq!(refills, BTreeSet::from([3, 4, 5, 9]));
    assert!(rx.missing(sender.stream_id()).is_empty());
    assert_eq!(rx.stats.refilled.load(Ordering::Relaxed), 4);
    assert_eq!(rx.stats.nacks.load(Ordering::Relaxed), 2);
    assert_eq!(sender.stats.nacks.load(Ordering::Relaxed), 2);
    nacks.abort();
}

#[tokio::test]
async fn a_lost_tail_is_found_by_the_heartbeat_and_asked_for() {
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key())
        .await
        .unwrap();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for seq in 0..5 {
        tx.send_to(&seal_record(&key(), 77, &record(seq, 8)), to)
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().record.seq, seq);
    }
    // 5..=9 were lost on the way; only the heartbeat can tell.
    tx.send_to(&seal_heartbeat(&key(), 77, 9), to)
        .await
        .unwrap();
    // A forged heartbeat claiming more is rejected before it is believed.
    let mut forged = seal_heartbeat(&key(), 77, 1000);
    forged[40] ^= 1;
    tx.send_to(&forged, to).await.unwrap();
    let receiving = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 5 {
            let r = rx.recv().await.unwrap();
            assert!(r.refill);
            got.push(r.record.seq);
        }
        (got, rx)
    });
    let mut buf = vec![0u8; 9000];
    let (n, _) = tx.recv_from(&mut buf).await.unwrap();
    match open(&key(), &buf[..n], 8192) {
        Ok(Datagram::Nack(nack)) => {
            assert_eq!(nack.stream_id, 77);
            assert_eq!(nack.seqs, [5, 6, 7, 8, 9]);
        }
        other => panic!("expected a NACK, got {other:?}"),
    }
    for seq in 5..10 {
        tx.send_to(&seal_record(&key(), 77, &record(seq, 8)), to)
            .await
            .unwrap();
    }
    let (got, rx) = receiving.await.unwrap();
    assert_eq!(got, [5, 6, 7, 8, 9]);
    assert!(rx.missing(77).is_empty());
    assert_eq!(rx.stats.bad_mac.load(Ordering::Relaxed), 1);
    assert_eq!(rx.stats.lost.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_huge_jump_keeps_only_the_newest_missing_numbers() {
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key())
        .await
        .unwrap();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    tx.send_to(&seal_record(&key(), 5, &record(0, 1)), to)
        .await
        .unwrap();
    rx.recv().await.unwrap();
    let far = 1u64 << 60;
    tx.send_to(&seal_record(&key(), 5, &record(far, 1)), to)
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap().record.seq, far);
    let missing = rx.missing(5);
    assert_eq!(missing.len(), aether_ipc::udp::MAX_MISSING);
    assert_eq!(missing.last(), Some(&(far - 1)));
    assert_eq!(
        rx.stats.lost.load(Ordering::Relaxed),
        far - 1 - aether_ipc::udp::MAX_MISSING as u64
    );
}

/// A record too large for a datagram is skipped when NACKed; the NACKs after it are
/// still served (a failed send used to end the NACK task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_does_not_stop_refills() {
    let j = journal();
    for seq in 0..12 {
        j.append(None, if seq == 5 { 9000 } else { 8 });
    }
    let mut rx = UdpReceiver::bind(&UdpConfig::default(), key())
        .await
        .unwrap();
    let sender = Arc::new(
        UdpSender::new(
            &UdpConfig::default(),
            rx.local_addr().unwrap(),
            key(),
            j.clone(),
        )
        .await
        .unwrap(),
    );
    let nacks = tokio::spawn({
        let sender = sender.clone();
        async move { sender.serve_nacks().await }
    });
    assert_eq!(
        sender.send(&record(5, 9000)).await.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    // Lost on the way: 3 and 7; 5 cannot be sent at all.
    for seq in [0u64, 1, 2, 4, 6, 8, 9, 10, 11] {
        sender.send(&record(seq, 8)).await.unwrap();
    }
    let mut got = BTreeSet::new();
    while got.len() < 11 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("refills of 3 and 7 within 10 s")
            .unwrap();
        got.insert(r.record.seq);
    }
    assert_eq!(got, (0..12).filter(|&s| s != 5).collect());
    assert_eq!(rx.missing(sender.stream_id()), [5]);
    assert!(!nacks.is_finished(), "the NACK task is still serving");
    nacks.abort();
}
