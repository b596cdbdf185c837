//! The Unix-socket transport: a server publishing journal records to subscribers,
//! each from its own cursor, and obeying control commands from root.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use crate::auth::{Authorize, PeerCred};
use crate::frame::{self, Decoder, FrameError};
use crate::msg::{
    Body, Control, ControlReply, Error as ErrorMsg, ErrorCode, Frame, Lagged, Record, Welcome,
};

/// Where a subscription's past comes from: the journal. `read_from(seq, max)` returns
/// up to `max` committed records with sequence numbers `>= seq`, in order; fewer than
/// `max` means "that is all for now".
///
/// The contract with [`Hub::publish`]: a record is published only after `read_from`
/// can return it. That is what lets a subscriber switch from replay to live records
/// with no gap.
pub trait Replay: Send + Sync + 'static {
    /// Records from `seq` on, at most `max`.
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String>;
}

/// The answer to control commands, for peers [`Authorize::may_control`] allows.
/// Queries (commands that change nothing, such as `status`) may be answered for any
/// peer allowed to connect. [`ControlHandler::control`] runs on a blocking thread:
/// a command may take seconds (a reload compiles a database).
pub trait ControlHandler: Send + Sync + 'static {
    /// Carries out `command` for `peer`.
    fn control(&self, peer: &PeerCred, command: &Control) -> ControlReply;
    /// Whether `command` only reads, so that any connected peer may send it.
    fn is_query(&self, command: &str) -> bool {
        let _ = command;
        false
    }
}

/// The live side: records published here go to every subscriber that has caught up.
/// Publishing never waits: each subscriber may fall a bounded number of records
/// behind; past that it is told it lagged and catches up from the [`Replay`] source on
/// its own connection, so the publisher (the sensor) is never slowed and memory stays
/// bounded.
///
/// Records are published in batches ([`Hub::publish_batch`]), as a journal commits
/// them: a batch is framed once, and a subscriber that is caught up is woken once per
/// batch and writes it with one system call. With 16 subscribers at 50,000 records a
/// second, waking each one per record (800,000 wake-ups and writes a second) was what
/// saturated two cores; per batch it is a few thousand.
#[derive(Clone, Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
}

/// Records per published batch at most; larger batches are split, so that one slot of
/// the hub never holds more than this.
pub const MAX_BATCH: usize = 256;

/// Published records, framed once for every subscriber: `frames` holds the frames one
/// after the other, `ends[i]` is where record `seqs[i]`'s frame ends.
#[derive(Debug)]
struct Published {
    seqs: Vec<u64>,
    ends: Vec<usize>,
    frames: Vec<u8>,
}

impl Published {
    fn first(&self) -> u64 {
        self.seqs.first().copied().unwrap_or(0)
    }

    fn last(&self) -> u64 {
        self.seqs.last().copied().unwrap_or(0)
    }

    /// The frames of the records numbered `next` or more.
    fn from(&self, next: u64) -> &[u8] {
        let i = self.seqs.partition_point(|&s| s < next);
        let start = match i.checked_sub(1) {
            Some(j) => self.ends.get(j).copied().unwrap_or(self.frames.len()),
            None => 0,
        };
        self.frames.get(start..).unwrap_or(&[])
    }
}

impl Hub {
    /// A hub that holds the last `capacity` published batches for its slowest
    /// subscriber: one falling further behind is told it lagged. Memory is bounded by
    /// `capacity` batches of at most [`MAX_BATCH`] records (a publisher of single
    /// records: `capacity` records).
    pub fn new(capacity: usize) -> Hub {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Sends a committed record to the subscribers.
    pub fn publish(&self, record: Record) {
        self.publish_batch(vec![record]);
    }

    /// Sends committed records to the subscribers, in ascending sequence order (as
    /// one journal commit gives them).
    pub fn publish_batch(&self, records: Vec<Record>) {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut p = Published {
                seqs: Vec::new(),
                ends: Vec::new(),
                frames: Vec::new(),
            };
            for record in records.by_ref().take(MAX_BATCH) {
                p.seqs.push(record.seq);
                frame::encode_into(&Frame::new(Body::Record(record)), &mut p.frames);
                p.ends.push(p.frames.len());
            }
            // No receiver is not an error: nobody is subscribed.
            let _ = self.tx.send(Arc::new(p));
        }
    }

