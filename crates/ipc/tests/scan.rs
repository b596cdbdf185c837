//! Descriptor scans over real sockets: pipelined requests answered once each
//! under their ids, the in-flight bound, descriptors that are refused (FIFO,
//! directory, write-only, O_PATH, none at all), descriptors passed with the
//! wrong bytes, garbage, and a server that does not scan.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aether_ipc::frame::{self, Decoder};
use aether_ipc::msg::{
    Body, ErrorCode, Frame, Hello, ScanDetection, ScanErrorCode, ScanFd, ScanResult, ScanVerdict,
};
use aether_ipc::{
    ClientError, GroupPolicy, Hub, PeerCred, RefusalLog, Refused, ScanClient, ScanFuture,
    ScanHandler, Server, ServerConfig,
};

/// Reads the passed file whole: `EVIL` anywhere is a detection. With a gate,
/// each scan first waits for a permit, so that scans can be held in flight.
#[derive(Default)]
struct Reader {
    running: AtomicUsize,
    most: AtomicUsize,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

struct Handler(Arc<Reader>);

impl ScanHandler for Handler {
    fn scan(&self, _peer: &PeerCred, request: ScanFd, mut file: File) -> ScanFuture {
        let r = Arc::clone(&self.0);
        let now = r.running.fetch_add(1, Ordering::SeqCst) + 1;
        r.most.fetch_max(now, Ordering::SeqCst);
        Box::pin(async move {
            if let Some(g) = &r.gate {
                g.acquire().await.unwrap().forget();
            }
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            r.running.fetch_sub(1, Ordering::SeqCst);
            let evil = data.windows(4).any(|w| w == b"EVIL");
            ScanResult {
                // Deliberately wrong: the server puts the request's id back.
                id: u64::MAX,
                verdict: if evil {
                    ScanVerdict::Infected
                } else {
                    ScanVerdict::Clean
                } as i32,
                detections: evil
                    .then(|| ScanDetection {
                        signature: "Test.Evil".into(),
                        chain: vec![request.path.clone()],
                    })
                    .into_iter()
                    .collect(),
                size: data.len() as u64,
                bytes_scanned: data.len() as u64,
                ..ScanResult::default()
            }
        })
    }
}

struct Setup {
    dir: tempfile::TempDir,
    path: PathBuf,
    handler: Arc<Reader>,
    rt: tokio::runtime::Runtime,
    refusals: Arc<Refusals>,
}

/// Every refusal the server reports, in order.
#[derive(Default)]
struct Refusals(std::sync::Mutex<Vec<(PeerCred, Refused, String)>>);

impl RefusalLog for Refusals {
    fn refused(&self, peer: &PeerCred, what: Refused, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push((*peer, what, reason.to_string()));
    }
}

fn start(scans: bool, window: usize, gate: Option<Arc<tokio::sync::Semaphore>>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let handler = Arc::new(Reader {
        gate,
        ..Reader::default()
    });
    let refusals = Arc::new(Refusals::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ServerConfig {
        max_frame: 4096,
        frame_timeout: Duration::from_millis(500),
        authorize: Arc::new(GroupPolicy { group: None }),
        control: None,
        scan: scans.then(|| Arc::new(Handler(handler.clone())) as Arc<dyn ScanHandler>),
        max_scans_in_flight: window,
        refusals: Some(refusals.clone()),
    };
    let _guard = rt.enter();
    let server = Server::bind(&path, 0o600, config, Hub::new(4), common::journal()).unwrap();
    rt.spawn(server.run());
    drop(_guard);
    Setup {
        dir,
        path,
        handler,
        rt,
        refusals,
    }
}

fn request(id: u64, path: &str) -> ScanFd {
    ScanFd {
        id,
        path: path.into(),
        options: None,
    }
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn pipelined_requests_are_each_answered_under_their_id() {
    let s = start(true, 8, None);
    let client = ScanClient::connect(&s.path, "test", TIMEOUT).unwrap();
    assert_eq!(client.window(), 8);
    let (mut tx, mut rx) = client.split().unwrap();
    let n = 200u64;
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let body = if i.is_multiple_of(7) {
                format!("{i} EVIL {i}")
            } else {
                format!("clean file number {i}")
            };
            write(s.dir.path(), &format!("f{i}"), body.as_bytes())
        })
        .collect();
    // The sender stays at most a window ahead of the answers.
    let (slots_tx, slots_rx) = std::sync::mpsc::sync_channel::<()>(8);
    let sender = std::thread::spawn(move || {
        for (i, f) in files.iter().enumerate() {
            slots_tx.send(()).unwrap();
            let file = File::open(f).unwrap();
            tx.send(&request(i as u64, &format!("f{i}")), file.as_fd())
                .unwrap();
        }
        tx.finish().unwrap();
    });
    let mut seen = vec![false; n as usize];
    for _ in 0..n {
        let r = rx.recv().unwrap();
        slots_rx.recv().unwrap();
        let i = r.id as usize;
        assert!(!seen[i], "answered twice: {i}");
        seen[i] = true;
        let evil = i.is_multiple_of(7);
        let body_len = if evil {
            format!("{i} EVIL {i}").len()
        } else {
            format!("clean file number {i}").len()
        };
        assert_eq!(r.size, body_len as u64);
        if evil {
            assert_eq!(r.verdict, ScanVerdict::Infected as i32);
            assert_eq!(r.detections[0].chain, [format!("f{i}")]);
        } else {
            assert_eq!(r.verdict, ScanVerdict::Clean as i32, "{r:?}");
        }
    }
    sender.join().unwrap();
    // Everything answered, then the server closes after our shutdown.
    assert!(matches!(rx.recv(), Err(ClientError::Closed)));
    assert!(s.handler.most.load(Ordering::SeqCst) <= 8);
}

#[test]
fn no_more_than_the_window_is_in_flight() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let s = start(true, 3, Some(gate.clone()));
    let client = ScanClient::connect(&s.path, "test", TIMEOUT).unwrap();
    let (mut tx, mut rx) = client.split().unwrap();
    let f = write(s.dir.path(), "x", b"data");
    // Ten requests sent at once: the server takes three and reads no more
    // until one is answered.
    let sender = std::thread::spawn(move || {
        for i in 0..10 {
            let file = File::open(&f).unwrap();
            tx.send(&request(i, "x"), file.as_fd()).unwrap();
        }
        tx
    });
    let deadline = std::time::Instant::now() + TIMEOUT;
    while s.handler.running.load(Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let tx = sender.join().unwrap();
    // All ten were written (the socket buffers them), three are running.
    assert_eq!(s.handler.running.load(Ordering::SeqCst), 3);
    let mut ids = Vec::new();
    for _ in 0..10 {
        gate.add_permits(1);
        ids.push(rx.recv().unwrap().id);
        assert!(s.handler.most.load(Ordering::SeqCst) <= 3);
    }
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_eq!(s.handler.most.load(Ordering::SeqCst), 3);
    drop(tx);
}

fn refusal(r: &ScanResult) -> (i32, ScanErrorCode, String) {
    let e = r.error.clone().unwrap();
    (
        r.verdict,
        ScanErrorCode::try_from(e.code).unwrap(),
        e.message,
    )
}

#[test]
fn unfit_descriptors_are_refused_and_the_connection_goes_on() {
    let s = start(true, 4, None);
    let client = ScanClient::connect(&s.path, "test", TIMEOUT).unwrap();
    let (mut tx, mut rx) = client.split().unwrap();
    let dir = s.dir.path();
    let good = write(dir, "good", b"fine");

    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo_fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    tx.send(&request(1, "fifo"), fifo_fd.as_fd()).unwrap();
    let r = rx.recv().unwrap();
    assert_eq!(r.id, 1);
    let (verdict, code, msg) = refusal(&r);
    assert_eq!(verdict, ScanVerdict::Refused as i32);
    assert_eq!(code, ScanErrorCode::NotRegular);
    assert!(msg.contains("FIFO"), "{msg}");

    let d = File::open(dir).unwrap();
    tx.send(&request(2, "dir"), d.as_fd()).unwrap();
    let (_, code, msg) = refusal(&rx.recv().unwrap());
    assert_eq!(code, ScanErrorCode::NotRegular);
    assert!(msg.contains("directory"), "{msg}");

    let w = std::fs::OpenOptions::new().write(true).open(&good).unwrap();
    tx.send(&request(3, "wo"), w.as_fd()).unwrap();
    assert_eq!(refusal(&rx.recv().unwrap()).1, ScanErrorCode::NotReadable);

    let p = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&good)
        .unwrap();
    tx.send(&request(4, "opath"), p.as_fd()).unwrap();
    assert_eq!(refusal(&rx.recv().unwrap()).1, ScanErrorCode::NotReadable);

