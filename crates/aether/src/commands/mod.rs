//! The subcommands, one file each (yara-x's layout): each has a clap
//! definition and an `exec` that returns the exit code.

use std::ffi::OsString;
use std::path::PathBuf;

use aether_engine::{DbError, DbSources, Loaded};

use clap::{Parser, Subcommand};

pub mod daemon;
pub mod db;
pub mod monitor;
pub mod scan;

/// aether: a ClamAV-compatible anti-virus for Linux.
#[derive(Debug, Parser)]
#[command(name = "aether", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan files and directories, as clamscan does.
    Scan(Box<scan::ScanArgs>),
    /// Inspect signature databases.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Print every process and thread event on the machine, live (needs root).
    Monitor(monitor::MonitorArgs),
    /// Print aetherd's journal: events, scan results, lifecycle (--follow: live).
    Events(daemon::EventsArgs),
    /// Show aetherd's status: version, uptime, database, sensor, journal.
    Status(daemon::StatusArgs),
    /// Ask aetherd to reload its database (root only).
    Reload(daemon::ReloadArgs),
}

/// Which databases to load and through which cache; shared by `scan` and
/// `db info`.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// Load signatures from this file or directory (repeatable). Without it:
    /// the built-in database plus /var/lib/clamav.
    #[arg(short = 'd', long = "database", value_name = "FILE/DIR")]
    pub databases: Vec<PathBuf>,

    /// Keep the compiled database in DIR and reuse it while the databases are
    /// unchanged. Default: on for the default databases (in
    /// /var/cache/aether for root, ~/.cache/aether otherwise), off with -d.
    #[arg(long = "db-cache", value_name = "DIR", conflicts_with = "no_db_cache")]
    pub db_cache: Option<PathBuf>,

    /// Never read or write the compiled database cache.
    #[arg(long = "no-db-cache")]
    pub no_db_cache: bool,

    /// Also load YARA rules from this .yar/.yara file or directory
    /// (repeatable); rule files in database directories are always loaded.
    /// Rules run through YARA-X, with all its modules; matches are reported
    /// as YARA.<rule>.UNOFFICIAL, as clamscan names them. The compiled rules
    /// are cached with the compiled database (see --db-cache).
    #[arg(long = "yara-rules", value_name = "FILE/DIR")]
    pub yara_rules: Vec<PathBuf>,

    /// Define an external variable for the YARA rules (--yara-rules files and
    /// those in database directories), as yara's -d: `true`/`false`, an
    /// integer, a float, else a string (repeatable).
    #[arg(long = "yara-define", value_name = "NAME=VALUE", value_parser = yara_define)]
    pub yara_defines: Vec<(String, aether_engine::YaraExternal)>,
}

fn yara_define(text: &str) -> Result<(String, aether_engine::YaraExternal), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => {
            Ok((name.to_string(), aether_engine::YaraExternal::parse(value)))
        }
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

impl DbArgs {
    /// The databases: the `-d` paths, or with none the built-in database plus
    /// `/var/lib/clamav` when it holds any (see `DbSources::default_sources`).
    pub fn sources(&self) -> DbSources {
        DbSources::from_cli(&self.databases)
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_db_cache {
            None
        } else if let Some(dir) = &self.db_cache {
            Some(dir.clone())
        } else if self.databases.is_empty() {
            aether_engine::default_cache_dir()
        } else {
            None
        }
    }

    /// Loads (or reads the cache), warning on standard error when the cache
    /// could not be used.
    pub fn load(&self) -> Result<Loaded, DbError> {
        let cache = self.cache_dir();
        let sources = self.sources();
        // --yara-rules are compiled with the databases' own rule files, as
        // one rule set.
        let yara = aether_engine::YaraSources {
            rules: self.yara_rules.clone(),
            defines: self.yara_defines.clone(),
        };
        let loaded = aether_engine::load_cached_with(
            &sources,
            aether_sigs::LoadOptions::default(),
            cache.as_deref(),
            &yara,
        )?;
        if let Some(problem) = &loaded.cache_problem {
            eprintln!("WARNING: database cache: {problem}");
        }
        Ok(loaded)
    }
}

/// Parses the command line and runs the command; returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<u8> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2,
            // which is also clamscan's code for bad options.
            e.print()?;
            return Ok(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Scan(args) => scan::exec(*args),
        Command::Db(cmd) => db::exec(cmd),
        Command::Monitor(args) => monitor::run(args).map(|code| code as u8),
        Command::Events(args) => daemon::events(args),
        Command::Status(args) => daemon::status(args),
        Command::Reload(args) => daemon::reload(args),
    }
}
