//! `aether db info`: what the databases hold, and the load-time warnings
//! shared with `aether scan`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use aether_engine::{DbError, DbSources};
use aether_sigs::{LoadErrorKind, LoadReport};
use clap::{Args, Subcommand};

/// `aether db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Load the databases and list files, signature counts by kind,
    /// versions and unsupported signatures.
    Info(InfoArgs),
}

/// Options of `aether db info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    db: super::DbArgs,
}

/// Runs a `db` command; returns the exit code.
pub fn exec(cmd: DbCommand) -> anyhow::Result<u8> {
    match cmd {
        DbCommand::Info(args) => info(args),
    }
}

fn info(args: InfoArgs) -> anyhow::Result<u8> {
    let sources = args.db.sources();
    let loaded = match args.db.load() {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("aether Error: {err}");
            eprintln!("ERROR: {}", load_error_reason(&err));
            return Ok(2);
        }
    };
    let mut out = io::stdout().lock();
    write!(
        out,
        "{}",
        render_info(&sources, &loaded.report, loaded.engine.signature_count())
    )?;
    let mut how = if loaded.from_cache {
        "read from the compiled cache"
    } else {
        "parsed and compiled"
    }
    .to_string();
    if loaded.engine.yara().is_some() {
        how.push_str(if loaded.yara_from_cache {
            "; YARA rules read from their cache"
        } else {
            "; YARA rules compiled"
        });
    }
    writeln!(
        out,
        "Loaded in {:.3} s ({how})",
        loaded.elapsed.as_secs_f64()
    )?;
    out.flush()?;
    Ok(0)
}

/// The text of `aether db info`.
fn render_info(sources: &DbSources, report: &LoadReport, loaded: u64) -> String {
    let mut names: Vec<String> = Vec::new();
    if sources.builtin {
        names.push("built-in".into());
    }
    names.extend(sources.paths.iter().map(|p| p.display().to_string()));
    let mut s = format!(
        "Sources: {}
",
        names.join(", ")
    );
    s.push_str(&format!(
        "Database files: {}
",
        report.files.len()
    ));
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unsupported: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut flevel, mut ignored) = (0u64, 0u64);
    for file in &report.files {
        s.push_str(&format!("\n{} ({})\n", file.name, file.format));
        if let Some(h) = &file.cvd {
            s.push_str(&format!(
                "  version {}, built {}, by {}, {} signatures, functionality level {}\n",
                h.version, h.build_time, h.builder, h.sigs, h.flevel
            ));
        }
        for (kind, n) in &file.by_kind {
            s.push_str(&format!("  {kind}: {n}\n"));
            *kinds.entry(kind).or_default() += n;
        }
        for (reason, n) in &file.unsupported {
            s.push_str(&format!("  not supported yet, {reason}: {n}\n"));
            *unsupported.entry(reason).or_default() += n;
        }
        if file.skipped_flevel > 0 {
            s.push_str(&format!(
                "  skipped, functionality level out of range: {}\n",
                file.skipped_flevel
            ));
            flevel += file.skipped_flevel;
        }
        if file.ignored > 0 {
            s.push_str(&format!("  dropped by ignore lists: {}\n", file.ignored));
            ignored += file.ignored;
        }
    }
    s.push_str("\nSignatures by kind:\n");
    for (kind, n) in &kinds {
        s.push_str(&format!("  {kind}: {n}\n"));
    }
    if !unsupported.is_empty() {
        s.push_str("Not supported yet (skipped):\n");
        for (reason, n) in &unsupported {
            s.push_str(&format!("  {reason}: {n}\n"));
        }
    }
    if flevel > 0 {
        s.push_str(&format!("Skipped for functionality level: {flevel}\n"));
    }
    if ignored > 0 {
        s.push_str(&format!("Dropped by ignore lists: {ignored}\n"));
    }
    for note in &report.notes {
        s.push_str(&format!("Note: {note}\n"));
    }
    s.push_str(&format!(
        "Total: {loaded} signatures loaded (clamscan's \"Known viruses\")\n"
    ));
    s
}

/// One warning per (file, reason) for signatures the engine cannot use yet.
pub fn warn_unsupported(report: &LoadReport) {
    let mut err = io::stderr().lock();
    for file in &report.files {
        for (reason, n) in &file.unsupported {
            let _ = writeln!(
                err,
                "WARNING: {}: {n} signatures not supported yet ({reason}), skipped",
                file.name
            );
        }
    }
}

/// The one-line reason clamscan prints after its loader's message.
pub fn load_error_reason(err: &DbError) -> &'static str {
    match err {
        DbError::Load(load) => match &load.kind {
            LoadErrorKind::Io(e) if e.kind() == io::ErrorKind::NotFound => "Can't get file status",
            LoadErrorKind::Io(_) => "Can't read database",
            _ => "Malformed database",
        },
        _ => "Database initialization error",
    }
}
