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
