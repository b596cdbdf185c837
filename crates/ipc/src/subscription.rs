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
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::Notify;

use crate::client::ClientError;
use crate::fdpass::{self, Received};
use crate::frame::{self, DEFAULT_MAX_FRAME, Decoder};
use crate::msg::{Body, Frame, Lagged, RingAttach, Subscribe};
use crate::ring::{Entry, Fill, RingReader, RingWake};

/// Descriptors kept waiting for their [`RingAttach`] at most.
const MAX_PENDING_FDS: usize = 2;

/// A subscription from a cursor; read it with [`Subscription::next_frame_into`].
pub struct Subscription {
    stream: UnixStream,
    dec: Decoder,
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

/// A thread that turns a ring's futex into tokio wake-ups, one per ring and
/// process however many subscriptions read it: the reading tasks cannot block,
/// and each publication then wakes one thread, not one per subscription.
struct Waiter {
    notify: Notify,
}

/// A ring's device and inode numbers: which ring a descriptor is.
type RingId = (u64, u64);

/// The waiters of this process, by ring.
static WAITERS: Mutex<Vec<(RingId, Weak<Waiter>)>> = Mutex::new(Vec::new());

/// The waiter of the ring `fd` maps, started if there is none.
fn waiter_for(fd: &OwnedFd, wake: RingWake) -> io::Result<Arc<Waiter>> {
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
    let waiter = Arc::new(Waiter {
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
        loop {
            if self.in_ring() {
                if self.read_ring(frame).await? {
                    return Ok(());
                }
            } else if self.read_frame_from_socket(frame).await? {
                return Ok(());
            }
        }
    }

    /// One step of reading the ring; `true` when `frame` holds something.
    async fn read_ring(&mut self, frame: &mut Frame) -> Result<bool, ClientError> {
        let Some(ring) = self.ring.as_mut() else {
            return Ok(false);
        };
        let lost = match ring.reader.next_entry() {
            Ok(Some(Entry::Frame(bytes))) => {
                match frame::decode_frame_into(bytes, frame, DEFAULT_MAX_FRAME) {
                    Ok(()) => match &frame.body {
                        Some(Body::Record(r)) if r.seq < self.next => return Ok(false),
                        Some(Body::Record(r)) if r.seq == self.next => {
                            self.next += 1;
                            return Ok(true);
                        }
                        // A gap, or something a ring does not hold.
                        _ => true,
                    },
                    Err(_) => true,
                }
            }
            Ok(Some(Entry::Skipped(seq))) => seq >= self.next,
            Ok(None) => match ring.reader.fill() {
                Fill::Copied => return Ok(false),
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
                        return Ok(false);
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
                            if let Some(f) = self.dec.next_frame()? {
                                return match f.body {
                                    Some(Body::Error(e)) => Err(ClientError::Refused {
                                        code: e.code,
                                        message: e.message,
                                    }),
                                    other => {
                                        frame.body = other;
                                        Ok(true)
                                    }
                                };
                            }
                        }
                    }
                    return Ok(false);
                }
            },
            Err(_) => true,
        };
        if !lost {
            return Ok(false);
        }
        // Overrun (or a ring that makes no sense): tell the reader, and get
        // the records from the journal again.
        ring.reading = false;
        send_subscribe(&mut self.stream, self.next).await?;
        frame.body = Some(Body::Lagged(Lagged {
            resume_from: self.next,
        }));
        Ok(true)
    }

    /// One frame from the socket; `true` when `frame` holds something for
    /// the reader, `false` after a [`RingAttach`] was taken.
    async fn read_frame_from_socket(&mut self, frame: &mut Frame) -> Result<bool, ClientError> {
        while !self.dec.next_frame_into(frame)? {
            if self.read_socket().await? == 0 {
                self.dec.finish()?;
                return Err(ClientError::Closed);
            }
        }
        match &frame.body {
            Some(Body::Record(r)) => {
                self.next = self.next.max(r.seq + 1);
                Ok(true)
            }
            Some(Body::RingAttach(a)) => {
                let a = a.clone();
                self.attach(&a)?;
                Ok(false)
            }
            Some(Body::Error(e)) => Err(ClientError::Refused {
                code: e.code,
                message: e.message.clone(),
            }),
            _ => Ok(true),
        }
    }

    /// Maps the ring (or reuses the mapping) and reads on from the attachment.
    fn attach(&mut self, a: &RingAttach) -> Result<(), ClientError> {
        self.next = self.next.max(a.next_seq);
        if let Some(fd) = self.fds.pop_back() {
            self.fds.clear();
            let reader = RingReader::open(&fd, a.position)
                .map_err(|e| ClientError::Unexpected(e.to_string()))?;
            let waiter = waiter_for(&fd, reader.waker())?;
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