    // The connection still serves.
    let f = File::open(&good).unwrap();
    tx.send(&request(6, "good"), f.as_fd()).unwrap();
    let r = rx.recv().unwrap();
    assert_eq!((r.id, r.verdict, r.size), (6, ScanVerdict::Clean as i32, 4));

    // Each refusal was reported, with the peer and the reason it was told;
    // the scan that went through was not.
    let got = s.refusals.0.lock().unwrap().clone();
    let reasons: Vec<&str> = got.iter().map(|(_, _, r)| r.as_str()).collect();
    assert_eq!(got.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].contains("FIFO") && reasons[1].contains("directory"),
        "{reasons:?}"
    );
    for (peer, what, _) in &got {
        assert_eq!(*what, Refused::Scan);
        assert_eq!(peer.pid, Some(std::process::id() as i32));
        // SAFETY: geteuid has no preconditions.
        assert_eq!(peer.uid, unsafe { libc::geteuid() });
    }
}

/// A second raw connection, for requests the client API would not send.
fn tx_raw(path: &Path) -> std::os::unix::net::UnixStream {
    let s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn read_frames(mut s: &std::os::unix::net::UnixStream, want: usize) -> Vec<Body> {
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < want {
        while let Some(f) = d.next_frame().unwrap() {
            out.extend(f.body);
        }
        if out.len() >= want {
            break;
        }
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        d.extend(&buf[..n]);
    }
    out
}

#[test]
fn a_request_without_a_descriptor_does_not_take_the_next_one() {
    let s = start(true, 4, None);
    let good = write(s.dir.path(), "good", b"fine!");
    let sock = tx_raw(&s.path);
    assert!(matches!(read_frames(&sock, 1)[..], [Body::Welcome(_)]));
    // Request 1 without a descriptor and request 2 with one, back to back:
    // the descriptor belongs to 2 (it came with 2's bytes).
    let one = frame::encode(&Frame::new(Body::ScanFd(request(1, "none"))));
    (&sock).write_all(&one).unwrap();
    let f = File::open(&good).unwrap();
    let client_side = aether_ipc_send(&sock, &request(2, "good"), &f);
    assert!(client_side);
    let got = read_frames(&sock, 2);
    let mut answers: Vec<ScanResult> = got
        .into_iter()
        .map(|b| match b {
            Body::ScanResult(r) => r,
            other => panic!("{other:?}"),
        })
        .collect();
    answers.sort_by_key(|r| r.id);
    assert_eq!(answers[0].id, 1);
    assert_eq!(refusal(&answers[0]).1, ScanErrorCode::NoDescriptor);
    assert_eq!(
        (answers[1].id, answers[1].verdict, answers[1].size),
        (2, ScanVerdict::Clean as i32, 5)
    );
}

/// Sends one ScanFd with a descriptor the way `ScanSender` does, on a raw
/// socket (through a throwaway sender built from a clone).
fn aether_ipc_send(sock: &std::os::unix::net::UnixStream, req: &ScanFd, f: &File) -> bool {
    use std::os::fd::AsRawFd;
    let bytes = frame::encode(&Frame::new(Body::ScanFd(req.clone())));
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: a one-descriptor SCM_RIGHTS message over live buffers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), f.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, 0) == bytes.len() as isize
    }
}

