//! The Unix-socket transport against real sockets: subscriptions across the
//! replay-to-live switch, lag, hundreds of subscribers, bad frames, and peers of
//! other uids (child processes switched to another uid; CI runs as root).

mod common;

use std::path::Path;
use std::process::Command;

use aether_ipc::Client;
use aether_ipc::frame::{self, Decoder};
use aether_ipc::msg::{Body, Control, ErrorCode, Frame};
use common::{GROUP, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Reads records until `last` arrives; returns their seqs and the Lagged cursors seen.
async fn read_until(client: &mut Client, last: u64) -> (Vec<u64>, Vec<u64>) {
    let mut seqs = Vec::new();
    let mut lags = Vec::new();
    loop {
        match client.next_frame().await.unwrap().body {
            Some(Body::Record(r)) => {
                seqs.push(r.seq);
                if r.seq == last {
                    return (seqs, lags);
                }
            }
            Some(Body::Lagged(l)) => lags.push(l.resume_from),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_replays_then_goes_live_without_gap_or_duplicate() {
    let s = start(4096);
    for _ in 0..1000 {
        s.journal.append(None, 16);
    }
    let mut client = Client::connect(&s.path).await.unwrap();
    assert_eq!(client.welcome().uid, 0);
    assert!(client.welcome().control_allowed);
    client.subscribe(500).await.unwrap();
    // Publish while the subscriber is replaying: the switch happens mid-stream.
    let (journal, hub) = (s.journal.clone(), s.hub.clone());
    let publisher = tokio::spawn(async move {
        for i in 0..2000 {
            journal.append(Some(&hub), 16);
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let (seqs, lags) = read_until(&mut client, 2999).await;
    publisher.await.unwrap();
    assert!(lags.is_empty());
    assert_eq!(seqs, (500..3000).collect::<Vec<_>>());
}

/// Batches as a journal commits them (sizes around and above MAX_BATCH), with
/// subscribers joining at cursors inside batches while they are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_reach_subscribers_from_any_cursor_without_gap_or_duplicate() {
    let s = start(64);
    s.journal.append_batch(&s.hub, 700, 16);
    let mut early = Client::connect(&s.path).await.unwrap();
    early.subscribe(0).await.unwrap();
    let (journal, hub) = (s.journal.clone(), s.hub.clone());
    let publisher = tokio::spawn(async move {
        for n in [1, 255, 256, 257, 600, 3, 1000, 77] {
            journal.append_batch(&hub, n, 16);
            tokio::task::yield_now().await;
        }
    });
    // 700 + 2449 records: 0..3149. Cursors inside batches, before and after the
    // publisher's, and past what exists yet.
    let last = 3148;
    let mut mids = Vec::new();
    for since in [1, 699, 700, 956, 1213, 2000, 3100] {
        let mut c = Client::connect(&s.path).await.unwrap();
        c.subscribe(since).await.unwrap();
        mids.push((since, c));
    }
    publisher.await.unwrap();
    let (seqs, lags) = read_until(&mut early, last).await;
    assert!(lags.is_empty());
    assert_eq!(seqs, (0..=last).collect::<Vec<_>>());
    for (since, mut c) in mids {
        let (seqs, _) = read_until(&mut c, last).await;
        assert_eq!(seqs, (since..=last).collect::<Vec<_>>(), "from {since}");
    }
    // Split at MAX_BATCH: no slot holds more.
    assert_eq!(aether_ipc::MAX_BATCH, 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_it_lagged_and_resumes_from_its_cursor() {
    let s = start(8);
    let mut client = Client::connect(&s.path).await.unwrap();
    client.subscribe(0).await.unwrap();
    // Let the server's subscription exist before publishing (it is when one record
    // has arrived).
    s.journal.append(Some(&s.hub), 1024);
    let (first, _) = read_until(&mut client, 0).await;
    assert_eq!(first, [0]);
    // 4 MiB while the client reads nothing: far more than the socket buffers and the
    // hub's 8 records hold.
    for _ in 1..4000 {
        s.journal.append(Some(&s.hub), 1024);
    }
    let (seqs, lags) = read_until(&mut client, 3999).await;
    assert!(!lags.is_empty(), "the subscriber was never told it lagged");
    assert_eq!(seqs, (1..4000).collect::<Vec<_>>());
    // Each Lagged names the next record that followed it.
    for l in &lags {
        assert!(*l >= 1 && *l < 4000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_and_fifty_concurrent_subscribers() {
    let s = start(1024);
    for _ in 0..200 {
        s.journal.append(None, 32);
    }
    let mut tasks = Vec::new();
    for i in 0..250u64 {
        let path = s.path.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&path).await.unwrap();
            let since = i % 100;
            client.subscribe(since).await.unwrap();
            let (seqs, lags) = read_until(&mut client, 1199).await;
            assert_eq!(seqs, (since..1200).collect::<Vec<_>>(), "subscriber {i}");
            lags.len()
        }));
    }
    // Publish while they connect and replay.
    for i in 0..1000 {
        s.journal.append(Some(&s.hub), 32);
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn raw_connect(path: &Path) -> (UnixStream, Decoder) {
    let mut stream = UnixStream::connect(path).await.unwrap();
    let mut dec = Decoder::new(1 << 20);
    let welcome = read_frame(&mut stream, &mut dec).await.unwrap();
    assert!(matches!(welcome.body, Some(Body::Welcome(_))));
    (stream, dec)
}

/// The next frame, or `None` when the server closed the connection.
async fn read_frame(stream: &mut UnixStream, dec: &mut Decoder) -> Option<Frame> {
    loop {
        if let Some(f) = dec.next_frame().unwrap() {
            return Some(f);
        }
        if stream.read_buf(dec.buffer()).await.unwrap() == 0 {
            return None;
        }
    }
}

async fn expect_error_then_close(stream: &mut UnixStream, dec: &mut Decoder, code: ErrorCode) {
    match read_frame(stream, dec).await.map(|f| f.body) {
        Some(Some(Body::Error(e))) => assert_eq!(e.code, code as i32, "{}", e.message),
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert!(
        read_frame(stream, dec).await.is_none(),
        "connection left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_partial_frames_close_the_connection() {
    let s = start(16);
    let (mut c, mut dec) = raw_connect(&s.path).await;
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    expect_error_then_close(&mut c, &mut dec, ErrorCode::BadFrame).await;

    // Announces 1 MiB, over the server's 4096.
    let (mut c, mut dec) = raw_connect(&s.path).await;
    c.write_all(&[b'A', b'E', 1, 0, 0, 0x10, 0, 0])
        .await
        .unwrap();
    expect_error_then_close(&mut c, &mut dec, ErrorCode::BadFrame).await;

    // Half a frame, then nothing: closed after the frame timeout (slowloris).
    let (mut c, mut dec) = raw_connect(&s.path).await;
    let whole = frame::encode(&Frame::new(Body::Hello(aether_ipc::msg::Hello {
        version: 1,
        client: "slow".into(),
    })));
    c.write_all(&whole[..5]).await.unwrap();
    expect_error_then_close(&mut c, &mut dec, ErrorCode::BadFrame).await;

    // An unknown body is answered and the connection goes on.
    let (mut c, mut dec) = raw_connect(&s.path).await;
    c.write_all(&[b'A', b'E', 1, 0, 0, 0, 0, 3, 0xa2, 0x01, 0x00])
        .await
        .unwrap();
    match read_frame(&mut c, &mut dec).await.and_then(|f| f.body) {
        Some(Body::Error(e)) => assert_eq!(e.code, ErrorCode::UnknownMessage as i32),
        other => panic!("{other:?}"),
    }
    let ping = Frame::new(Body::Control(Control {
        id: 9,
        command: "status".into(),
        argument: String::new(),
    }));
    c.write_all(&frame::encode(&ping)).await.unwrap();
    match read_frame(&mut c, &mut dec).await.and_then(|f| f.body) {
        Some(Body::ControlReply(r)) => assert!(r.ok && r.id == 9, "{r:?}"),
        other => panic!("{other:?}"),
    }
}

/// Runs a Python client as `uid`/`gid` (no supplementary groups): it prints the
/// first frame the server sends, hex, then sends `send` (hex) if given and prints the
/// next frame.
fn foreign_client(path: &Path, uid: u32, gid: u32, send: Option<&[u8]>) -> Vec<Frame> {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def frame():
    h = b""
    while len(h) < 8:
        c = s.recv(8 - len(h))
        if not c: return ""
        h += c
    n = int.from_bytes(h[4:8], "big")
    p = b""
    while len(p) < n:
        c = s.recv(n - len(p))
        if not c: break
        p += c
    return (h + p).hex()
print(frame())
if len(sys.argv) > 2:
    s.sendall(bytes.fromhex(sys.argv[2]))
    print(frame())
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(path);
    if let Some(bytes) = send {
        cmd.arg(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    // std drops supplementary groups (setgroups(0)) when a root parent sets a uid.
    use std::os::unix::process::CommandExt;
    let out = cmd.uid(uid).gid(gid).output().expect("running python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let bytes: Vec<u8> = (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect();
            let mut d = Decoder::new(1 << 20);
            d.extend(&bytes);
            d.next_frame().unwrap().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_other_uids_are_refused_and_only_root_controls() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root to run children as other uids"
    );
    let s = start(16);
    let path = s.path.clone();
    let frames = tokio::task::spawn_blocking(move || foreign_client(&path, 65534, 65534, None))
        .await
        .unwrap();
    match &frames[..] {
        [
            Frame {
                body: Some(Body::Error(e)),
            },
        ] => {
            assert_eq!(e.code, ErrorCode::PermissionDenied as i32);
            assert!(e.message.contains("uid 65534"), "{}", e.message);
        }
        other => panic!("a stranger got {other:?}"),
    }

    // A member of the group connects, but its control command is refused.
    let control = frame::encode(&Frame::new(Body::Control(Control {
        id: 3,
        command: "shutdown".into(),
        argument: String::new(),
    })));
    let path = s.path.clone();
    let frames =
        tokio::task::spawn_blocking(move || foreign_client(&path, 65534, GROUP, Some(&control)))
            .await
            .unwrap();
    match &frames[..] {
        [
            Frame {
                body: Some(Body::Welcome(w)),
            },
            Frame {
                body: Some(Body::ControlReply(r)),
            },
        ] => {
            assert_eq!(w.uid, 65534);
            assert!(!w.control_allowed);
            assert!(!r.ok && r.id == 3, "{r:?}");
        }
        other => panic!("a group member got {other:?}"),
    }

    // Root's command is carried out.
    let mut root = Client::connect(&s.path).await.unwrap();
    let r = root.control(4, "reload", "").await.unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.message, "reload done for uid 0");
}
