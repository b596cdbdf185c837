//! The configuration file: TOML, with clamd.conf's names for every setting
//! that means the same thing here, so that a clamd.conf translates line by
//! line. Every setting has a default; an empty file is a valid configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where aetherd looks for its configuration without `--config`.
pub const DEFAULT_CONFIG: &str = "/etc/aether/aetherd.toml";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {setting}: {message}")]
    Invalid {
        path: PathBuf,
        setting: &'static str,
        message: String,
    },
}

/// A size, written as a number of bytes or as clamd's `100M`, `4K`, `1G`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self, path: &Path, setting: &'static str) -> Result<u64, ConfigError> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => aether_scan::parse_size(t).map_err(|e| ConfigError::Invalid {
                path: path.to_path_buf(),
                setting,
                message: e.to_string(),
            }),
        }
    }
}

/// The file as written; see docs/configuration.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(rename = "LocalSocket")]
    pub local_socket: Option<PathBuf>,
    #[serde(rename = "LocalSocketMode")]
    pub local_socket_mode: Option<String>,
    #[serde(rename = "TCPSocket")]
    pub tcp_socket: Option<u16>,
    #[serde(rename = "TCPAddr")]
    pub tcp_addr: Option<String>,
    #[serde(rename = "MaxThreads")]
    pub max_threads: Option<u32>,
    #[serde(rename = "MaxConnectionQueueLength")]
    pub max_connection_queue_length: Option<u32>,
    #[serde(rename = "StreamMaxLength")]
    pub stream_max_length: Option<Size>,
    #[serde(rename = "MaxScanSize")]
    pub max_scan_size: Option<Size>,
    #[serde(rename = "MaxFileSize")]
    pub max_file_size: Option<Size>,
    #[serde(rename = "MaxRecursion")]
    pub max_recursion: Option<u32>,
    #[serde(rename = "MaxFiles")]
    pub max_files: Option<u64>,
    #[serde(rename = "MaxScanTime")]
    pub max_scan_time: Option<u64>,
    #[serde(rename = "MaxDirectoryRecursion")]
    pub max_directory_recursion: Option<u32>,
    #[serde(rename = "FollowDirectorySymlinks")]
    pub follow_directory_symlinks: Option<bool>,
    #[serde(rename = "FollowFileSymlinks")]
    pub follow_file_symlinks: Option<bool>,
    #[serde(rename = "CrossFilesystems")]
    pub cross_filesystems: Option<bool>,
    #[serde(rename = "ExcludePath")]
    pub exclude_path: Option<Vec<String>>,
    #[serde(rename = "AlertExceedsMax")]
    pub alert_exceeds_max: Option<bool>,
    #[serde(rename = "DatabaseDirectory")]
    pub database_directory: Option<PathBuf>,
    #[serde(rename = "BuiltinDatabase")]
    pub builtin_database: Option<bool>,
    #[serde(rename = "DatabaseCacheDirectory")]
    pub database_cache_directory: Option<PathBuf>,
    #[serde(rename = "DatabaseCache")]
    pub database_cache: Option<bool>,
    #[serde(rename = "ReadTimeout")]
    pub read_timeout: Option<u64>,
    #[serde(rename = "CommandReadTimeout")]
    pub command_read_timeout: Option<u64>,
    #[serde(rename = "IdleTimeout")]
    pub idle_timeout: Option<u64>,
    #[serde(rename = "SendBufTimeout")]
    pub send_buf_timeout: Option<u64>,
    #[serde(rename = "TemporaryDirectory")]
    pub temporary_directory: Option<PathBuf>,
    #[serde(rename = "LogFile")]
    pub log_file: Option<PathBuf>,
    #[serde(rename = "LogVerbose")]
    pub log_verbose: Option<bool>,
    #[serde(rename = "Debug")]
    pub debug: Option<bool>,
    #[serde(rename = "Foreground")]
    pub foreground: Option<bool>,
    #[serde(rename = "PidFile")]
    pub pid_file: Option<PathBuf>,
    #[serde(rename = "EnableShutdownCommand")]
    pub enable_shutdown_command: Option<bool>,
    #[serde(rename = "EnableReloadCommand")]
    pub enable_reload_command: Option<bool>,
    #[serde(rename = "EnableVersionCommand")]
    pub enable_version_command: Option<bool>,
    #[serde(rename = "EnableStatsCommand")]
    pub enable_stats_command: Option<bool>,
    #[serde(rename = "AllowAllMatchScan")]
    pub allow_all_match_scan: Option<bool>,
    #[serde(rename = "IpcSocket")]
    pub ipc_socket: Option<PathBuf>,
    #[serde(rename = "IpcSocketMode")]
    pub ipc_socket_mode: Option<String>,
    #[serde(rename = "IpcGroup")]
    pub ipc_group: Option<String>,
    #[serde(rename = "SubscriberBuffer")]
    pub subscriber_buffer: Option<u64>,
    #[serde(rename = "SubscriberRing")]
    pub subscriber_ring: Option<Size>,
    #[serde(rename = "JournalPath")]
    pub journal_path: Option<PathBuf>,
    #[serde(rename = "JournalMaxSize")]
    pub journal_max_size: Option<Size>,
    #[serde(rename = "JournalMaxAge")]
    pub journal_max_age: Option<u64>,
    #[serde(rename = "JournalSync")]
    pub journal_sync: Option<bool>,
    #[serde(rename = "Sensor")]
    pub sensor: Option<bool>,
    #[serde(rename = "SensorBuffer")]
    pub sensor_buffer: Option<u64>,
    #[serde(rename = "SensorReceiveBuffer")]
    pub sensor_receive_buffer: Option<Size>,
    #[serde(rename = "UdpPeer")]
    pub udp_peer: Option<String>,
    #[serde(rename = "UdpBind")]
    pub udp_bind: Option<String>,
    #[serde(rename = "UdpKeyFile")]
    pub udp_key_file: Option<PathBuf>,
    #[serde(rename = "UdpAllowNonLoopback")]
    pub udp_allow_non_loopback: Option<bool>,
}

