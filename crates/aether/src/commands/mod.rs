//! The subcommands, one file each (yara-x's layout): each has a clap
//! definition and an `exec` that returns the exit code.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

pub mod db;
pub mod scan;
// monitor: wired in by the lead

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
}

/// The databases to load for `-d` paths: those, or with none the built-in
/// database plus `/var/lib/clamav`. An implicit `/var/lib/clamav` holding no
/// database file (Debian's clamav installed, freshclam never run) is left
/// out rather than failing the load: the built-in database still works.
pub fn db_sources(paths: &[std::path::PathBuf]) -> aether_engine::DbSources {
    let mut sources = aether_engine::DbSources::from_cli(paths);
    if paths.is_empty() {
        sources.paths.retain(|dir| holds_databases(dir));
    }
    sources
}

fn holds_databases(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Unreadable: let the loader report it.
        return true;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(aether_sigs::DbFormat::from_name)
            .is_some()
    })
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
    }
}
