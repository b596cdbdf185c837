//! RAR archives, from RAR 1.3 to RAR 7, read with `rars` (pure Rust: the
//! RAR 1.5 to 4 codecs with PPMd and the RarVM filters, RAR 5 and 7).
//!
//! `rars` pushes: it parses an owned `Read + Seek + 'static` source and
//! writes each member into a writer its callback returns. A [`Visitor`]
//! pulls: it is handed a member and reads it, or not. So the archive is
//! decoded on a second thread and the two talk over bounded channels:
//! - the decoder reads the input through this thread, which owns the
//!   borrowed [`ReadAt`] (requests of at most [`READ_CHUNK`] bytes);
//! - for each member it sends the member's header and waits for a decision,
//!   taken when the visitor first reads the member (extract) or returns
//!   without reading it (skip);
//! - the decoded bytes come back in chunks, so the caller's writer bounds
//!   the output as with every other container.
//!
//! Limits are set on `rars` as well: header count and bytes, the RAR 5
//! dictionary (a larger one is reported as unsupported), and the members
//! RAR 5 buffers whole. Encrypted members, and archives whose headers are
//! encrypted, are reported and not extracted (no password is tried).
//!
//! Solid archives are one compressed stream: a member can only be decoded
//! after those before it. A member the visitor skips, or stops reading, is
//! decoded into nothing, up to [`DISCARD_LIMIT`] bytes; past that the rest
//! of the archive is given up, which is reported.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rars::{
    Archive, ArchiveMember, ArchiveReadOptions, ArchiveReader, ErrorKind, ExtractionDecision,
    ExtractionErrorAction,
};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

/// The largest read the decoding thread asks for at once.
const READ_CHUNK: usize = 1 << 20;
/// RAR 5 and 7 declare their dictionary (up to 64 GiB); larger ones than
/// this are not decoded (the same bound as the 7z reader's memory limit).
const DICTIONARY_LIMIT: u64 = 256 << 20;
/// The decoder's own working memory: dictionary, tables, filter buffers.
const WORKSPACE_LIMIT: u64 = 512 << 20;
/// RAR 5 members up to this size are decoded whole in memory, larger ones
/// streamed.
const BUFFERED_LIMIT: u64 = 4 << 20;
/// Headers: how many, and how many bytes, one archive may have.
const HEADER_COUNT_LIMIT: u64 = 1 << 20;
const HEADER_BYTES_LIMIT: u64 = 64 << 20;
/// Bytes of solid members decoded for nothing (skipped, or not read to their
/// end) before the rest of a solid archive is given up.
pub(crate) const DISCARD_LIMIT: u64 = 256 << 20;

/// What the visitor's thread tells the decoder about a member.
enum Decision {
    Extract,
    /// Decode it into nothing: a solid archive cannot skip.
    Discard,
    Skip,
    Stop,
}

/// A member's header, as sent to the visitor's thread.
struct Info {
    name: String,
    size: u64,
    packed: u64,
    encrypted: bool,
    /// The archive is solid: members cannot be skipped.
    solid: bool,
}

/// What the decoding thread sends.
enum Event {
    /// Read `len` bytes at `offset` of the input.
    Read {
        offset: u64,
        len: usize,
        reply: SyncSender<io::Result<Vec<u8>>>,
    },
    Member(Info),
    Chunk(Vec<u8>),
    /// The current member could not be decoded.
    Failed(Problem),
    /// The end of the walk; a problem if the archive could not be read to
    /// its end.
    Done(Option<Problem>),
}