/// The configuration with defaults applied and values checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub local_socket: Option<PathBuf>,
    pub local_socket_mode: u32,
    pub tcp: Option<(String, u16)>,
    pub max_threads: u32,
    pub max_connections: u32,
    pub stream_max_length: u64,
    pub limits: aether_engine::Limits,
    pub max_directory_recursion: u32,
    pub follow_directory_symlinks: bool,
    pub follow_file_symlinks: bool,
    pub cross_filesystems: bool,
    pub exclude_path: Vec<String>,
    pub alert_exceeds_max: bool,
    pub database_directory: Option<PathBuf>,
    pub builtin_database: bool,
    pub database_cache_directory: Option<PathBuf>,
    pub read_timeout: Duration,
    pub command_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub temporary_directory: PathBuf,
    pub log_file: Option<PathBuf>,
    pub log_verbose: bool,
    pub debug: bool,
    pub foreground: bool,
    pub pid_file: Option<PathBuf>,
    pub enable_shutdown: bool,
    pub enable_reload: bool,
    pub enable_version: bool,
    pub enable_stats: bool,
    pub allow_all_match_scan: bool,
    pub ipc_socket: Option<PathBuf>,
    pub ipc_socket_mode: u32,
    pub ipc_group: Option<String>,
    pub subscriber_buffer: usize,
    /// Bytes of the shared-memory ring for live records; 0: none.
    pub subscriber_ring: usize,
    pub journal_path: Option<PathBuf>,
    pub journal_options: aether_journal::Options,
    pub sensor: bool,
    /// Sensor events held for the journal's forwarding thread (see sensor.rs).
    pub sensor_buffer: usize,
    /// The sensor's socket receive buffer to ask for, in bytes.
    pub sensor_receive_buffer: usize,
    pub udp_peer: Option<std::net::SocketAddr>,
    pub udp_bind: std::net::SocketAddr,
    pub udp_key_file: PathBuf,
    pub udp_allow_non_loopback: bool,
}

/// The default IPC socket (aether's own protocol, `docs/protocol.md`).
pub const DEFAULT_IPC_SOCKET: &str = "/run/aether/aetherd.sock";
/// The default journal.
pub const DEFAULT_JOURNAL: &str = "/var/lib/aether/journal.db";
/// The default of `SensorBuffer`, and the range it may be set in.
pub const DEFAULT_SENSOR_BUFFER: u64 = 1 << 18;
const SENSOR_BUFFER_RANGE: std::ops::RangeInclusive<u64> = 4096..=(1 << 24);
/// The range of `SensorReceiveBuffer` (its default is the sensor's).
const SENSOR_RCVBUF_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 30);
/// The sizes `SubscriberRing` may have (besides 0).
const SUBSCRIBER_RING_RANGE: std::ops::RangeInclusive<u64> = (1 << 16)..=(1 << 30);
/// The default UDP key file.
pub const DEFAULT_UDP_KEY: &str = "/etc/aether/udp.key";