    /// Subscribers currently receiving live records.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// How a [`Server`] treats its peers.
#[derive(Clone)]
pub struct ServerConfig {
    /// The largest frame payload accepted from a client.
    pub max_frame: usize,
    /// Once a frame has begun, the rest of it must arrive within this time, or the
    /// connection is closed (a slowloris client holds nothing for long).
    pub frame_timeout: Duration,
    /// Who may connect and who may send control commands.
    pub authorize: Arc<dyn Authorize>,
    /// What answers control commands; `None`: every command is refused.
    pub control: Option<Arc<dyn ControlHandler>>,
}

/// Records read from the [`Replay`] source per call.
const REPLAY_BATCH: usize = 512;

/// A listening server.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
}

struct Shared {
    config: ServerConfig,
    hub: Hub,
    replay: Arc<dyn Replay>,
}

impl Server {
    /// Binds a Unix socket at `path` with permission bits `mode` (the daemon uses
    /// 0660 with group `aether`). Fails if `path` exists.
    pub fn bind(
        path: &Path,
        mode: u32,
        config: ServerConfig,
        hub: Hub,
        replay: Arc<dyn Replay>,
    ) -> io::Result<Server> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            shared: Arc::new(Shared {
                config,
                hub,
                replay,
            }),
        })
    }

    /// Serves on a listener bound by the caller (a daemon binds its sockets before
    /// going to the background, so that errors reach its terminal). `path` is the
    /// socket's path, for [`Server::path`].
    pub fn from_std(
        listener: std::os::unix::net::UnixListener,
        path: &Path,
        config: ServerConfig,
        hub: Hub,
        replay: Arc<dyn Replay>,
    ) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener: UnixListener::from_std(listener)?,
            path: path.to_path_buf(),
            shared: Arc::new(Shared {
                config,
                hub,
                replay,
            }),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts and serves connections until the listener fails. Each connection runs
    /// as its own task; an error on one ends only that one.
    pub async fn run(self) -> io::Result<()> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let _ = serve(stream, shared).await;
            });
        }
    }
}

/// Why a connection ended early.
#[derive(Debug)]
enum ConnError {
    Io,
    Frame,
}

impl From<io::Error> for ConnError {
    fn from(_: io::Error) -> ConnError {
        ConnError::Io
    }
}

struct Conn {
    rd: OwnedReadHalf,
    wr: BufWriter<OwnedWriteHalf>,
    dec: Decoder,
    peer: PeerCred,
    shared: Arc<Shared>,
}

async fn serve(stream: UnixStream, shared: Arc<Shared>) -> Result<(), ConnError> {
    let cred = stream.peer_cred()?;
    let peer = PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    };
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        rd,
        wr: BufWriter::new(wr),
        dec: Decoder::new(shared.config.max_frame),
        peer,
        shared,
    };
    let auth = &conn.shared.config.authorize;
    if !auth.may_connect(&peer) {
        conn.error(
            ErrorCode::PermissionDenied,
            format!("uid {} gid {} may not connect", peer.uid, peer.gid),
        )
        .await?;
        return Ok(());
    }
    let welcome = Welcome {
        version: u32::from(frame::VERSION),
        uid: peer.uid,
        control_allowed: auth.may_control(&peer),
    };
    conn.write(&Frame::new(Body::Welcome(welcome))).await?;
    conn.wr.flush().await?;
    loop {
        let Some(frame) = conn.read_frame().await? else {
            return Ok(());
        };
        match frame.body {
            Some(Body::Subscribe(s)) => return conn.stream(s.since).await,
            other => conn.handle(other).await?,
        }
    }
}

impl Conn {
    async fn write(&mut self, frame: &Frame) -> io::Result<()> {
        self.wr.write_all(&frame::encode(frame)).await
    }

    async fn error(&mut self, code: ErrorCode, message: String) -> io::Result<()> {
        let e = ErrorMsg {
            code: code as i32,
            message,
        };
        self.write(&Frame::new(Body::Error(e))).await?;
        self.wr.flush().await
    }

