//! One client connection: commands in, replies out, as clamd's
//! `server-th.c` and `session.c` do.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aether_clamd::{Chunk, Command, Delimiter, InstreamDecoder, Replier, next_command};
use aether_journal::Verdict;
use tokio::sync::mpsc;

use crate::jobs::{self, PathMode};
use crate::server::Shared;
use crate::stream::Stream;

/// Bytes asked of the socket per read of stream data.
const READ_SIZE: usize = 64 * 1024;
/// Bytes asked of the socket per read while waiting for a command.
const COMMAND_READ_SIZE: usize = 4 * 1024;

pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    reads: u64,
    shared: Arc<Shared>,
    /// Who this is, for the journal's scan records.
    client: String,
}

/// What to do after a command.
enum Next {
    Continue,
    Close,
}

impl Conn {
    pub fn new(stream: Stream, shared: Arc<Shared>) -> Conn {
        let client = stream.describe();
        Conn {
            client,
            stream,
            buf: Vec::new(),
            fds: VecDeque::new(),
            reads: 0,
            shared,
        }
    }

    pub async fn run(mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!("connection ended: {e}");
        }
    }

    /// Reads more bytes; false on end of stream, timeout or shutdown.
    /// Waiting for a command takes a command-sized buffer, so that idle
    /// connections stay cheap; stream data takes larger reads.
    async fn fill(
        &mut self,
        timeout: Duration,
        say_timeout: bool,
        size: usize,
    ) -> io::Result<bool> {
        let mut chunk = vec![0u8; size];
        let mut shutdown = self.shared.shutdown_rx();
        let read = tokio::select! {
            r = tokio::time::timeout(timeout, self.stream.read(&mut chunk, &mut self.fds)) => r,
            _ = crate::server::stopped(&mut shutdown) => return Ok(false),
        };
        match read {
            Err(_elapsed) => {
                if say_timeout {
                    let _ = self.write(b"COMMAND READ TIMED OUT\n").await;
                }
                Ok(false)
            }
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.reads += 1;
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Ok(Err(e)) => Err(e),
        }
    }

    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(self.shared.config.send_timeout, self.stream.write_all(data))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client not reading replies",
            )),
        }
    }

    async fn serve(&mut self) -> io::Result<()> {
        let mut first = true;
        // Inside an IDSESSION: the number of the last command.
        let mut session: Option<u32> = None;
        loop {
            let timeout = if session.is_some() {
                self.shared.config.idle_timeout
            } else {
                self.shared.config.command_read_timeout
            };
            let (delimiter, command) = loop {
                let packet_end = first && self.reads == 1;
                match next_command(&self.buf, first, packet_end) {
                    Ok(Some(frame)) => {
                        let consumed = frame.consumed;
                        let parsed = (frame.delimiter, frame.command.into_owned());
                        self.buf.drain(..consumed);
                        break parsed;
                    }
                    Ok(None) => {
                        if !self
                            .fill(
                                timeout,
                                session.is_none() || !self.buf.is_empty(),
                                COMMAND_READ_SIZE,
                            )
                            .await?
                        {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        tracing::debug!("bad command: {e}");
                        let delimiter = if self.buf.first() == Some(&b'z') {
                            Delimiter::Nul
                        } else {
                            Delimiter::Newline
                        };
                        let r = Replier::new(delimiter, session);
                        self.write(&r.single(None, "UNKNOWN COMMAND")).await?;
                        return Ok(());
                    }
                }
            };
            first = false;
            let id = session.map(|n| n.wrapping_add(1));
            if let Some(n) = id {
                session = Some(n);
            }
            let r = Replier::new(delimiter, id);
            if session.is_some() {
                if delimiter == Delimiter::Legacy {
                    self.write(
                        &r.error("Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION."),
                    )
                    .await?;
                    return Ok(());
                }
                if !command.allowed_in_session() {
                    self.write(&r.error("Command invalid inside IDSESSION."))
                        .await?;
                    return Ok(());
                }
            }
            tracing::debug!(command = command.name(), "command");
            let next = self.execute(command, r, session.is_some()).await?;
            match next {
                Next::Close => return Ok(()),
                Next::Continue => {
                    if session.is_none() {
                        session = Some(0);
                    }
                }
            }
        }
    }

    /// Runs one command. `Continue` outside a session only for IDSESSION.
    async fn execute(
        &mut self,
        command: Command<'static>,
        r: Replier,
        in_session: bool,
    ) -> io::Result<Next> {
        let cfg = &self.shared.config;
        let unavailable = r.single(None, "COMMAND UNAVAILABLE");
        let after = if in_session {
            Next::Continue
        } else {
            Next::Close
        };
        match command {
            Command::Ping => self.write(&r.pong()).await?,
            Command::Version => {
                let reply = if cfg.enable_version {
                    r.version(&self.shared.version)
                } else {
                    unavailable
                };
                self.write(&reply).await?
            }
            Command::VersionCommands => {
                let reply = r.version_commands(&self.shared.version);
                self.write(&reply).await?
            }
            Command::Reload => {
                if cfg.enable_reload {
                    self.shared.trigger_reload("RELOAD command");
                    self.write(&r.unprefixed("RELOADING")).await?;
                } else {
                    self.write(&unavailable).await?;
                }
                return Ok(Next::Close);
            }
            Command::Shutdown => {
                if cfg.enable_shutdown {
                    tracing::info!("SHUTDOWN command received");
                    self.shared.shutdown();
                } else {
                    self.write(&unavailable).await?;
                }
                return Ok(Next::Close);
            }
            Command::SelfCheck => {
                self.write(&unavailable).await?;
                return Ok(Next::Close);
            }
            Command::Stats => {
                let reply = if cfg.enable_stats {
                    let _task = self.shared.tasks.start("STATS", String::new());
                    r.stats(&self.shared.stats_report())
                } else {
                    unavailable
                };
                self.write(&reply).await?
            }
            Command::IdSession => return Ok(Next::Continue),
            Command::End => {
                if !in_session {
                    self.write(&r.single(None, "UNKNOWN COMMAND")).await?;
                }
                return Ok(Next::Close);
            }
            Command::DetStats => return Ok(Next::Close),
            Command::Unknown => {
                self.write(&r.single(None, "UNKNOWN COMMAND")).await?;
                return Ok(Next::Close);
            }
            Command::Instream => return self.instream(r, after).await,
            Command::Fildes => return self.fildes(r, after).await,
            Command::AllMatchScan(path) if !cfg.allow_all_match_scan => {
                let reply = r.reply(
                    Some(&path),
                    "ALLMATCHSCAN command disabled by clamd configuration.",
                    "ERROR",
                );
                self.write(&reply).await?;
                return Ok(Next::Close);
            }
            Command::Scan(p) => {
                self.scan_path(p.into_owned(), PathMode::Scan, "SCAN", r)
                    .await?
            }
            Command::ContScan(p) => {
                self.scan_path(p.into_owned(), PathMode::Continue, "CONTSCAN", r)
                    .await?
            }
            Command::MultiScan(p) => {
                self.scan_path(p.into_owned(), PathMode::Continue, "MULTISCAN", r)
                    .await?
            }
            Command::AllMatchScan(p) => {
                self.scan_path(p.into_owned(), PathMode::AllMatch, "ALLMATCHSCAN", r)
                    .await?
            }
        }
        Ok(after)
    }

    async fn scan_path(
        &mut self,
        path: Vec<u8>,
        mode: PathMode,
        name: &'static str,
        r: Replier,
    ) -> io::Result<()> {
        let multi = name == "MULTISCAN";
        let permit = self.shared.scan_slot().await;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let shared = Arc::clone(&self.shared);
        let journal = self.journaling();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _task = shared
                .tasks
                .start(name, String::from_utf8_lossy(&path).into_owned());
            // MULTISCAN only spreads a directory over threads, as clamd.
            let threads = if multi
                && std::fs::metadata(Path::new("/").join(OsStr::from_bytes(&path)))
                    .is_ok_and(|m| m.is_dir())
            {
                (shared.config.max_threads as usize)
                    .saturating_sub(1)
                    .max(1)
            } else {
                1
            };
            let opts = shared
                .config
                .scan_options(threads, mode == PathMode::AllMatch);
            let active = shared.db.current();
            let infected = jobs::scan_path(
                &active.engine,
                &opts,
                mode,
                multi,
                &path,
                r,
                jobs::Output { tx, journal },
            );
            shared.count_scan(infected);
        });
        let mut result = Ok(());
        while let Some(bytes) = rx.recv().await {
            if let Err(e) = self.write(&bytes).await {
                result = Err(e);
                break;
            }
        }
        // Dropping the receiver stops the walk at its next reply.
        drop(rx);
        let _ = job.await;
        result
    }

    async fn instream(&mut self, r: Replier, after: Next) -> io::Result<Next> {
        let max = self.shared.config.stream_max_length;
        let mut decoder = InstreamDecoder::new(max);
        let mut data = jobs::StreamBody::default();
        let read_timeout = self.shared.config.read_timeout;
        loop {
            let (chunk, used) = match decoder.decode(&self.buf) {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!("INSTREAM: {e}");
                    self.write(&r.error("INSTREAM size limit exceeded."))
                        .await?;
                    self.drain().await;
                    return Ok(Next::Close);
                }
            };
            let done = match chunk {
                Chunk::Data(bytes) => {
                    if let Err(e) = data.push(bytes, &self.shared.config.temporary_directory) {
                        tracing::error!("INSTREAM: cannot write to a temporary file: {e}");
                        self.write(&r.error("Error writing to temporary file"))
                            .await?;
                        return Ok(Next::Close);
                    }
                    false
                }
                Chunk::End => true,
                Chunk::NeedMore => {
                    self.buf.drain(..used);
                    if !self.fill(read_timeout, false, READ_SIZE).await? {
                        return Ok(Next::Close);
                    }
                    continue;
                }
            };
            self.buf.drain(..used);
            if done {
                break;
            }
        }
        let permit = self.shared.scan_slot().await;
        let shared = Arc::clone(&self.shared);
        let journal = self.journaling();
        let reply = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _task = shared.tasks.start("INSTREAM", String::new());
            let active = shared.db.current();
            let cfg = &shared.config;
            let (reply, verdict) =
                jobs::scan_stream(&active.engine, &data, &cfg.limits, cfg.alert_exceeds_max, r);
            shared.count_scan(matches!(verdict, Verdict::Infected { .. }));
            if let Some(j) = journal {
                j.record("stream".into(), verdict);
            }
            reply
        })
        .await
        .map_err(io::Error::other)?;
        self.write(&reply).await?;
        Ok(after)
    }

    fn journaling(&self) -> Option<jobs::Journaling> {
        self.shared.recorder.as_ref().map(|r| jobs::Journaling {
            recorder: r.clone(),
            client: self.client.clone(),
        })
    }

    /// Discards what the client is still sending, for a bounded time, so that
    /// closing does not reset the connection before it reads the error.
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut sink = vec![0u8; READ_SIZE];
        let mut fds = VecDeque::new();
        while let Ok(Ok(n)) =
            tokio::time::timeout_at(deadline, self.stream.read(&mut sink, &mut fds)).await
        {
            if n == 0 {
                break;
            }
            fds.clear();
        }
    }

    async fn fildes(&mut self, r: Replier, after: Next) -> io::Result<Next> {
        // The descriptor travels with one more byte, which clamd eats.
        while self.buf.is_empty() {
            if !self
                .fill(
                    self.shared.config.command_read_timeout,
                    false,
                    COMMAND_READ_SIZE,
                )
                .await?
            {
                return Ok(Next::Close);
            }
        }
        self.buf.drain(..1);
        let Some(fd) = self.fds.pop_front() else {
            self.write(&r.error("No file descriptor received.")).await?;
            return Ok(Next::Close);
        };
        let file = std::fs::File::from(fd);
        let permit = self.shared.scan_slot().await;
        let shared = Arc::clone(&self.shared);
        let journal = self.journaling();
        let reply = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _task = shared.tasks.start("FILDES", String::new());
            let active = shared.db.current();
            let opts = shared.config.scan_options(1, false);
            let (reply, verdict) = jobs::scan_fd(&active.engine, file, &opts, r);
            shared.count_scan(matches!(verdict, Verdict::Infected { .. }));
            if let Some(j) = journal {
                j.record("fd".into(), verdict);
            }
            reply
        })
        .await
        .map_err(io::Error::other)?;
        self.write(&reply).await?;
        Ok(after)
    }
}