/// The default socket, as Debian's clamd puts its own in /run/clamav.
pub const DEFAULT_SOCKET: &str = "/run/aether/clamd.sock";

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Config::from_raw(raw, path)
    }

    fn from_raw(r: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |setting: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            setting,
            message,
        };
        let size = |s: &Option<Size>, name: &'static str, default: u64| match s {
            Some(s) => s.bytes(path, name),
            None => Ok(default),
        };
        let mode_text = r.local_socket_mode.unwrap_or_else(|| "666".to_string());
        let local_socket_mode = u32::from_str_radix(&mode_text, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                invalid(
                    "LocalSocketMode",
                    format!("{mode_text:?} is not an octal mode"),
                )
            })?;
        let max_threads = r.max_threads.unwrap_or(10);
        if max_threads == 0 || max_threads > 256 {
            return Err(invalid(
                "MaxThreads",
                format!("{max_threads} is not between 1 and 256"),
            ));
        }
        let tcp = match r.tcp_socket {
            Some(port) => Some((r.tcp_addr.unwrap_or_else(|| "127.0.0.1".to_string()), port)),
            None => {
                if r.tcp_addr.is_some() {
                    return Err(invalid("TCPAddr", "set without TCPSocket".to_string()));
                }
                None
            }
        };
        let local_socket = match r.local_socket {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_SOCKET)),
        };
        if local_socket.is_none() && tcp.is_none() {
            return Err(invalid(
                "LocalSocket",
                "no LocalSocket and no TCPSocket: nothing to listen on".to_string(),
            ));
        }
        if let Some(p) = &local_socket
            && !p.is_absolute()
        {
            return Err(invalid(
                "LocalSocket",
                format!("{} is not an absolute path", p.display()),
            ));
        }
        for pattern in r.exclude_path.iter().flatten() {
            aether_scan::PathFilter::new(pattern)
                .map_err(|e| invalid("ExcludePath", format!("{pattern:?}: {e}")))?;
        }
        let max_scan_time = r.max_scan_time.unwrap_or(120_000);
        let limits = aether_engine::Limits {
            all_match: false,
            max_filesize: size(&r.max_file_size, "MaxFileSize", 100 << 20)?,
            max_scansize: size(&r.max_scan_size, "MaxScanSize", 400 << 20)?,
            max_files: r.max_files.unwrap_or(10_000),
            max_recursion: r.max_recursion.unwrap_or(17),
            max_scantime: (max_scan_time > 0).then(|| Duration::from_millis(max_scan_time)),
        };
        let database_cache_directory = match r.database_cache {
            Some(false) => None,
            _ => r
                .database_cache_directory
                .or_else(aether_engine::default_cache_dir),
        };
        let secs = |v: Option<u64>, d: u64| Duration::from_secs(v.unwrap_or(d));
        let octal = |text: String, setting: &'static str| {
            u32::from_str_radix(&text, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| invalid(setting, format!("{text:?} is not an octal mode")))
        };
        let ipc_socket_mode = octal(
            r.ipc_socket_mode.unwrap_or_else(|| "660".to_string()),
            "IpcSocketMode",
        )?;
        let optional_path = |p: Option<PathBuf>, default: &str, setting: &'static str| match p {
            Some(p) if p.as_os_str().is_empty() => Ok(None),
            Some(p) if !p.is_absolute() => Err(invalid(
                setting,
                format!("{} is not an absolute path", p.display()),
            )),
            Some(p) => Ok(Some(p)),
            None => Ok(Some(PathBuf::from(default))),
        };
        let ipc_socket = optional_path(r.ipc_socket, DEFAULT_IPC_SOCKET, "IpcSocket")?;
        let journal_path = optional_path(r.journal_path, DEFAULT_JOURNAL, "JournalPath")?;
        if ipc_socket.is_some() && ipc_socket == local_socket {
            return Err(invalid(
                "IpcSocket",
                "is the same path as LocalSocket".to_string(),
            ));
        }
        let journal_max_age = r.journal_max_age.unwrap_or(30 * 24 * 3600);
        let journal_options = aether_journal::Options {
            durability: if r.journal_sync.unwrap_or(false) {
                aether_journal::Durability::Power
            } else {
                aether_journal::Durability::Process
            },
            retention: aether_journal::Retention {
                max_bytes: Some(size(&r.journal_max_size, "JournalMaxSize", 1 << 30)?)
                    .filter(|b| *b > 0),
                max_age: (journal_max_age > 0).then(|| Duration::from_secs(journal_max_age)),
            },
            ..aether_journal::Options::default()
        };
        let addr = |text: &str, setting: &'static str| {
            text.parse::<std::net::SocketAddr>()
                .map_err(|e| invalid(setting, format!("{text:?}: {e} (want address:port)")))
        };
        let udp_peer = match &r.udp_peer {
            Some(t) if !t.is_empty() => Some(addr(t, "UdpPeer")?),
            _ => None,
        };
        let udp_bind = addr(r.udp_bind.as_deref().unwrap_or("127.0.0.1:0"), "UdpBind")?;
        let udp_allow_non_loopback = r.udp_allow_non_loopback.unwrap_or(false);
        if !udp_allow_non_loopback {
            for (a, setting) in [(Some(udp_bind), "UdpBind"), (udp_peer, "UdpPeer")] {
                if let Some(a) = a
                    && !a.ip().is_loopback()
                {
                    return Err(invalid(
                        setting,
                        format!("{a} is not loopback; set UdpAllowNonLoopback = true to allow it"),
                    ));
                }
            }
        }
        if udp_peer.is_some() && journal_path.is_none() {
            return Err(invalid(
                "UdpPeer",
                "needs the journal (JournalPath): lost datagrams are refilled from it".into(),
            ));
        }
        let subscriber_ring = size(
            &r.subscriber_ring,
            "SubscriberRing",
            aether_ipc::DEFAULT_RING_CAPACITY as u64,
        )?;
        if subscriber_ring != 0 && !SUBSCRIBER_RING_RANGE.contains(&subscriber_ring) {
            return Err(invalid(
                "SubscriberRing",
                format!(
                    "{subscriber_ring} bytes is not 0 (no ring) or between {} and {}",
                    SUBSCRIBER_RING_RANGE.start(),
                    SUBSCRIBER_RING_RANGE.end()
                ),
            ));
        }
        let sensor_buffer = r.sensor_buffer.unwrap_or(DEFAULT_SENSOR_BUFFER);
        if !SENSOR_BUFFER_RANGE.contains(&sensor_buffer) {
            return Err(invalid(
                "SensorBuffer",
                format!(
                    "{sensor_buffer} is not between {} and {} events",
                    SENSOR_BUFFER_RANGE.start(),
                    SENSOR_BUFFER_RANGE.end()
                ),
            ));
        }
        let sensor_receive_buffer = size(
            &r.sensor_receive_buffer,
            "SensorReceiveBuffer",
            aether_sensor::DEFAULT_RCVBUF as u64,
        )?;
        if !SENSOR_RCVBUF_RANGE.contains(&sensor_receive_buffer) {
            return Err(invalid(
                "SensorReceiveBuffer",
                format!("{sensor_receive_buffer} bytes is not between 64K and 1G"),
            ));
        }
        Ok(Config {
            ipc_socket,
            ipc_socket_mode,
            ipc_group: match r.ipc_group {
                Some(g) if g.is_empty() => None,
                Some(g) => Some(g),
                None => Some("aether".to_string()),
            },
            subscriber_buffer: r.subscriber_buffer.unwrap_or(512).clamp(4, 1 << 16) as usize,
            // At most 1 GiB, checked above.
            subscriber_ring: subscriber_ring as usize,
            journal_path,
            journal_options,
            sensor: r.sensor.unwrap_or(true),
            // At most 2^24, checked above.
            sensor_buffer: sensor_buffer as usize,
            // At most 1 GiB, checked above.
            sensor_receive_buffer: sensor_receive_buffer as usize,
            udp_peer,
            udp_bind,
            udp_key_file: r
                .udp_key_file
                .unwrap_or_else(|| PathBuf::from(DEFAULT_UDP_KEY)),
            udp_allow_non_loopback,
            local_socket,
            local_socket_mode,
            tcp,
            max_threads,
            max_connections: r.max_connection_queue_length.unwrap_or(200).max(1),
            stream_max_length: size(&r.stream_max_length, "StreamMaxLength", 100 << 20)?,
            limits,
            max_directory_recursion: r.max_directory_recursion.unwrap_or(15),
            follow_directory_symlinks: r.follow_directory_symlinks.unwrap_or(false),
            follow_file_symlinks: r.follow_file_symlinks.unwrap_or(false),
            cross_filesystems: r.cross_filesystems.unwrap_or(true),
            exclude_path: r.exclude_path.unwrap_or_default(),
            alert_exceeds_max: r.alert_exceeds_max.unwrap_or(false),
            database_directory: r.database_directory.or_else(|| {
                let d = Path::new(aether_engine::database::CLAMAV_DB_DIR);
                d.is_dir().then(|| d.to_path_buf())
            }),
            builtin_database: r.builtin_database.unwrap_or(true),
            database_cache_directory,
            read_timeout: secs(r.read_timeout, 120),
            command_read_timeout: secs(r.command_read_timeout, 30),
            idle_timeout: secs(r.idle_timeout, 30),
            send_timeout: Duration::from_millis(r.send_buf_timeout.unwrap_or(30_000).max(1)),
            temporary_directory: r.temporary_directory.unwrap_or_else(std::env::temp_dir),
            log_file: r.log_file,
            log_verbose: r.log_verbose.unwrap_or(false),
            debug: r.debug.unwrap_or(false),
            foreground: r.foreground.unwrap_or(false),
            pid_file: r.pid_file,
            enable_shutdown: r.enable_shutdown_command.unwrap_or(true),
            enable_reload: r.enable_reload_command.unwrap_or(true),
            enable_version: r.enable_version_command.unwrap_or(true),
            enable_stats: r.enable_stats_command.unwrap_or(true),
            allow_all_match_scan: r.allow_all_match_scan.unwrap_or(true),
        })
    }

    /// The databases to load.
    pub fn sources(&self) -> aether_engine::DbSources {
        aether_engine::DbSources {
            builtin: self.builtin_database,
            paths: self.database_directory.iter().cloned().collect(),
        }
    }

    /// Walking options for SCAN, CONTSCAN, MULTISCAN and ALLMATCHSCAN.
    pub fn scan_options(&self, threads: usize, all_match: bool) -> aether_scan::ScanOptions {
        use aether_scan::FollowSymlinks;
        // clamd applies Follow*Symlinks to the argument too: a link given
        // to SCAN is not followed unless they are on.
        let follow = |on: bool| {
            if on {
                FollowSymlinks::Always
            } else {
                FollowSymlinks::Never
            }
        };
        let mut limits = self.limits.clone();
        limits.all_match = all_match;
        aether_scan::ScanOptions {
            recursive: true,
            follow_dir_symlinks: follow(self.follow_directory_symlinks),
            follow_file_symlinks: follow(self.follow_file_symlinks),
            cross_fs: self.cross_filesystems,
            max_dir_recursion: self.max_directory_recursion,
            exclude: self
                .exclude_path
                .iter()
                .filter_map(|p| aether_scan::PathFilter::new(p).ok())
                .collect(),
            exclude_dir: self
                .exclude_path
                .iter()
                .filter_map(|p| aether_scan::PathFilter::new(p).ok())
                .collect(),
            include: Vec::new(),
            include_dir: Vec::new(),
            limits,
            alert_exceeds_max: self.alert_exceeds_max,
            threads,
            // Replies go out as files finish, as clamd's MULTISCAN does.
            ordered: false,
            ..aether_scan::ScanOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.local_socket.as_deref(), Some(Path::new(DEFAULT_SOCKET)));
        assert_eq!(c.tcp, None);
        assert_eq!(c.max_threads, 10);
        assert_eq!(c.stream_max_length, 100 << 20);
        assert_eq!(c.limits.max_filesize, 100 << 20);
        assert_eq!(c.local_socket_mode, 0o666);
        assert_eq!(c.ipc_socket.as_deref(), Some(Path::new(DEFAULT_IPC_SOCKET)));
        assert_eq!(c.ipc_socket_mode, 0o660);
        assert_eq!(c.ipc_group.as_deref(), Some("aether"));
        assert_eq!(c.journal_path.as_deref(), Some(Path::new(DEFAULT_JOURNAL)));
        assert!(c.sensor);
        assert_eq!(c.sensor_buffer, 1 << 18);
        assert_eq!(c.sensor_receive_buffer, aether_sensor::DEFAULT_RCVBUF);
        assert_eq!(c.udp_peer, None);
    }

    #[test]
    fn sensor_buffer_is_bounded() {
        let c = Config::parse("SensorBuffer = 4096", Path::new("t.toml")).unwrap();
        assert_eq!(c.sensor_buffer, 4096);
        for bad in [
            "SensorBuffer = 4095",
            "SensorBuffer = 16777217",
            "SensorBuffer = 0",
        ] {
            let e = Config::parse(bad, Path::new("t.toml")).unwrap_err();
            assert!(e.to_string().contains("SensorBuffer"), "{e}");
        }
        let e = Config::parse("SensorBuffer = -1", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("SensorBuffer"), "{e}");
        let c = Config::parse("SensorReceiveBuffer = \"1M\"", Path::new("t.toml")).unwrap();
        assert_eq!(c.sensor_receive_buffer, 1 << 20);
        for bad in [
            "SensorReceiveBuffer = \"32K\"",
            "SensorReceiveBuffer = \"2G\"",
            "SensorReceiveBuffer = \"lots\"",
        ] {
            let e = Config::parse(bad, Path::new("t.toml")).unwrap_err();
            assert!(e.to_string().contains("SensorReceiveBuffer"), "{e}");
        }
    }

    #[test]
    fn subscriber_ring_is_zero_or_bounded() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.subscriber_ring, aether_ipc::DEFAULT_RING_CAPACITY);
        for (text, bytes) in [
            ("SubscriberRing = 0", 0),
            ("SubscriberRing = \"64K\"", 1 << 16),
            ("SubscriberRing = \"1G\"", 1 << 30),
        ] {
            let c = Config::parse(text, Path::new("t.toml")).unwrap();
            assert_eq!(c.subscriber_ring, bytes, "{text}");
        }
        for bad in ["SubscriberRing = 65535", "SubscriberRing = \"2G\""] {
            let e = Config::parse(bad, Path::new("t.toml")).unwrap_err();
            assert!(e.to_string().contains("SubscriberRing"), "{e}");
        }
    }

    #[test]
    fn ipc_journal_and_udp_settings() {
        let c = Config::parse(
            "IpcSocket = \"\"\nJournalPath = \"\"\nSensor = false\nIpcGroup = \"\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(
            (c.ipc_socket, c.journal_path, c.sensor),
            (None, None, false)
        );
        assert_eq!(c.ipc_group, None);
        let c = Config::parse(
            "UdpPeer = \"127.0.0.1:9999\"\nJournalMaxSize = \"10M\"\nJournalMaxAge = 0\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.udp_peer, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(c.journal_options.retention.max_bytes, Some(10 << 20));
        assert_eq!(c.journal_options.retention.max_age, None);
        let e = Config::parse("UdpPeer = \"10.0.0.1:9\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("UdpAllowNonLoopback"), "{e}");
        let e = Config::parse("UdpPeer = \"nowhere\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("UdpPeer"), "{e}");
        let e = Config::parse("IpcSocketMode = \"9\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("IpcSocketMode"), "{e}");
        let e = Config::parse("JournalPath = \"j.db\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("JournalPath"), "{e}");
    }

    #[test]
    fn clamd_names_and_sizes() {
        let c = Config::parse(
            "LocalSocket = \"/tmp/x.sock\"\nTCPSocket = 3310\nStreamMaxLength = \"1M\"\nMaxFileSize = 1000\nMaxThreads = 3\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.tcp, Some(("127.0.0.1".to_string(), 3310)));
        assert_eq!(c.stream_max_length, 1 << 20);
        assert_eq!(c.limits.max_filesize, 1000);
        assert_eq!(c.max_threads, 3);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = Config::parse("MaxThreads = 0", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("MaxThreads"), "{e}");
        let e = Config::parse("StreamMaxLength = \"12Q\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("StreamMaxLength"), "{e}");
        let e = Config::parse("NoSuchThing = 1", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("NoSuchThing"), "{e}");
        let e = Config::parse("LocalSocket = \"rel.sock\"", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
