//! `aether scan`: clamscan's everyday command line.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use aether_engine::Limits;
use aether_report::{JsonPrinter, Progress, Report, Summary, TextOptions, TextPrinter};
use aether_scan::{
    FollowSymlinks, PathFilter, ScanAborted, ScanOptions, Stats, Target, parse_size,
};
use anyhow::Context;
use clap::Args;

mod via_daemon;

/// Options of `aether scan`. Names, short forms and value syntax are
/// clamscan's; see docs/cli.md for each one's clamscan equivalence.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan; `-` is standard input. Default: the
    /// current directory.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Scan the files listed in FILE, one per line (command-line paths are then ignored).
    #[arg(short = 'f', long = "file-list", value_name = "FILE")]
    file_list: Option<PathBuf>,

    #[command(flatten)]
    db: super::DbArgs,

    /// Scan subdirectories recursively.
    #[arg(short = 'r', long, value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    recursive: bool,

    /// Only print infected files.
    #[arg(short = 'i', long)]
    infected: bool,

    /// Skip printing OK files.
    #[arg(short = 'o', long = "suppress-ok-results")]
    suppress_ok_results: bool,

    /// Don't print the summary at the end of the scan.
    #[arg(long)]
    no_summary: bool,

    /// Continue scanning within a file after a match: report every matching signature.
    #[arg(short = 'z', long, value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    allmatch: bool,

    /// Don't scan files whose real path matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = filter)]
    exclude: Vec<PathFilter>,

    /// Don't scan directories whose path matches REGEX (repeatable).
    #[arg(long = "exclude-dir", value_name = "REGEX", value_parser = filter)]
    exclude_dir: Vec<PathFilter>,

    /// Only scan files whose real path matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = filter)]
    include: Vec<PathFilter>,

    /// Only walk directories whose path matches REGEX (repeatable).
    #[arg(long = "include-dir", value_name = "REGEX", value_parser = filter)]
    include_dir: Vec<PathFilter>,

    /// Files larger than this are skipped and assumed clean (0 = no limit).
    #[arg(long = "max-filesize", value_name = "SIZE", value_parser = parse_size, default_value = "100M")]
    max_filesize: u64,

    /// At most this much data is scanned per file (0 = no limit).
    #[arg(long = "max-scansize", value_name = "SIZE", value_parser = parse_size, default_value = "400M")]
    max_scansize: u64,

    /// At most this many files inside one container (0 = no limit).
    #[arg(long = "max-files", value_name = "N", default_value_t = 10_000)]
    max_files: u64,

    /// Container nesting depth (1 to 100).
    #[arg(long = "max-recursion", value_name = "N", default_value_t = 17, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_recursion: u32,

    /// Time allowed per file, in milliseconds (0 = no limit).
    #[arg(long = "max-scantime", value_name = "MS", default_value_t = 120_000)]
    max_scantime: u64,

    /// Directory depth, the given directory being 1.
    #[arg(long = "max-dir-recursion", value_name = "N", default_value_t = 15)]
    max_dir_recursion: u32,

    /// Report files that hit a limit as Heuristics.Limits.Exceeded.*.
    #[arg(long = "alert-exceeds-max", value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    alert_exceeds_max: bool,

    /// Report encrypted archive members as Heuristics.Encrypted.* (zip, 7z).
    #[arg(long = "alert-encrypted", value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    alert_encrypted: bool,

    /// Report encrypted archive members only (Heuristics.Encrypted.Zip, .RAR, .7Zip).
    #[arg(long = "alert-encrypted-archive", value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    alert_encrypted_archive: bool,

    /// Report encrypted documents only: PDFs the empty password does not
    /// open (Heuristics.Encrypted.PDF).
    #[arg(long = "alert-encrypted-doc", value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "no")]
    alert_encrypted_doc: bool,

    /// Follow directory symlinks: 0 never, 1 only given on the command line, 2 always.
    #[arg(long = "follow-dir-symlinks", value_name = "0/1/2", default_value = "1", value_parser = follow)]
    follow_dir_symlinks: FollowSymlinks,

    /// Follow file symlinks: 0 never, 1 only given on the command line, 2 always.
    #[arg(long = "follow-file-symlinks", value_name = "0/1/2", default_value = "1", value_parser = follow)]
    follow_file_symlinks: FollowSymlinks,

    /// Scan files and directories on other file systems.
    #[arg(long = "cross-fs", value_name = "yes/no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = yes_no, default_value = "yes")]
    cross_fs: bool,

    /// Append the report to FILE, as clamscan's --log.
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    log: Option<PathBuf>,

    /// Scanning threads (default: all cores).
    #[arg(short = 'j', long = "threads", value_name = "N")]
    threads: Option<usize>,

    /// Print nothing but the errors of missing files (the exit code still tells), as clamscan.
    #[arg(long)]
    quiet: bool,

    /// Write warnings to standard output instead of standard error, as clamscan.
    #[arg(long = "stdout")]
    stdout: bool,

    /// Sound a bell (BEL on standard error) for each infected file.
    #[arg(long)]
    bell: bool,

    /// Print one JSON object per file and a summary object (docs/json-output.md).
    #[arg(long)]
    json: bool,

    /// Never show the progress bar (shown on standard error only when it is a terminal).
    #[arg(long = "no-progress")]
    no_progress: bool,

    /// Have aetherd scan: each file is opened here, with this user's rights,
    /// and its open descriptor passed to the daemon (as clamdscan --fdpass).
    /// Same walk, output and exit codes as a local scan; the daemon's
    /// database and its limits (where lower) apply. No fallback: an
    /// unreachable daemon is an error (exit 2).
    #[arg(long, conflicts_with_all = ["databases", "db_cache", "no_db_cache", "yara_rules", "yara_defines"])]
    daemon: bool,

    /// aetherd's IPC socket, for --daemon.
    #[arg(long = "daemon-socket", value_name = "PATH", default_value = super::daemon::DEFAULT_SOCKET, requires = "daemon")]
    daemon_socket: PathBuf,

    /// With --daemon: give up (exit 2) when the daemon answers nothing for
    /// this long while files are outstanding. Default: --max-scantime
    /// (else 120 s) plus 60 s.
    #[arg(long = "daemon-timeout", value_name = "SECONDS", requires = "daemon", value_parser = clap::value_parser!(u64).range(1..))]
    daemon_timeout: Option<u64>,
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "y" | "true" | "1" => Ok(true),
        "no" | "n" | "false" | "0" => Ok(false),
        _ => Err(format!("expected yes or no, got {s:?}")),
    }
}

