//! Listening sockets, shared state, signals and shutdown.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aether_clamd::StatsReport;
use aether_journal::Lifecycle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::config::Config;
use crate::conn::Conn;
use crate::db::{Database, ReloadOutcome};
use crate::recorder::Recorder;
use crate::stream::Stream;
use crate::tasks::Tasks;

/// Why a socket could not be set up; each has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0} is in use by a running daemon")]
    InUse(String),
    #[error("{what}: permission denied ({source}); run as a user allowed to create it")]
    Permission {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Other {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl ListenError {
    pub fn from_io(what: String, e: io::Error) -> ListenError {
        match e.raw_os_error() {
            Some(libc::EADDRINUSE) => ListenError::InUse(what),
            Some(libc::EACCES | libc::EPERM) => ListenError::Permission { what, source: e },
            _ => ListenError::Other { what, source: e },
        }
    }
}

/// Bound, not yet served, sockets (bound before the daemon forks so that
/// errors reach the caller's terminal and exit code).
pub struct Listeners {
    pub unix: Option<(std::os::unix::net::UnixListener, PathBuf)>,
    pub tcp: Option<std::net::TcpListener>,
}

impl Listeners {
    pub fn bind(config: &Config) -> Result<Listeners, ListenError> {
        let unix = match &config.local_socket {
            Some(path) => Some((bind_unix(path, config)?, path.clone())),
            None => None,
        };
        let tcp = match &config.tcp {
            Some((addr, port)) => {
                let what = format!("TCP socket {addr}:{port}");
                let l = std::net::TcpListener::bind((addr.as_str(), *port))
                    .map_err(|e| ListenError::from_io(what, e))?;
                set_backlog(l.as_raw_fd(), config.max_connections);
                Some(l)
            }
            None => None,
        };
        Ok(Listeners { unix, tcp })
    }

    /// Removes the socket file (on shutdown or failed start).
    pub fn remove_socket_file(path: &Path) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn set_backlog(fd: i32, n: u32) {
    // std listens with a backlog of 128; a second listen() raises it, so
    // that bursts of clients (MaxConnectionQueueLength) are not refused.
    // SAFETY: listen on a descriptor we own; failure leaves the old backlog.
    unsafe {
        libc::listen(fd, n.min(i32::MAX as u32) as i32);
    }
}

fn bind_unix(
    path: &Path,
    config: &Config,
) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let what = format!("local socket {}", path.display());
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ListenError::Other {
                what,
                source: io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a socket"),
            });
        }
        // A socket someone answers on is in use; one nobody answers is
        // stale, left by a daemon that did not exit cleanly.
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ListenError::InUse(what)),
            Err(_) => {
                std::fs::remove_file(path).map_err(|e| ListenError::from_io(what.clone(), e))?;
            }
        }
    }
    if let Some(parent) = path.parent()
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(parent)
            .map_err(|e| ListenError::from_io(format!("directory {}", parent.display()), e))?;
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| ListenError::from_io(what.clone(), e))?;
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(config.local_socket_mode),
    )
    .map_err(|e| ListenError::from_io(what, e))?;
    set_backlog(l.as_raw_fd(), config.max_connections);
    Ok(l)
}

/// Whether the process sensor runs, and why not.
pub enum SensorState {
    Running(crate::sensor::Running),
    Unavailable(String),
}

/// State shared by every connection.
pub struct Shared {
    pub config: Config,
    pub db: Arc<Database>,
    pub tasks: Tasks,
    pub version: String,
    /// The journal's writer, when the journal is open.
    pub recorder: Option<Recorder>,
    /// Why the journal is not open, when it is not.
    pub journal_problem: Option<String>,
    pub hub: aether_ipc::Hub,
    pub sensor: Mutex<Option<SensorState>>,
    pub started: Instant,
    slots: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    scans: AtomicU64,
    infected: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    last_reload: Mutex<Option<String>>,
    /// Requests refused before anything was read: connections, control
    /// commands, scans.
    refused: [AtomicU64; 3],
}

