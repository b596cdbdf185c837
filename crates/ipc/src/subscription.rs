//! A subscription that takes its live records from the server's shared-memory
//! ring ([`crate::ring`]) and everything else from its socket.
//!
//! The server replays the journal over the socket, then passes the ring's
//! descriptor with a [`RingAttach`]; from there the client copies records out of
//! the ring itself. When it finds it was overrun (it fell a whole ring behind)
//! it says so to its reader with a [`Lagged`] frame, as a socket subscriber is
//! told, and subscribes again on the same connection from the record it is
//! owed: replay, then the ring, with no gap and no duplicate. The reader of a
//! [`Subscription`] sees one stream of frames either way.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::Notify;

use crate::client::ClientError;
use crate::fdpass::{self, Received};
use crate::frame::{self, DEFAULT_MAX_FRAME, Decoder, RecordRef};
use crate::msg::{Body, Frame, Lagged, RingAttach, Subscribe};
use crate::ring::{Entry, Fill, RingMap, RingReader};

/// Descriptors kept waiting for their [`RingAttach`] at most.
const MAX_PENDING_FDS: usize = 2;

/// What [`Subscription::next`] gives.
#[derive(Debug)]
pub enum Delivery<'a> {
    /// A record.
    Record(RecordRef<'a>),
    /// Any other frame: a [`Lagged`] notice, a reply.
    Other(&'a Frame),
}

/// Where the next delivery is, once found.
enum Step {
    /// Look again.
    Again,
    /// The payload of a record in the ring's copy.
    RingRecord(Range<usize>),
    /// In `Subscription::frame`.
    Frame,
}

/// A subscription from a cursor; read it with [`Subscription::next`] or
/// [`Subscription::next_frame_into`].
pub struct Subscription {
    stream: UnixStream,
    dec: Decoder,
    /// The last frame read from the socket (or made here: `Lagged`).
    frame: Frame,
    /// The next record owed.
    next: u64,
    /// Descriptors received and not yet taken by a [`RingAttach`].
    fds: VecDeque<OwnedFd>,
    ring: Option<Attached>,
}

/// The ring, once mapped; `reading` while records come from it.
struct Attached {
    reader: RingReader,
    reading: bool,
    waiter: Arc<Waiter>,
}

/// How long the waiter sleeps before looking whether it should stop.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A ring as this process maps it, once however many subscriptions read it,
/// and a thread that turns its futex into tokio wake-ups: the reading tasks
/// cannot block, and each publication then wakes one thread, not one per
/// subscription.
struct Waiter {
    map: RingMap,
    notify: Notify,
}

/// A ring's device and inode numbers: which ring a descriptor is.
type RingId = (u64, u64);

/// The rings this process reads, by ring.
static WAITERS: Mutex<Vec<(RingId, Weak<Waiter>)>> = Mutex::new(Vec::new());

/// This process's mapping and waiter of the ring `fd` is, made if there is
/// none.
fn waiter_for(fd: &OwnedFd) -> Result<Arc<Waiter>, ClientError> {
    let meta = std::fs::File::from(fd.try_clone()?).metadata()?;
    let key = (meta.dev(), meta.ino());
    let mut all = WAITERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|(_, w)| w.strong_count() > 0);
    if let Some(w) = all
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(w);
    }
    let map = RingMap::open(fd).map_err(|e| ClientError::Unexpected(e.to_string()))?;
    let wake = map.waker();
    let waiter = Arc::new(Waiter {
        map,
        notify: Notify::new(),
    });
    let theirs = waiter.clone();
    std::thread::Builder::new()
        .name("aether-ring-wait".into())
        .spawn(move || {
            let mut seen = wake.load();
            // Ends once no subscription holds the waiter.
            while Arc::strong_count(&theirs) > 1 {
                wake.wait(seen, WAIT_SLICE);
                let now = wake.load();
                if now != seen {
                    seen = now;
                    theirs.notify.notify_waiters();
                }
            }
        })?;
    all.push((key, Arc::downgrade(&waiter)));
    Ok(waiter)
}