/// Where the current member's bytes go ([`Pipe`]).
const SEND: u8 = 0;
const DISCARD: u8 = 1;
const REFUSE: u8 = 2;

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let (tx, rx) = sync_channel::<Event>(4);
    let (dtx, drx) = sync_channel::<Decision>(1);
    let mode = Arc::new(AtomicU8::new(SEND));
    let discarded = Arc::new(AtomicU64::new(0));
    let size = src.size();
    let decoder_mode = Arc::clone(&mode);
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
            // A panic in the decoder must not take the scan down with it.
            let report = tx.clone();
            let run = AssertUnwindSafe(|| decode(tx, drx, size, decoder_mode, discarded));
            if catch_unwind(run).is_err() {
                let _ = report.send(Event::Done(Some(Problem::Broken {
                    member: None,
                    detail: "RAR: internal error in the decoder".into(),
                })));
            }
        })?;
        let mut link = Link {
            src,
            rx,
            dtx,
            pending: None,
            eof: false,
            decided: false,
            abandoned: false,
        };
        drive(&mut link, &mode, visitor);
        // Refusing its output and dropping the link's channels ends the
        // decoder wherever it is.
        mode.store(REFUSE, Ordering::Relaxed);
        drop(spawned);
        Ok(())
    })
}

/// The decoding thread: parses the archive and extracts its members into
/// [`Pipe`]s, as the visitor's thread decides.
fn decode(
    tx: SyncSender<Event>,
    drx: Receiver<Decision>,
    size: u64,
    mode: Arc<AtomicU8>,
    discarded: Arc<AtomicU64>,
) {
    let remote = Remote {
        tx: tx.clone(),
        pos: 0,
        size,
    };
    let parse = ArchiveReadOptions::new()
        .with_max_header_count(HEADER_COUNT_LIMIT)
        .with_max_header_bytes(HEADER_BYTES_LIMIT);
    let archive = match ArchiveReader::read_reader_with_options(remote, parse) {
        Ok(a) => a,
        Err(e) => {
            let _ = tx.send(Event::Done(Some(problem_of(&e, None))));
            return;
        }
    };
    let solid = match &archive {
        Archive::Rar13(a) => a.main.is_solid(),
        Archive::Rar15To40(a) => a.main.is_solid(),
        Archive::Rar50Plus(a) => a.main.is_solid(),
        _ => true,
    };
    let options = ArchiveReadOptions::new()
        .with_rar50_dictionary_size_limit(DICTIONARY_LIMIT)
        .with_max_reader_workspace_bytes(WORKSPACE_LIMIT)
        .with_rar50_buffered_decode_limit(BUFFERED_LIMIT);
    let mut last_failure = None;
    let result = archive.extract_with_control_and_errors(
        options,
        |m: &ArchiveMember| {
            if m.meta.is_directory || m.meta.is_redirection {
                return Ok(ExtractionDecision::Skip);
            }
            let info = Info {
                name: m.meta.name_lossy(),
                size: m.meta.unpacked_size,
                packed: m.meta.packed_size,
                encrypted: m.meta.is_encrypted,
                solid,
            };
            if tx.send(Event::Member(info)).is_err() {
                return Ok(ExtractionDecision::Stop);
            }
            Ok(match drx.recv() {
                Ok(Decision::Extract) => {
                    mode.store(SEND, Ordering::Relaxed);
                    ExtractionDecision::Extract(Box::new(Pipe {
                        tx: tx.clone(),
                        mode: Arc::clone(&mode),
                        discarded: Arc::clone(&discarded),
                    }))
                }
                Ok(Decision::Discard) => {
                    mode.store(DISCARD, Ordering::Relaxed);
                    ExtractionDecision::Extract(Box::new(Pipe {
                        tx: tx.clone(),
                        mode: Arc::clone(&mode),
                        discarded: Arc::clone(&discarded),
                    }))
                }
                Ok(Decision::Skip) => ExtractionDecision::Skip,
                Ok(Decision::Stop) | Err(_) => ExtractionDecision::Stop,
            })
        },
        |m, e| {
            let member = m.meta.name_lossy();
            last_failure = Some(e.to_string());
            let _ = tx.send(Event::Failed(problem_of(e, Some(member))));
            // Refused for solid archives and resource limits: those end the
            // walk with the error below.
            Ok(ExtractionErrorAction::Continue)
        },
    );
    let end = match result {
        Ok(_) => None,
        // Reported as the member failed.
        Err(e) if !solid && last_failure == Some(e.to_string()) => None,
        Err(e) => Some(match problem_of(&e, entry_of(&e)) {
            Problem::Broken { member, detail } if solid => Problem::Broken {
                member,
                detail: format!("{detail}; the members after it in this solid archive are lost"),
            },
            other => other,
        }),
    };
    let _ = tx.send(Event::Done(end));
}