fn filter(s: &str) -> Result<PathFilter, String> {
    PathFilter::new(s).map_err(|e| e.to_string())
}

fn follow(s: &str) -> Result<FollowSymlinks, String> {
    s.parse::<u8>()
        .ok()
        .and_then(FollowSymlinks::from_level)
        .ok_or_else(|| format!("expected 0, 1 or 2, got {s:?}"))
}

/// 0 means "no limit" in every clamscan limit option.
fn unlimited_if_zero(v: u64) -> u64 {
    if v == 0 { u64::MAX } else { v }
}

impl ScanArgs {
    fn scan_options(&self) -> ScanOptions {
        let threads = self.threads.filter(|&n| n > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        ScanOptions {
            recursive: self.recursive,
            follow_dir_symlinks: self.follow_dir_symlinks,
            follow_file_symlinks: self.follow_file_symlinks,
            cross_fs: self.cross_fs,
            max_dir_recursion: self.max_dir_recursion,
            exclude: self.exclude.clone(),
            exclude_dir: self.exclude_dir.clone(),
            include: self.include.clone(),
            include_dir: self.include_dir.clone(),
            limits: Limits {
                all_match: self.allmatch,
                max_filesize: self.max_filesize,
                max_scansize: unlimited_if_zero(self.max_scansize),
                max_files: unlimited_if_zero(self.max_files),
                max_recursion: self.max_recursion,
                max_scantime: (self.max_scantime > 0)
                    .then(|| Duration::from_millis(self.max_scantime)),
            },
            alert_exceeds_max: self.alert_exceeds_max,
            alert_encrypted: self.alert_encrypted || self.alert_encrypted_archive,
            alert_encrypted_doc: self.alert_encrypted || self.alert_encrypted_doc,
            ordered: true,
            threads,
        }
    }

    fn targets(&self) -> anyhow::Result<Vec<Target>> {
        if let Some(list) = &self.file_list {
            if !self.paths.is_empty() {
                eprintln!(
                    "WARNING: Only scanning files from --file-list (files passed at cmdline are ignored)"
                );
            }
            let data = std::fs::read(list)
                .with_context(|| format!("--file-list: Can't open file {}", list.display()))?;
            return Ok(file_list_targets(&data));
        }
        if self.paths.is_empty() {
            // clamscan scans the current directory, by its absolute path.
            let cwd = std::env::current_dir().context("can't get the current directory")?;
            return Ok(vec![Target::Path(cwd)]);
        }
        Ok(self
            .paths
            .iter()
            .map(|p| Target::from_arg(p.clone()))
            .collect())
    }
}

/// `--bell`: a BEL on standard error after each infected file, as clamscan.
struct Bell;

impl aether_report::Printer for Bell {
    fn entry(&mut self, entry: &aether_scan::Entry) -> io::Result<()> {
        if entry.verdict() == aether_scan::Verdict::Infected {
            let mut err = io::stderr();
            err.write_all(b"\x07")?;
            err.flush()?;
        }
        Ok(())
    }