impl Subscription {
    /// Sends the subscription on a connected socket (the Welcome already read).
    pub(crate) async fn start(
        mut stream: UnixStream,
        dec: Decoder,
        since: u64,
    ) -> Result<Subscription, ClientError> {
        send_subscribe(&mut stream, since).await?;
        Ok(Subscription {
            stream,
            dec,
            frame: Frame::default(),
            next: since,
            fds: VecDeque::new(),
            ring: None,
        })
    }

    /// The next record owed: where this subscription would resume.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Whether live records are being read from the shared-memory ring.
    pub fn in_ring(&self) -> bool {
        self.ring.as_ref().is_some_and(|r| r.reading)
    }

    /// The next frame: a record, a [`Lagged`] notice (records go on from its
    /// `resume_from`), or whatever else the server sent. Decoded into `frame`
    /// to reuse its allocations.
    pub async fn next_frame_into(&mut self, frame: &mut Frame) -> Result<(), ClientError> {
        match self.next().await? {
            Delivery::Record(r) => match &mut frame.body {
                Some(Body::Record(mine)) => r.copy_into(mine),
                _ => frame.body = Some(Body::Record(r.to_record())),
            },
            Delivery::Other(f) => frame.clone_from(f),
        }
        Ok(())
    }

    /// The next record (borrowed from this subscription's buffers until the
    /// next call: nothing is copied out of the ring but into one buffer) or
    /// other frame, as [`Subscription::next_frame_into`] gives them.
    pub async fn next(&mut self) -> Result<Delivery<'_>, ClientError> {
        loop {
            let step = if self.in_ring() {
                self.ring_step().await?
            } else {
                self.socket_step().await?
            };
            match step {
                Step::Again => continue,
                Step::RingRecord(payload) => {
                    let view = self
                        .ring
                        .as_ref()
                        .and_then(|r| frame::record_ref(r.reader.bytes(payload)));
                    if let Some(view) = view {
                        return Ok(Delivery::Record(view));
                    }
                    // ring_step parsed it already: unreachable in practice.
                    return Err(ClientError::Unexpected("a ring record vanished".into()));
                }
                Step::Frame => {
                    return Ok(match &self.frame.body {
                        Some(Body::Record(r)) => Delivery::Record(RecordRef {
                            seq: r.seq,
                            time_ns: r.time_ns,
                            kind: r.kind,
                            name: &r.name,
                            data: &r.data,
                        }),
                        _ => Delivery::Other(&self.frame),
                    });
                }
            }
        }
    }

    /// One step of reading the ring.
    async fn ring_step(&mut self) -> Result<Step, ClientError> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(Step::Again);
        };
        let lost = match ring.reader.next_entry() {
            Ok(Some(Entry::Frame(at))) => {
                let bytes = ring.reader.bytes(at.clone());
                let payload = bytes
                    .first_chunk::<{ frame::HEADER_LEN }>()
                    .and_then(|h| frame::parse_header(h, DEFAULT_MAX_FRAME).ok())
                    .filter(|&len| len + frame::HEADER_LEN == bytes.len())
                    .map(|_| at.start + frame::HEADER_LEN..at.end);
                let seq = payload
                    .clone()
                    .and_then(|p| frame::record_ref(ring.reader.bytes(p)))
                    .map(|r| r.seq);
                match (payload, seq) {
                    (Some(_), Some(seq)) if seq < self.next => return Ok(Step::Again),
                    (Some(p), Some(seq)) if seq == self.next => {
                        self.next += 1;
                        return Ok(Step::RingRecord(p));
                    }
                    // A gap, or something a ring does not hold.
                    _ => true,
                }
            }
            Ok(Some(Entry::Skipped(seq))) => seq >= self.next,
            Ok(None) => match ring.reader.fill() {
                Fill::Copied => return Ok(Step::Again),
                Fill::Overrun => true,
                Fill::Closed => return Err(ClientError::Closed),
                Fill::Empty(_) => {
                    let waiter = ring.waiter.clone();
                    // Registered before looking again, so that a publication
                    // between the look and the wait still wakes this task.
                    let notified = waiter.notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if !matches!(ring.reader.fill(), Fill::Empty(_)) {
                        return Ok(Step::Again);
                    }
                    tokio::select! {
                        _ = notified => {}
                        r = self.stream.readable() => {
                            r?;
                            // In the ring the server only answers; anything
                            // here is an error or the end.
                            if self.try_read_socket()? == Some(0) {
                                return Err(ClientError::Closed);
                            }
                            if self.dec.next_frame_into(&mut self.frame)? {
                                if let Some(Body::Error(e)) = &self.frame.body {
                                    return Err(ClientError::Refused {
                                        code: e.code,
                                        message: e.message.clone(),
                                    });
                                }
                                return Ok(Step::Frame);
                            }
                        }
                    }
                    return Ok(Step::Again);
                }
            },
            Err(_) => true,
        };
        if !lost {
            return Ok(Step::Again);
        }
        // Overrun (or a ring that makes no sense): tell the reader, and get
        // the records from the journal again.
        ring.reading = false;
        send_subscribe(&mut self.stream, self.next).await?;
        self.frame.body = Some(Body::Lagged(Lagged {
            resume_from: self.next,
        }));
        Ok(Step::Frame)
    }

    /// One frame from the socket.
    async fn socket_step(&mut self) -> Result<Step, ClientError> {
        while !self.dec.next_frame_into(&mut self.frame)? {
            if self.read_socket().await? == 0 {
                self.dec.finish()?;
                return Err(ClientError::Closed);
            }
        }
        match &self.frame.body {
            Some(Body::Record(r)) => {
                self.next = self.next.max(r.seq + 1);
                Ok(Step::Frame)
            }
            Some(Body::RingAttach(a)) => {
                let a = a.clone();
                self.attach(&a)?;
                Ok(Step::Again)
            }
            Some(Body::Error(e)) => Err(ClientError::Refused {
                code: e.code,
                message: e.message.clone(),
            }),
            _ => Ok(Step::Frame),
        }
    }

    /// Maps the ring (or reuses the mapping) and reads on from the attachment.
    fn attach(&mut self, a: &RingAttach) -> Result<(), ClientError> {
        self.next = self.next.max(a.next_seq);
        if let Some(fd) = self.fds.pop_back() {
            self.fds.clear();
            let waiter = waiter_for(&fd)?;
            let reader = waiter.map.reader(a.position);
            self.ring = Some(Attached {
                reader,
                reading: true,
                waiter,
            });
            return Ok(());
        }
        match self.ring.as_mut() {
            Some(ring) => {
                ring.reader.seek(a.position);
                ring.reading = true;
                Ok(())
            }
            None => Err(ClientError::Unexpected(
                "RingAttach without a ring descriptor".into(),
            )),
        }
    }

    /// One read from the socket, keeping what descriptors came with it.
    async fn read_socket(&mut self) -> Result<usize, ClientError> {
        loop {
            self.stream.readable().await?;
            if let Some(n) = self.try_read_socket()? {
                return Ok(n);
            }
        }
    }

    /// One read from the socket if it has anything; `None`: it had not.
    fn try_read_socket(&mut self) -> Result<Option<usize>, ClientError> {
        let raw = self.stream.as_raw_fd();
        let mut got = Received::default();
        let buf = self.dec.buffer();
        match self.stream.try_io(Interest::READABLE, || {
            fdpass::recv_with_fds(raw, buf, &mut got)
        }) {
            Ok(n) => {
                if got.truncated {
                    return Err(ClientError::Unexpected(
                        "descriptors lost in transit (control data truncated)".into(),
                    ));
                }
                self.fds.extend(got.fds);
                while self.fds.len() > MAX_PENDING_FDS {
                    self.fds.pop_front();
                }
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

async fn send_subscribe(stream: &mut UnixStream, since: u64) -> Result<(), ClientError> {
    let sub = Subscribe {
        since,
        shared_memory: true,
    };
    stream
        .write_all(&frame::encode(&Frame::new(Body::Subscribe(sub))))
        .await?;
    Ok(())
}