/// The member an error names, if any.
fn entry_of(e: &rars::Error) -> Option<String> {
    e.entry_context()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
}

/// Names a `rars` error as a [`Problem`].
fn problem_of(e: &rars::Error, member: Option<String>) -> Problem {
    if matches!(e.root_cause(), rars::Error::UnsupportedSignature) {
        return Problem::Broken {
            member,
            detail: "RAR: no RAR signature".into(),
        };
    }
    match e.kind() {
        ErrorKind::PasswordRequired | ErrorKind::BadPassword => Problem::Encrypted {
            member: member.unwrap_or_else(|| "(archive header)".into()),
        },
        ErrorKind::UnsupportedFeature | ErrorKind::UnsupportedFormat | ErrorKind::ResourceLimit => {
            Problem::Unsupported {
                member: member.unwrap_or_default(),
                detail: format!("RAR: {e}"),
            }
        }
        _ => Problem::Broken {
            member,
            detail: format!("RAR: {e}"),
        },
    }
}

/// The visitor's side of the two threads.
struct Link<'a> {
    src: &'a dyn ReadAt,
    rx: Receiver<Event>,
    dtx: SyncSender<Decision>,
    /// An event read ahead by a member's reader (the one after its data).
    pending: Option<Event>,
    /// The current member's data has ended.
    eof: bool,
    /// The decision on the current member was sent.
    decided: bool,
    /// The current member was left unread: its failure is not reported.
    abandoned: bool,
}

impl Link<'_> {
    /// The next event that is not a read request; read requests are served
    /// on the way. `None` once the decoder is gone.
    fn next(&mut self) -> Option<Event> {
        loop {
            let event = match self.pending.take() {
                Some(e) => e,
                None => self.rx.recv().ok()?,
            };
            match event {
                Event::Read { offset, len, reply } => {
                    let mut buf = vec![0u8; len.min(READ_CHUNK)];
                    let read = self.src.read_at(&mut buf, offset).map(|n| {
                        buf.truncate(n);
                        buf
                    });
                    let _ = reply.send(read);
                }
                other => return Some(other),
            }
        }
    }

    fn decide(&mut self, d: Decision) {
        if !self.decided {
            self.decided = true;
            let _ = self.dtx.send(d);
        }
    }

    /// Reads past the rest of the current member's data.
    fn drain(&mut self) {
        while !self.eof {
            match self.next() {
                Some(Event::Chunk(_)) => {}
                Some(Event::Failed(_)) if self.abandoned => {}
                Some(other) => {
                    self.pending = Some(other);
                    self.eof = true;
                }
                None => self.eof = true,
            }
        }
    }
}

/// Runs the visitor over the decoder's events.
fn drive(link: &mut Link<'_>, mode: &AtomicU8, visitor: &mut dyn Visitor) {
    while let Some(event) = link.next() {
        let flow = match event {
            Event::Member(info) => member(link, mode, info, visitor),
            Event::Failed(p) => visitor.problem(p),
            Event::Done(p) => {
                if let Some(p) = p {
                    visitor.problem(p);
                }
                return;
            }
            Event::Chunk(_) | Event::Read { .. } => Flow::Continue,
        };
        if flow == Flow::Stop {
            return;
        }
    }
}