    fn summary(&mut self, _: &Summary<'_>) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One target per line of a `--file-list` file; line ends (`\n`, `\r\n`)
/// are not part of the name, and empty lines are skipped.
fn file_list_targets(data: &[u8]) -> Vec<Target> {
    use std::os::unix::ffi::OsStrExt;
    data.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| Target::from_arg(std::ffi::OsStr::from_bytes(line)))
        .collect()
}

/// Runs `aether scan`; returns the exit code.
pub fn exec(args: ScanArgs) -> anyhow::Result<u8> {
    let targets = args.targets()?;
    let opts = args.scan_options();
    let text_opts = TextOptions {
        infected_only: args.infected,
        suppress_ok: args.suppress_ok_results,
    };
    let stdout_tty = io::stdout().is_terminal();

    let mut report = Report::new();
    let out: Box<dyn Write + Send> = if stdout_tty {
        Box::new(io::stdout())
    } else {
        Box::new(BufWriter::with_capacity(64 * 1024, io::stdout()))
    };
    if args.json {
        report.push(Box::new(JsonPrinter::new(out, text_opts, stdout_tty)));
    } else if args.quiet {
        // clamscan --quiet keeps only perror() lines, on standard error.
        let printer = TextPrinter::single(
            Box::new(io::sink()),
            Box::new(io::stderr()),
            text_opts,
            false,
        );
        report.push(Box::new(printer));
    } else if args.stdout {
        let printer = TextPrinter::single(out, Box::new(io::stderr()), text_opts, stdout_tty);
        report.push(Box::new(printer));
    } else {
        let printer = TextPrinter::new(out, Box::new(io::stderr()), text_opts, stdout_tty);
        report.push(Box::new(printer));
    }
    if args.bell {
        report.push(Box::new(Bell));
    }
    if let Some(path) = &args.log {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("can't open log file {}", path.display()))?;
        let printer = TextPrinter::log(Box::new(BufWriter::new(file)), text_opts)
            .with_context(|| format!("can't write log file {}", path.display()))?;
        report.push(Box::new(printer));
    }

