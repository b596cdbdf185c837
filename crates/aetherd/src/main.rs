/*!
aetherd: aether's resident scanner.

It loads the signature databases once, compiled, and answers clients over
clamd's socket protocol (Unix socket, optionally TCP on loopback), so that the
scripts, mail filters and file servers written for clamd work unchanged,
including Debian's `clamdscan`. What it does differently from clamd is why it
exists: a database reload compiles the new one in the background and swaps it
in atomically, so no scan ever stalls or fails during a reload, and a database
that fails to load leaves the old one serving.

It is also where aether's other parts meet: it runs the process sensor
(`aether-sensor`) when the machine allows it, appends every sensor event,
scan result and lifecycle event to the journal (`aether-journal`), and
serves aether's own protocol (`aether-ipc`) on a second socket, where
`aether events`, `aether status` and `aether reload` talk to it.

The wire format lives in `aether-clamd` (a pure codec), walking and per-file
scanning in `aether-scan`, matching in `aether-engine`; this binary is the
glue: configuration ([`config`]), the database in service ([`db`]), sockets
and signals ([`server`]), one client's protocol ([`conn`]), the blocking
scan jobs ([`jobs`]), the journal writer ([`recorder`]), the sensor
([`sensor`]), the IPC socket and UDP publisher ([`ipc`]) and the scans of
descriptors clients pass on it ([`fdscan`]).

Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad command line,
3 bad configuration, 4 database failed to load, 5 socket in use or cannot be
bound, 6 missing privileges.
*/

mod config;
mod conn;
mod db;
mod fdscan;
mod ipc;
mod jobs;
mod recorder;
mod sensor;
mod server;
mod stream;
mod tasks;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use aether_journal::{JournalError, Lifecycle};

use crate::config::Config;
use crate::recorder::{Outlets, Recorder};
use crate::server::{ListenError, Listeners, SensorState, Shared};

/// aether's resident scanner, speaking the clamd protocol.
#[derive(Parser, Debug)]
#[command(name = "aetherd", version, about)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Stay in the foreground and log to standard error (as under systemd).
    #[arg(short = 'F', long)]
    foreground: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 3;
const EXIT_DATABASE: u8 = 4;
const EXIT_SOCKET: u8 = 5;
const EXIT_PERMISSION: u8 = 6;