    /// Reads until a whole frame is buffered. `None` at a clean end of stream.
    async fn read_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            if let Some(f) = self.take_frame().await? {
                return Ok(Some(f));
            }
            let n = if self.dec.buffered() == 0 {
                self.rd.read_buf(self.dec.buffer()).await?
            } else {
                let timeout = self.shared.config.frame_timeout;
                match tokio::time::timeout(timeout, self.rd.read_buf(self.dec.buffer())).await {
                    Ok(n) => n?,
                    Err(_) => {
                        let _ = self
                            .error(
                                ErrorCode::BadFrame,
                                format!("frame not completed within {timeout:?}"),
                            )
                            .await;
                        return Err(ConnError::Frame);
                    }
                }
            };
            if n == 0 {
                return match self.dec.finish() {
                    Ok(()) => Ok(None),
                    Err(_) => Err(ConnError::Frame),
                };
            }
        }
    }

    /// A buffered frame, if there is one; a framing error is reported to the peer.
    async fn take_frame(&mut self) -> Result<Option<Frame>, ConnError> {
        match self.dec.next_frame() {
            Ok(f) => Ok(f),
            Err(e) => {
                let _ = self.bad_frame(e).await;
                Err(ConnError::Frame)
            }
        }
    }

    async fn bad_frame(&mut self, e: FrameError) -> io::Result<()> {
        self.error(ErrorCode::BadFrame, e.to_string()).await
    }

    /// Frames other than Subscribe.
    async fn handle(&mut self, body: Option<Body>) -> io::Result<()> {
        match body {
            Some(Body::Hello(_)) => Ok(()),
            Some(Body::Control(c)) => {
                let shared = self.shared.clone();
                let allowed = shared.config.authorize.may_control(&self.peer)
                    || shared
                        .config
                        .control
                        .as_ref()
                        .is_some_and(|h| h.is_query(&c.command));
                let reply = match &shared.config.control {
                    _ if !allowed => ControlReply {
                        id: c.id,
                        ok: false,
                        message: format!("uid {} may not send control commands", self.peer.uid),
                    },
                    None => ControlReply {
                        id: c.id,
                        ok: false,
                        message: "this server takes no control commands".into(),
                    },
                    Some(handler) => {
                        let (handler, peer, id) = (handler.clone(), self.peer, c.id);
                        tokio::task::spawn_blocking(move || handler.control(&peer, &c))
                            .await
                            .unwrap_or_else(|e| ControlReply {
                                id,
                                ok: false,
                                message: format!("the command failed: {e}"),
                            })
                    }
                };
                self.write(&Frame::new(Body::ControlReply(reply))).await?;
                self.wr.flush().await
            }
            Some(_) | None => {
                self.error(
                    ErrorCode::UnknownMessage,
                    "message not understood here; ignored".into(),
                )
                .await
            }
        }
    }

    /// Sends records from `since` on: replayed, then live, then replayed again after
    /// a lag, never with a gap or a duplicate.
    async fn stream(&mut self, since: u64) -> Result<(), ConnError> {
        let mut next = since;
        loop {
            // Subscribe to live records before replaying, so that nothing published
            // during the replay is missed; what the replay already sent is skipped.
            let mut rx = self.shared.hub.tx.subscribe();
            self.catch_up(&mut next).await?;
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(batch) => {
                            if batch.first() > next {
                                // Published before this subscription caught up to it:
                                // the journal has what lies between.
                                self.catch_up(&mut next).await?;
                            }
                            if batch.last() >= next {
                                self.wr.write_all(batch.from(next)).await?;
                                next = batch.last() + 1;
                            }
                            if rx.is_empty() {
                                self.wr.flush().await?;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let lag = Lagged { resume_from: next };
                            self.write(&Frame::new(Body::Lagged(lag))).await?;
                            self.wr.flush().await?;
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                    n = self.rd.read_buf(self.dec.buffer()) => {
                        if n? == 0 {
                            return Ok(());
                        }
                        while let Some(f) = self.take_frame().await? {
                            self.handle(f.body).await?;
                        }
                    }
                }
            }
        }
    }

    /// Sends what the journal has from `next` on.
    async fn catch_up(&mut self, next: &mut u64) -> Result<(), ConnError> {
        loop {
            let replay = self.shared.replay.clone();
            let from = *next;
            let batch = tokio::task::spawn_blocking(move || replay.read_from(from, REPLAY_BATCH))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    self.error(ErrorCode::ReplayFailed, e).await?;
                    return Err(ConnError::Io);
                }
            };
            let full = batch.len() >= REPLAY_BATCH;
            for rec in batch {
                if rec.seq >= *next {
                    *next = rec.seq + 1;
                    self.write(&Frame::new(Body::Record(rec))).await?;
                }
            }
            self.wr.flush().await?;
            if !full {
                return Ok(());
            }
        }
    }
}
