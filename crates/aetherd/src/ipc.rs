//! aether's own IPC beside the clamd protocol: the `aether-ipc` server on its
//! Unix socket (subscriptions from a cursor, `status`, `reload`, scans of
//! passed descriptors through [`crate::fdscan`]), and the optional
//! authenticated UDP publisher.
//!
//! The socket lives in a directory of its own, created `0750` and given to the
//! `aether` group when that group exists, and is itself `0660`: the file system
//! keeps strangers out before `SO_PEERCRED` is even asked, and the server checks
//! the credentials anyway (root and the group may connect, only root controls).

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aether_ipc::msg::{Control, ControlReply, Record};
use aether_ipc::{ControlHandler, GroupPolicy, Hub, PeerCred, Replay, Server, ServerConfig};
use aether_journal::Reader;
use serde::Serialize;

use crate::config::Config;
use crate::db::ReloadOutcome;
use crate::server::{ListenError, Shared};

/// What `status` answers, as JSON in the reply's message.
#[derive(Debug, Serialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: u64,
    pub database: DatabaseStatus,
    pub scans: ScanStatus,
    pub sensor: SensorStatus,
    pub journal: JournalStatus,
    pub subscribers: u64,
    pub ring: RingStatus,
    pub rss_bytes: u64,
    pub refused: RefusedStatus,
}

/// The shared-memory ring live records go through (`SubscriberRing`).
#[derive(Debug, Default, Serialize)]
pub struct RingStatus {
    /// Its size, once a subscriber has asked for it.
    pub bytes: Option<u64>,
    /// Subscribers reading it now (counted in `subscribers` too).
    pub readers: u64,
    /// Why it could not be made; its subscribers get records on their sockets.
    pub failed: Option<String>,
}

/// Requests refused since start, each also journaled (`refused` records).
#[derive(Debug, Default, Serialize)]
pub struct RefusedStatus {
    /// Peers not allowed to connect.
    pub connect: u64,
    /// Control commands from peers not allowed to send them.
    pub control: u64,
    /// Scan requests refused before reading (not a readable regular file, no
    /// descriptor, all-match scans turned off).
    pub scan: u64,
}

#[derive(Debug, Serialize)]
pub struct DatabaseStatus {
    pub signatures: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub last_reload: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ScanStatus {
    pub scanned: u64,
    pub infected: u64,
    pub running: u64,
    pub queued: u64,
}

#[derive(Debug, Serialize)]
pub struct SensorStatus {
    pub running: bool,
    pub reason: Option<String>,
    pub counters: Option<aether_sensor::StatsSnapshot>,
}

#[derive(Debug, Default, Serialize)]
pub struct JournalStatus {
    pub path: Option<String>,
    pub problem: Option<String>,
    pub last_seq: Option<u64>,
    pub used_bytes: u64,
    pub committed: u64,
    pub dropped: u64,
}

/// The group id of `name`, if the group exists.
pub fn group_id(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r with valid buffers; `out` is null or points into `grp`.
    let r = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    (r == 0 && !out.is_null()).then_some(grp.gr_gid)
}

/// Gives `path` to group `gid`, unless it has it already (under systemd with
/// `Group=aether`, files are created with it, and the unit's system call filter
/// refuses `chown`).
fn chown_group(path: &Path, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(path)?.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::chown(path, None, Some(gid))
}

/// Creates the socket's directory and binds the socket, with the modes and
/// group of the configuration. Done before the daemon forks, so that errors
/// reach the caller.
pub fn bind(
    config: &Config,
) -> Result<Option<(std::os::unix::net::UnixListener, PathBuf)>, ListenError> {
    let Some(path) = &config.ipc_socket else {
        return Ok(None);
    };
    let gid = config.ipc_group.as_deref().and_then(group_id);
    let what = format!("IPC socket {}", path.display());
    let io = |what: String| move |e| ListenError::from_io(what, e);
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .map_err(io(format!("directory {}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
            .map_err(io(format!("directory {}", dir.display())))?;
        if let Some(gid) = gid {
            chown_group(dir, gid).map_err(io(format!("directory {}", dir.display())))?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ListenError::Other {
                what,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                ),
            });
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ListenError::InUse(what)),
            Err(_) => std::fs::remove_file(path).map_err(io(what.clone()))?,
        }
    }
    let l = std::os::unix::net::UnixListener::bind(path).map_err(io(what.clone()))?;
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(config.ipc_socket_mode),
    )
    .map_err(io(what.clone()))?;
    if let Some(gid) = gid {
        chown_group(path, gid).map_err(io(what))?;
    }
    Ok(Some((l, path.clone())))
}

/// The journal as the subscriptions' past: a few read-only connections, each
/// used by one replay at a time.
pub struct JournalReplay {
    path: Option<PathBuf>,
    idle: Mutex<Vec<Reader>>,
}