fn main() -> ExitCode {
    aether_scan::return_large_buffers();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("aetherd: {message}");
            tracing::error!("{message}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<(), (u8, String)> {
    let mut config = Config::load(&cli.config).map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    if cli.foreground {
        config.foreground = true;
    }
    if cli.check_config {
        println!("{}: configuration is valid", cli.config.display());
        return Ok(());
    }
    init_logging(&config).map_err(|e| (EXIT_CONFIG, e))?;
    raise_fd_limit();

    let listen_code = |e: ListenError| {
        let code = match &e {
            ListenError::Permission { .. } => EXIT_PERMISSION,
            _ => EXIT_SOCKET,
        };
        (code, e.to_string())
    };
    let listeners = Listeners::bind(&config).map_err(listen_code)?;
    let socket = listeners.unix.as_ref().map(|(_, p)| p.clone());
    let cleanup_clamd = |socket: &Option<PathBuf>| {
        if let Some(p) = socket {
            Listeners::remove_socket_file(p);
        }
    };
    let ipc_listener = match ipc::bind(&config) {
        Ok(l) => l,
        Err(e) => {
            cleanup_clamd(&socket);
            return Err(listen_code(e));
        }
    };
    let ipc_socket = ipc_listener.as_ref().map(|(_, p)| p.clone());
    let cleanup = |socket: &Option<PathBuf>| {
        cleanup_clamd(socket);
        cleanup_clamd(&ipc_socket);
    };

    tracing::info!(
        "aetherd {} starting; loading the database",
        env!("CARGO_PKG_VERSION")
    );
    let db = match db::Database::load(config.sources(), config.database_cache_directory.clone()) {
        Ok(db) => db,
        Err(e) => {
            cleanup(&socket);
            return Err((EXIT_DATABASE, format!("cannot load the database: {e}")));
        }
    };

    if !config.foreground
        && let Err(e) = daemonize()
    {
        cleanup(&socket);
        return Err((EXIT_RUNTIME, format!("cannot go to the background: {e}")));
    }
    if let Some(pid_file) = &config.pid_file
        && let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id()))
    {
        tracing::warn!("cannot write {}: {e}", pid_file.display());
    }

    let pid_file = config.pid_file.clone();
    let workers = config.max_threads.clamp(2, 8) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.min(4))
        .max_blocking_threads(config.max_threads as usize + 4)
        .enable_all()
        .build()
        .map_err(|e| (EXIT_RUNTIME, format!("cannot start the runtime: {e}")))?;

    // The journal, opened after the fork (SQLite connections do not survive one):
    // its first record is the gap since the last writer.
    let hub =
        aether_ipc::Hub::new(config.subscriber_buffer).with_ring_capacity(config.subscriber_ring);
    let (udp_tx, udp_rx) = match config.udp_peer {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1 << 16);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (recorder, writer) = match &config.journal_path {
        None => (Err("turned off (JournalPath = \"\")".to_string()), None),
        Some(path) => match open_journal(path, &config, hub.clone(), udp_tx) {
            Ok((r, w)) => (Ok(r), Some(w)),
            Err(JournalError::InUse { path }) => {
                cleanup(&socket);
                return Err((
                    EXIT_SOCKET,
                    format!("journal {} is in use by another aetherd", path.display()),
                ));
            }
            Err(e) => {
                let why = e.to_string();
                tracing::error!("running without a journal: {why}");
                (Err(why), None)
            }
        },
    };
    if let Ok(r) = &recorder {
        r.lifecycle(Lifecycle::Started {
            version: env!("CARGO_PKG_VERSION").to_string(),
        });
        r.lifecycle(Lifecycle::DatabaseLoaded {
            detail: format!("{} signatures", db.current().signatures),
        });
    }
    let journal_path = recorder.as_ref().ok().map(|r| r.path().to_path_buf());
    let sensor_wanted = config.sensor;
    let shared = Arc::new(Shared::new(config, db, recorder, hub));
    let sensor_state = match (&shared.recorder, sensor_wanted) {
        (_, false) => SensorState::Unavailable("turned off (Sensor = false)".into()),
        (None, true) => SensorState::Unavailable("no journal to record events in".into()),
        (Some(rec), true) => match sensor::start(
            rec,
            shared.config.sensor_buffer,
            shared.config.sensor_receive_buffer,
        ) {
            Ok(running) => {
                tracing::info!("process sensor running");
                SensorState::Running(running)
            }
            Err(why) => {
                tracing::warn!("running without the process sensor: {why}");
                rec.lifecycle(Lifecycle::SensorUnavailable {
                    reason: why.clone(),
                });
                SensorState::Unavailable(why)
            }
        },
    };
    *shared.sensor.lock().unwrap_or_else(|p| p.into_inner()) = Some(sensor_state);

    let replay = Arc::new(ipc::JournalReplay::new(journal_path));
    let result = runtime.block_on(async {
        let ipc_task = match ipc_listener {
            Some((l, path)) => Some(
                ipc::serve(l, &path, Arc::clone(&shared), Arc::clone(&replay))
                    .map_err(|e| std::io::Error::other(format!("IPC socket: {e}")))?,
            ),
            None => None,
        };
        let udp_task = match udp_rx {
            Some(rx) => match ipc::udp(&shared.config, rx, Arc::clone(&replay)).await {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!("UDP publisher not started: {e}");
                    None
                }
            },
            None => None,
        };
        let r = server::serve(listeners, Arc::clone(&shared)).await;
        if let Some(t) = ipc_task {
            t.abort();
        }
        if let Some(t) = udp_task {
            t.abort();
        }
        r
    });
    cleanup(&socket);
    // Stop the sensor first, so that its last events reach the journal, then
    // close the journal with its clean-stop record.
    let sensor = shared
        .sensor
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(SensorState::Running(s)) = sensor {
        s.stop();
    }
    if let Some(w) = writer {
        w.stop();
    }
    if let Some(p) = pid_file {
        let _ = std::fs::remove_file(p);
    }
    result.map_err(|e| (EXIT_RUNTIME, e.to_string()))
}

fn open_journal(
    path: &std::path::Path,
    config: &Config,
    hub: aether_ipc::Hub,
    udp: Option<tokio::sync::mpsc::Sender<aether_ipc::msg::Record>>,
) -> Result<(Recorder, recorder::Writer), JournalError> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                what: "creating its directory",
                source,
            })?;
    }
    // Events name every program run on the machine, with its arguments: the
    // journal is for root and the aether group, not for everyone. SQLite gives its
    // -wal and -shm files the mode of the database file.
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(path)
            .and_then(|f| {
                // Whatever the umask: the aether group may read it.
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o640))
            })
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                what: "creating it",
                source,
            })?;
    }
    Recorder::start(path, config.journal_options, Outlets { hub, udp })
}

/// Each client holds a descriptor; the usual soft limit of 1024 would turn
/// a burst of clients into refused connections, so take the hard limit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::warn!(
                    "cannot raise the open-file limit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    use tracing::Level;
    let level = if config.debug {
        Level::TRACE
    } else if config.log_verbose {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    match &config.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open LogFile {}: {e}", path.display()))?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Classic double-free-of-the-terminal: fork, the parent exits, the child
/// starts a session with standard streams on /dev/null. Done before any
/// thread exists (the tokio runtime is built after).
fn daemonize() -> std::io::Result<()> {
    // SAFETY: single-threaded at this point; fork/setsid/dup2 as documented.
    unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    std::env::set_current_dir("/")
}