    // As clamscan, the time includes loading the database.
    let start = SystemTime::now();
    let clock = Instant::now();
    if args.daemon {
        return exec_via_daemon(&args, &targets, &opts, report, start, clock);
    }
    let engine = match args.db.load() {
        Ok(loaded) => {
            if !args.quiet {
                super::db::warn_unsupported(&loaded.report);
            }
            loaded.engine
        }
        Err(err) => {
            // clamscan prints its loader's error, then a one-line reason, then
            // (unless --no-summary) an all-zero summary, and exits 2.
            eprintln!("aether Error: {err}");
            eprintln!("ERROR: {}", super::db::load_error_reason(&err));
            let zero = Stats::default();
            let summary = (!args.no_summary).then(|| Summary {
                stats: &zero,
                known_viruses: 0,
                engine_version: env!("CARGO_PKG_VERSION"),
                start,
                end: SystemTime::now(),
                elapsed: clock.elapsed(),
                exit_code: 2,
            });
            // Exit 2 whatever happens to the summary (a closed pipe included).
            let _ = report.finish(summary.as_ref());
            return Ok(2);
        }
    };

    let show_progress = !args.no_progress && io::stderr().is_terminal();
    let result = with_progress(&mut report, show_progress, &targets, &opts, |report| {
        aether_scan::scan(&engine, &targets, &opts, report)
    });
    let known_viruses = engine.signature_count();
    conclude(&mut report, result, known_viruses, &args, start, clock)
}

/// Runs `scan` with a progress bar on standard error when `show`: a second
/// thread counts what there is to scan, for the bar's totals.
fn with_progress<R>(
    report: &mut Report,
    show: bool,
    targets: &[Target],
    opts: &ScanOptions,
    scan: impl FnOnce(&mut Report) -> R,
) -> R {
    let stop_counting = AtomicBool::new(false);
    std::thread::scope(|s| {
        if show {
            let progress = Progress::stderr();
            let handle = progress.handle();
            report.set_progress(progress, io::stdout().is_terminal());
            let stop = &stop_counting;
            s.spawn(move || {
                aether_scan::estimate(targets, opts, stop, &mut |files, bytes, done| {
                    handle.set_totals(files, bytes, done)
                })
            });
        }
        let result = scan(report);
        stop_counting.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    })
}

/// Ends a scan: the summary (unless `--no-summary`) and clamscan's exit
/// code. A closed pipe ends quietly, with the scan's code.
fn conclude(
    report: &mut Report,
    result: Result<Stats, ScanAborted>,
    known_viruses: u64,
    args: &ScanArgs,
    start: SystemTime,
    clock: Instant,
) -> anyhow::Result<u8> {
    let (stats, write_error) = match result {
        Ok(stats) => (stats, None),
        Err(aborted) => (aborted.stats, Some(aborted.source)),
    };
    let exit_code = stats.exit_code();
    if let Some(e) = write_error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            let _ = report.finish(None);
            return Ok(exit_code as u8);
        }
        return Err(e).context("writing the report");
    }
    let summary = (!args.no_summary).then(|| Summary {
        stats: &stats,
        known_viruses,
        engine_version: env!("CARGO_PKG_VERSION"),
        start,
        end: SystemTime::now(),
        elapsed: clock.elapsed(),
        exit_code,
    });
    match report.finish(summary.as_ref()) {
        Ok(()) => Ok(exit_code as u8),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit_code as u8),
        Err(e) => Err(e).context("writing the report"),
    }
}

/// `aether scan --daemon`: the same report, from aetherd's answers.
fn exec_via_daemon(
    args: &ScanArgs,
    targets: &[Target],
    opts: &ScanOptions,
    mut report: Report,
    start: SystemTime,
    clock: Instant,
) -> anyhow::Result<u8> {
    let socket = &args.daemon_socket;
    let timeout = args
        .daemon_timeout
        .map_or_else(|| via_daemon::answer_timeout(opts), Duration::from_secs);
    // Also the reachability check: nothing is walked if the daemon is not there.
    let known_viruses = super::daemon::daemon_signatures(socket, timeout)
        .with_context(|| format!("cannot scan through aetherd at {}", socket.display()))?;
    let show_progress = !args.no_progress && io::stderr().is_terminal();
    let result = with_progress(&mut report, show_progress, targets, opts, |report| {
        via_daemon::scan(socket, timeout, targets, opts, report)
    });
    match result {
        Ok(result) => conclude(&mut report, result, known_viruses, args, start, clock),
        Err(e) => {
            // What was printed stays; the summary of a cut scan would mislead.
            let _ = report.finish(None);
            Err(e)
        }
    }
}