/// One member: hands it to the visitor and tells the decoder what to do.
fn member(link: &mut Link<'_>, mode: &AtomicU8, info: Info, visitor: &mut dyn Visitor) -> Flow {
    link.eof = false;
    link.decided = false;
    link.abandoned = false;
    if info.encrypted {
        // Not decoded; without it, a solid archive cannot be decoded further.
        link.decide(if info.solid {
            Decision::Stop
        } else {
            Decision::Skip
        });
        return visitor.problem(Problem::Encrypted { member: info.name });
    }
    if check_name(visitor, &info.name) == Flow::Stop {
        link.decide(Decision::Stop);
        return Flow::Stop;
    }
    let flow = {
        let reader = MemberReader {
            link: &mut *link,
            chunk: Vec::new(),
            at: 0,
        };
        let mut m = Member::new(info.name.clone(), Body::Read(Box::new(reader)));
        // RAR 5 writes an unknown size as the largest value.
        m.declared_size = (info.size != u64::MAX).then_some(info.size);
        m.packed_size = Some(info.packed);
        visit(visitor, &mut m)
    };
    if flow == Flow::Stop {
        link.decide(Decision::Stop);
        link.abandoned = true;
        mode.store(REFUSE, Ordering::Relaxed);
        return Flow::Stop;
    }
    // A member left unread: a solid archive must still decode it (into
    // nothing), any other skips it.
    if !link.decided {
        link.decide(if info.solid {
            Decision::Discard
        } else {
            Decision::Skip
        });
        link.abandoned = true;
        link.drain();
    } else if !link.eof {
        link.abandoned = true;
        mode.store(if info.solid { DISCARD } else { REFUSE }, Ordering::Relaxed);
        link.drain();
    }
    Flow::Continue
}

/// A member's bytes as they come from the decoder.
struct MemberReader<'l, 'a> {
    link: &'l mut Link<'a>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for MemberReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.link.decide(Decision::Extract);
        while self.at == self.chunk.len() {
            if self.link.eof {
                return Ok(0);
            }
            match self.link.next() {
                Some(Event::Chunk(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Some(Event::Failed(p)) => {
                    self.link.eof = true;
                    return Err(failure(&p));
                }
                // The error that ended a solid archive is this member's too
                // (and reported for the archive once the member is done).
                Some(Event::Done(Some(p))) => {
                    let e = failure(&p);
                    self.link.pending = Some(Event::Done(Some(p)));
                    self.link.eof = true;
                    return Err(e);
                }
                Some(other) => {
                    self.link.pending = Some(other);
                    self.link.eof = true;
                }
                None => {
                    self.link.eof = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "RAR: the decoder ended in the middle of a member",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A member's failure as the error its reader returns.
fn failure(p: &Problem) -> io::Error {
    let detail = match p {
        Problem::Broken { detail, .. } | Problem::Unsupported { detail, .. } => detail.clone(),
        Problem::Encrypted { .. } => "RAR: encrypted".into(),
        other => format!("RAR: {other:?}"),
    };
    io::Error::new(io::ErrorKind::InvalidData, detail)
}

/// The decoder's writer for one member: sends its bytes to the visitor's
/// thread, or drops them (bounded), or refuses them.
struct Pipe {
    tx: SyncSender<Event>,
    mode: Arc<AtomicU8>,
    discarded: Arc<AtomicU64>,
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.mode.load(Ordering::Relaxed) {
            SEND => {
                if buf.is_empty() {
                    return Ok(0);
                }
                self.tx
                    .send(Event::Chunk(buf.to_vec()))
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "walk ended"))?;
                Ok(buf.len())
            }
            DISCARD => {
                let total = self
                    .discarded
                    .fetch_add(buf.len() as u64, Ordering::Relaxed)
                    + buf.len() as u64;
                if total > DISCARD_LIMIT {
                    return Err(io::Error::other(format!(
                        "more than {DISCARD_LIMIT} bytes of skipped solid members"
                    )));
                }
                Ok(buf.len())
            }
            _ => Err(io::Error::new(io::ErrorKind::BrokenPipe, "walk ended")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The input as the decoding thread sees it: reads go to the visitor's
/// thread, which owns the source.
struct Remote {
    tx: SyncSender<Event>,
    pos: u64,
    size: u64,
}

impl Read for Remote {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(READ_CHUNK);
        if len == 0 || self.pos >= self.size {
            return Ok(0);
        }
        let (reply, answer) = sync_channel(1);
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "walk ended");
        self.tx
            .send(Event::Read {
                offset: self.pos,
                len,
                reply,
            })
            .map_err(|_| gone())?;
        let data = answer.recv().map_err(|_| gone())??;
        let n = data.len().min(len);
        buf[..n].copy_from_slice(&data[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Remote {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            ));
        };
        self.pos = target;
        Ok(target)
    }
}