impl JournalReplay {
    pub fn new(path: Option<PathBuf>) -> JournalReplay {
        JournalReplay {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// Idle readers kept at most.
const READERS: usize = 8;

impl Replay for JournalReplay {
    fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, String> {
        let Some(path) = &self.path else {
            return Err("the daemon runs without a journal (see its log)".into());
        };
        let reader = self.idle.lock().map_err(|e| e.to_string())?.pop();
        let reader = match reader {
            Some(r) => r,
            None => Reader::open(path).map_err(|e| e.to_string())?,
        };
        let out = reader
            .read_raw_from(seq)
            .take(max)
            .map(|r| r.map(crate::recorder::wire).map_err(|e| e.to_string()))
            .collect();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < READERS
        {
            idle.push(reader);
        }
        out
    }
}

/// `status` for anyone connected, `reload` for root.
struct Commands {
    shared: Arc<Shared>,
}

impl ControlHandler for Commands {
    fn control(&self, peer: &PeerCred, c: &Control) -> ControlReply {
        let reply = |ok: bool, message: String| ControlReply {
            id: c.id,
            ok,
            message,
        };
        match c.command.as_str() {
            "status" => match serde_json::to_string(&self.shared.status()) {
                Ok(json) => reply(true, json),
                Err(e) => reply(false, format!("cannot encode the status: {e}")),
            },
            "reload" => {
                let why = format!("IPC request from uid {}", peer.uid);
                match self.shared.reload_now(&why) {
                    ReloadOutcome::Loaded {
                        signatures,
                        elapsed,
                    } => reply(
                        true,
                        format!(
                            "database reloaded: {signatures} signatures in {:.2} s",
                            elapsed.as_secs_f64()
                        ),
                    ),
                    ReloadOutcome::Failed(why) => reply(
                        false,
                        format!("reload failed, the previous database keeps serving: {why}"),
                    ),
                    ReloadOutcome::AlreadyRunning => {
                        reply(false, "a reload is already running; try again".into())
                    }
                }
            }
            other => reply(false, format!("unknown command {other:?}")),
        }
    }

    fn is_query(&self, command: &str) -> bool {
        command == "status"
    }
}

/// Refusals go to the journal and the status counters.
struct Refusals {
    shared: Arc<Shared>,
}

impl aether_ipc::RefusalLog for Refusals {
    fn refused(&self, peer: &PeerCred, what: aether_ipc::Refused, reason: &str) {
        self.shared.refused(peer, what, reason);
    }
}

/// Starts serving the IPC socket.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    path: &Path,
    shared: Arc<Shared>,
    replay: Arc<JournalReplay>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let gid = shared.config.ipc_group.as_deref().and_then(group_id);
    match (&shared.config.ipc_group, gid) {
        (Some(name), None) => tracing::info!(
            "group {name:?} does not exist: only root may use {}",
            path.display()
        ),
        (Some(name), Some(gid)) => tracing::info!(
            "IPC on {}: root and group {name} ({gid}) may connect, root controls",
            path.display()
        ),
        (None, _) => tracing::info!("IPC on {}: root only", path.display()),
    }
    let config = ServerConfig {
        max_frame: aether_ipc::frame::DEFAULT_MAX_FRAME,
        frame_timeout: Duration::from_secs(10),
        authorize: Arc::new(GroupPolicy { group: gid }),
        control: Some(Arc::new(Commands {
            shared: Arc::clone(&shared),
        })),
        scan: Some(Arc::new(crate::fdscan::FdScans {
            shared: Arc::clone(&shared),
        })),
        max_scans_in_flight: crate::fdscan::max_in_flight(&shared.config),
        refusals: Some(Arc::new(Refusals {
            shared: Arc::clone(&shared),
        })),
    };
    let hub: Hub = shared.hub.clone();
    let server = Server::from_std(listener, path, config, hub, replay)?;
    Ok(tokio::spawn(async move {
        if let Err(e) = server.run().await {
            tracing::error!("IPC socket: {e}");
        }
    }))
}

/// The UDP publisher: records from the journal writer to one loopback peer,
/// heartbeats every 100 ms, NACKs answered from the journal.
pub async fn udp(
    config: &Config,
    mut rx: tokio::sync::mpsc::Receiver<Record>,
    replay: Arc<JournalReplay>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let Some(peer) = config.udp_peer else {
        return Err("no UdpPeer".into());
    };
    let key = aether_ipc::udp::Key::load(&config.udp_key_file).map_err(|e| e.to_string())?;
    let udp_config = aether_ipc::udp::UdpConfig {
        bind: config.udp_bind,
        allow_non_loopback: config.udp_allow_non_loopback,
        max_datagram: aether_ipc::udp::DEFAULT_MAX_DATAGRAM,
        recv_buffer: aether_ipc::udp::DEFAULT_RECV_BUFFER,
    };
    if !peer.ip().is_loopback() && !config.udp_allow_non_loopback {
        return Err(format!(
            "UdpPeer {peer} is not loopback (UdpAllowNonLoopback is off)"
        ));
    }
    let sender = aether_ipc::udp::UdpSender::new(&udp_config, peer, key, replay)
        .await
        .map_err(|e| format!("UDP {}: {e}", config.udp_bind))?;
    tracing::info!(
        "UDP publisher: stream {} from {} to {peer}",
        sender.stream_id(),
        sender
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let sender = Arc::new(sender);
    Ok(tokio::spawn(async move {
        let nacks = {
            let sender = Arc::clone(&sender);
            tokio::spawn(async move {
                if let Err(e) = sender.serve_nacks().await {
                    tracing::warn!("UDP NACKs: {e}");
                }
            })
        };
        let mut beat = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(rec) => {
                        if let Err(e) = sender.send(&rec).await {
                            tracing::debug!("UDP send of record {}: {e}", rec.seq);
                        }
                    }
                    None => break,
                },
                _ = beat.tick() => { let _ = sender.heartbeat().await; }
            }
        }
        let _ = sender.heartbeat().await;
        nacks.abort();
    }))
}