impl Shared {
    pub fn new(
        config: Config,
        db: Database,
        recorder: Result<Recorder, String>,
        hub: aether_ipc::Hub,
    ) -> Shared {
        let slots = Arc::new(Semaphore::new(config.max_threads as usize));
        let (recorder, journal_problem) = match recorder {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        Shared {
            config,
            db: Arc::new(db),
            tasks: Tasks::default(),
            version: version_text(),
            recorder,
            journal_problem,
            hub,
            sensor: Mutex::new(None),
            started: Instant::now(),
            slots,
            shutdown: watch::channel(false).0,
            scans: AtomicU64::new(0),
            infected: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_reload: Mutex::new(None),
            refused: Default::default(),
        }
    }

    /// Counts and journals a refused request, with who asked and why. Never
    /// waits: from a connection's task, a full journal queue counts the record
    /// as refused by the journal (a flood of refusals must not stall serving).
    pub fn refused(&self, peer: &aether_ipc::PeerCred, what: aether_ipc::Refused, reason: &str) {
        let i = match what {
            aether_ipc::Refused::Connect => 0,
            aether_ipc::Refused::Control => 1,
            aether_ipc::Refused::Scan => 2,
        };
        if let Some(c) = self.refused.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // Debug only: the journal has every refusal, and a flood of them must not
        // flood the log.
        tracing::debug!(
            "refused {} from uid {} pid {}: {reason}",
            what.name(),
            peer.uid,
            peer.pid.map_or("-".to_string(), |p| p.to_string())
        );
        if let Some(r) = &self.recorder {
            r.try_record(aether_journal::Entry::Refused(aether_journal::Refused {
                request: what.name().to_string(),
                reason: reason.to_string(),
                uid: peer.uid,
                gid: peer.gid,
                pid: peer.pid,
            }));
        }
    }

    pub fn lifecycle(&self, l: Lifecycle) {
        if let Some(r) = &self.recorder {
            r.lifecycle(l);
        }
    }

    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits for one of MaxThreads scanning slots.
    pub async fn scan_slot(&self) -> OwnedSemaphorePermit {
        self.tasks.queued.fetch_add(1, Ordering::Relaxed);
        let permit = Arc::clone(&self.slots).acquire_owned().await;
        self.tasks.queued.fetch_sub(1, Ordering::Relaxed);
        match permit {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable_permit(),
        }
    }

    pub fn count_scan(&self, infected: bool) {
        self.scans.fetch_add(1, Ordering::Relaxed);
        if infected {
            self.infected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts a reload on its own thread; the old database serves meanwhile.
    pub fn trigger_reload(self: &Arc<Self>, why: &'static str) {
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("aetherd-reload".into())
            .spawn(move || {
                shared.reload_now(why);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the reload thread: {e}");
            self.lifecycle(Lifecycle::DatabaseFailed {
                reason: format!("cannot start the reload thread: {e}"),
            });
        }
    }

    /// Reloads on the calling thread (seconds), logs and journals the outcome.
    pub fn reload_now(&self, why: &str) -> ReloadOutcome {
        tracing::info!("reloading the database ({why})");
        let outcome = self.db.reload();
        let text = match &outcome {
            ReloadOutcome::Loaded {
                signatures,
                elapsed,
            } => {
                tracing::info!(
                    signatures,
                    seconds = elapsed.as_secs_f64(),
                    "database reloaded"
                );
                self.reloads.fetch_add(1, Ordering::Relaxed);
                let detail = format!(
                    "reload ({why}): {signatures} signatures in {:.2} s",
                    elapsed.as_secs_f64()
                );
                self.lifecycle(Lifecycle::DatabaseLoaded {
                    detail: detail.clone(),
                });
                detail
            }
            ReloadOutcome::Failed(reason) => {
                tracing::error!("reload failed, the previous database keeps serving: {reason}");
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                let reason =
                    format!("reload ({why}) failed, the previous database keeps serving: {reason}");
                self.lifecycle(Lifecycle::DatabaseFailed {
                    reason: reason.clone(),
                });
                reason
            }
            ReloadOutcome::AlreadyRunning => {
                tracing::info!("a reload is already running");
                return outcome;
            }
        };
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        outcome
    }

    /// What `aether status` shows.
    pub fn status(&self) -> crate::ipc::Status {
        use crate::ipc::{DatabaseStatus, JournalStatus, ScanStatus, SensorStatus, Status};
        let active = self.db.current();
        let sensor = match &*self.sensor.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(SensorState::Running(r)) => SensorStatus {
                running: true,
                reason: None,
                counters: Some(r.stats()),
            },
            Some(SensorState::Unavailable(why)) => SensorStatus {
                running: false,
                reason: Some(why.clone()),
                counters: None,
            },
            None => SensorStatus {
                running: false,
                reason: Some("not started".into()),
                counters: None,
            },
        };
        let journal = match &self.recorder {
            Some(r) => {
                let st = &r.stats;
                let next = st.next_seq.load(Ordering::Relaxed);
                JournalStatus {
                    path: Some(r.path().display().to_string()),
                    problem: st
                        .failing
                        .load(Ordering::Relaxed)
                        .then(|| "the last commit failed (see the log)".to_string()),
                    last_seq: next.checked_sub(1),
                    used_bytes: st.used_bytes.load(Ordering::Relaxed),
                    committed: st.committed.load(Ordering::Relaxed),
                    dropped: st.dropped.load(Ordering::Relaxed)
                        + st.refused.load(Ordering::Relaxed),
                }
            }
            None => JournalStatus {
                path: None,
                problem: self.journal_problem.clone(),
                ..JournalStatus::default()
            },
        };
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_seconds: self.started.elapsed().as_secs(),
            database: DatabaseStatus {
                signatures: active.signatures,
                reloads: self.reloads.load(Ordering::Relaxed),
                reload_failures: self.reload_failures.load(Ordering::Relaxed),
                last_reload: self
                    .last_reload
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
            scans: ScanStatus {
                scanned: self.scans.load(Ordering::Relaxed),
                infected: self.infected.load(Ordering::Relaxed),
                running: self.tasks.snapshot().len() as u64,
                queued: u64::from(self.tasks.queued.load(Ordering::Relaxed)),
            },
            sensor,
            journal,
            subscribers: self.hub.subscribers() as u64,
            ring: {
                let r = self.hub.ring_status();
                crate::ipc::RingStatus {
                    bytes: r.bytes,
                    readers: r.readers as u64,
                    failed: r.failed,
                }
            },
            rss_bytes: resident_bytes(),
            refused: crate::ipc::RefusedStatus {
                connect: self.refused[0].load(Ordering::Relaxed),
                control: self.refused[1].load(Ordering::Relaxed),
                scan: self.refused[2].load(Ordering::Relaxed),
            },
        }
    }

    pub fn stats_report(&self) -> StatsReport {
        let tasks = self.tasks.snapshot();
        let max = self.config.max_threads;
        let live = (tasks.len() as u32).min(max);
        let rss = resident_bytes();
        StatsReport {
            valid: true,
            live,
            idle: max - live,
            max,
            idle_timeout: self.config.idle_timeout.as_secs() as u32,
            queued: self.tasks.queued.load(Ordering::Relaxed),
            tasks,
            mem_used: rss,
            mem_total: rss,
        }
    }
}

#[cold]
fn unreachable_permit() -> ! {
    // A closed semaphore would be a bug in this file; stop rather than scan
    // without a limit.
    panic!("scanning semaphore closed")
}

/// The VERSION reply: clamd's shape, naming aether in the database field.
pub fn version_text() -> String {
    format!(
        "ClamAV {}/aether {}",
        aether_clamd::CLAMD_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Serves until SIGTERM, SIGINT or SHUTDOWN; SIGHUP reloads.
pub async fn serve(listeners: Listeners, shared: Arc<Shared>) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Each connection holds a sender; when all are gone, recv() ends.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);

    let mut socket_path = None;
    if let Some((l, path)) = listeners.unix {
        l.set_nonblocking(true)?;
        let l = tokio::net::UnixListener::from_std(l)?;
        socket_path = Some(path.clone());
        tracing::info!("listening on {}", path.display());
        let (shared, alive) = (Arc::clone(&shared), alive_tx.clone());
        tokio::spawn(async move {
            let mut stop = shared.shutdown_rx();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((s, _)) => {
                            let (shared, alive) = (Arc::clone(&shared), alive.clone());
                            tokio::spawn(async move {
                                Conn::new(Stream::Unix(s), shared).run().await;
                                drop(alive);
                            });
                        }
                        Err(e) => accept_error(e).await,
                    },
                    _ = crate::server::stopped(&mut stop) => break,
                }
            }
        });
    }
    if let Some(l) = listeners.tcp {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        tracing::info!("listening on TCP {}", l.local_addr()?);
        let (shared, alive) = (Arc::clone(&shared), alive_tx.clone());
        tokio::spawn(async move {
            let mut stop = shared.shutdown_rx();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((s, _)) => {
                            let (shared, alive) = (Arc::clone(&shared), alive.clone());
                            tokio::spawn(async move {
                                Conn::new(Stream::Tcp(s), shared).run().await;
                                drop(alive);
                            });
                        }
                        Err(e) => accept_error(e).await,
                    },
                    _ = crate::server::stopped(&mut stop) => break,
                }
            }
        });
    }
    drop(alive_tx);

    let mut stop = shared.shutdown_rx();
    loop {
        tokio::select! {
            _ = hup.recv() => shared.trigger_reload("SIGHUP"),
            _ = term.recv() => { tracing::info!("SIGTERM received"); shared.shutdown(); }
            _ = int.recv() => { tracing::info!("SIGINT received"); shared.shutdown(); }
            _ = crate::server::stopped(&mut stop) => break,
        }
    }
    tracing::info!("shutting down: no new connections; waiting for scans in progress");
    if let Some(path) = &socket_path {
        Listeners::remove_socket_file(path);
    }
    // Idle connections end at once (they watch the shutdown flag); scans in
    // progress get a bounded time to finish.
    let grace = shared
        .config
        .command_read_timeout
        .max(std::time::Duration::from_secs(5));
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
        tracing::warn!("scans still running after {grace:?}; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Out of descriptors or memory: say so and pause, rather than spin.
async fn accept_error(e: io::Error) {
    tracing::error!("accept: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Resolves once shutdown has been requested.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