#[test]
fn a_descriptor_passed_with_other_bytes_ends_the_connection() {
    let s = start(true, 4, None);
    let good = write(s.dir.path(), "good", b"fine");
    let sock = tx_raw(&s.path);
    assert!(matches!(read_frames(&sock, 1)[..], [Body::Welcome(_)]));
    // A descriptor riding on a Hello, then a ScanFd without one.
    use std::os::fd::AsRawFd;
    let hello = frame::encode(&Frame::new(Body::Hello(Hello {
        version: 1,
        client: "x".into(),
    })));
    let f = File::open(&good).unwrap();
    let mut iov = libc::iovec {
        iov_base: hello.as_ptr().cast_mut().cast(),
        iov_len: hello.len(),
    };
    let mut control = [0u64; 4];
    // SAFETY: as in aether_ipc_send.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), f.as_raw_fd());
        assert!(libc::sendmsg(sock.as_raw_fd(), &msg, 0) > 0);
    }
    let req = frame::encode(&Frame::new(Body::ScanFd(request(1, "x"))));
    (&sock).write_all(&req).unwrap();
    match &read_frames(&sock, 2)[..] {
        [Body::Error(e)] => {
            assert_eq!(e.code, ErrorCode::BadFrame as i32);
            assert!(e.message.contains("not a ScanFd"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_scan_frames_are_refused() {
    let s = start(true, 4, None);
    let sock = tx_raw(&s.path);
    assert!(matches!(read_frames(&sock, 1)[..], [Body::Welcome(_)]));
    // A ScanFd body (field 10) whose path field runs past the end.
    (&sock)
        .write_all(&[b'A', b'E', 1, 0, 0, 0, 0, 4, 0x52, 0x02, 0x12, 0x09])
        .unwrap();
    match &read_frames(&sock, 2)[..] {
        [Body::Error(e)] => assert_eq!(e.code, ErrorCode::BadFrame as i32),
        other => panic!("{other:?}"),
    }
    // A ScanResult sent to the server is not a request: ignored, said so.
    let sock = tx_raw(&s.path);
    assert!(matches!(read_frames(&sock, 1)[..], [Body::Welcome(_)]));
    let r = frame::encode(&Frame::new(Body::ScanResult(ScanResult::default())));
    (&sock).write_all(&r).unwrap();
    match &read_frames(&sock, 1)[..] {
        [Body::Error(e)] => assert_eq!(e.code, ErrorCode::UnknownMessage as i32),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_without_a_scanner_says_so() {
    let s = start(false, 4, None);
    match ScanClient::connect(&s.path, "test", TIMEOUT) {
        Err(ClientError::Unexpected(m)) => assert!(m.contains("no scan"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to a server that does not scan"),
    }
    // A request anyway: refused, not scanned.
    let sock = tx_raw(&s.path);
    let f = File::open(s.dir.path()).unwrap();
    assert!(aether_ipc_send(&sock, &request(3, "x"), &f));
    match &read_frames(&sock, 2)[..] {
        [Body::Welcome(w), Body::ScanResult(r)] => {
            assert_eq!(w.max_scans_in_flight, 0);
            assert_eq!(r.id, 3);
            assert_eq!(refusal(r).1, ScanErrorCode::NotAllowed);
        }
        other => panic!("{other:?}"),
    }
    drop(s.rt);
}
