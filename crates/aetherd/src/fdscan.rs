//! Scans of descriptors passed on the IPC socket (`aether scan --daemon`).
//!
//! The client opens each file itself and passes the open descriptor; the
//! daemon, running as root, scans exactly that file and never opens a path a
//! client names. So a member of the `aether` group learns nothing about files
//! it could not read. Scans share the clamd protocol's `MaxThreads` slots and
//! are journaled like its scans, with the client's uid and pid.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use aether_engine::ScanError;
use aether_ipc::msg::{
    ScanDetection, ScanError as WireError, ScanErrorCode, ScanFd, ScanRequestOptions, ScanResult,
    ScanVerdict,
};
use aether_ipc::{PeerCred, ScanFuture, ScanHandler};
use aether_journal::Verdict;
use aether_scan::{EntryError, FileScanner, Outcome, ScanOptions};

use crate::config::Config;
use crate::jobs::Journaling;
use crate::server::Shared;

/// Requests one IPC connection may have in flight: enough to keep every
/// scanning slot busy from one client, bounded whatever the configuration.
pub fn max_in_flight(config: &Config) -> usize {
    (config.max_threads as usize * 2).clamp(2, 64)
}

pub struct FdScans {
    pub shared: Arc<Shared>,
}

impl ScanHandler for FdScans {
    fn scan(&self, peer: &PeerCred, request: ScanFd, file: File) -> ScanFuture {
        let shared = Arc::clone(&self.shared);
        let peer = *peer;
        let client = match peer.pid {
            Some(pid) => format!("uid {} pid {pid}", peer.uid),
            None => format!("uid {}", peer.uid),
        };
        Box::pin(async move {
            let asked = request.options.clone().unwrap_or_default();
            if asked.all_match && !shared.config.allow_all_match_scan {
                let why = "all-match scans are turned off (AllowAllMatchScan = false)";
                shared.refused(&peer, aether_ipc::Refused::Scan, why);
                return ScanResult::refused(request.id, ScanErrorCode::NotAllowed, why);
            }
            let opts = options(&shared.config, &asked);
            let journal = shared.recorder.as_ref().map(|r| Journaling {
                recorder: r.clone(),
                client,
            });
            let permit = shared.scan_slot().await;
            let job = {
                let shared = Arc::clone(&shared);
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let target = if request.path.is_empty() {
                        "fd".to_string()
                    } else {
                        request.path
                    };
                    let _task = shared.tasks.start("SCANFD", target.clone());
                    let active = shared.db.current();
                    let mut scanner = FileScanner::new(&active.engine, &opts);
                    let outcome = scanner.scan_open_file(&file);
                    let (result, verdict) = answer(outcome);
                    shared.count_scan(matches!(verdict, Verdict::Infected { .. }));
                    if let Some(j) = journal {
                        j.record(target, verdict);
                    }
                    result
                })
            };
            job.await.unwrap_or_else(|e| {
                ScanResult::refused(
                    request.id,
                    ScanErrorCode::Internal,
                    format!("the scan failed: {e}"),
                )
            })
        })
    }
}

/// The daemon's options, with the client's limits where they are lower and
/// the client's choice of what to be told (all matches, heuristics).
fn options(config: &Config, asked: &ScanRequestOptions) -> ScanOptions {
    let mut opts = config.scan_options(1, asked.all_match);
    let lower = |mine: u64, theirs: u64| {
        if theirs == 0 { mine } else { mine.min(theirs) }
    };
    let l = &mut opts.limits;
    l.max_scansize = lower(l.max_scansize, asked.max_scansize);
    l.max_files = lower(l.max_files, asked.max_files);
    l.max_filesize = lower(l.max_filesize, asked.max_filesize);
    if asked.max_recursion > 0 {
        l.max_recursion = l.max_recursion.min(asked.max_recursion);
    }
    if asked.max_scantime_ms > 0 {
        let theirs = Duration::from_millis(asked.max_scantime_ms);
        l.max_scantime = Some(l.max_scantime.map_or(theirs, |mine| mine.min(theirs)));
    }
    opts.alert_encrypted = asked.alert_encrypted;
    opts.alert_encrypted_doc = asked.alert_encrypted;
    opts.alert_exceeds_max = asked.alert_exceeds_max;
    opts
}

/// The wire answer and the journal's verdict for one outcome.
fn answer(outcome: Outcome) -> (ScanResult, Verdict) {
    let failed = |error: WireError| {
        let verdict = Verdict::Error {
            message: error.message.clone(),
        };
        let r = ScanResult {
            verdict: ScanVerdict::Failed as i32,
            error: Some(error),
            ..ScanResult::default()
        };
        (r, verdict)
    };
    let read_error = |e: &std::io::Error| WireError {
        code: ScanErrorCode::Read as i32,
        errno: e.raw_os_error().unwrap_or(0),
        message: e.to_string(),
        ..WireError::default()
    };
    match outcome {
        Outcome::Scanned(s) => {
            let verdict = match s.signatures.first() {
                Some(sig) => Verdict::Infected {
                    signature: sig.clone(),
                },
                None => Verdict::Clean,
            };
            let mut chains = s.chains.into_iter();
            let detections = s
                .signatures
                .into_iter()
                .map(|signature| ScanDetection {
                    signature,
                    chain: chains.next().unwrap_or_default(),
                })
                .collect::<Vec<_>>();
            let r = ScanResult {
                verdict: if detections.is_empty() {
                    ScanVerdict::Clean
                } else {
                    ScanVerdict::Infected
                } as i32,
                detections,
                size: s.size,
                bytes_scanned: s.bytes_scanned,
                file_type: s
                    .file_type
                    .map(|t| t.clamav_name().to_string())
                    .unwrap_or_default(),
                limit: s.limit.map(|l| format!("{l:?}")).unwrap_or_default(),
                ..ScanResult::default()
            };
            (r, verdict)
        }
        Outcome::Empty => (
            ScanResult {
                verdict: ScanVerdict::Empty as i32,
                ..ScanResult::default()
            },
            Verdict::Clean,
        ),
        Outcome::Error(EntryError::Scan(ScanError::Io(e)) | EntryError::Stat(e)) => {
            failed(read_error(&e))
        }
        Outcome::Error(EntryError::Scan(ScanError::Changed { expected, actual })) => {
            failed(WireError {
                code: ScanErrorCode::Changed as i32,
                message: format!("file changed during scan (size was {expected}, now {actual})"),
                expected_size: expected,
                actual_size: actual,
                ..WireError::default()
            })
        }
        Outcome::Error(e) => failed(WireError {
            code: ScanErrorCode::Internal as i32,
            message: e.to_string(),
            ..WireError::default()
        }),
        // The server passes regular files only; one replaced meanwhile is
        // still refused rather than read.
        Outcome::Special | Outcome::Excluded | Outcome::ExcludedProc | Outcome::SymbolicLink => {
            let r = ScanResult::refused(0, ScanErrorCode::NotRegular, "not a regular file");
            let verdict = Verdict::Error {
                message: "not a regular file".into(),
            };
            (r, verdict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_become_answers() {
        let scanned = aether_scan::Scanned {
            size: 10,
            bytes_scanned: 10,
            file_type: None,
            signatures: vec!["A".into(), "B".into()],
            chains: vec![vec![], vec!["m.zip".into(), "x".into()]],
            limit: Some(aether_engine::LimitExceeded::MaxFiles),
        };
        let (r, v) = answer(Outcome::Scanned(scanned));
        assert_eq!(r.verdict, ScanVerdict::Infected as i32);
        assert_eq!(r.detections[1].chain, ["m.zip", "x"]);
        assert_eq!(r.limit, "MaxFiles");
        assert_eq!(
            v,
            Verdict::Infected {
                signature: "A".into()
            }
        );
        let (r, _) = answer(Outcome::Error(EntryError::Scan(ScanError::Io(
            std::io::Error::from_raw_os_error(libc::EIO),
        ))));
        let e = r.error.unwrap();
        assert_eq!((r.verdict, e.code, e.errno), (4, 1, libc::EIO));
        let (r, _) = answer(Outcome::Error(EntryError::Scan(ScanError::Changed {
            expected: 5,
            actual: 2,
        })));
        let e = r.error.unwrap();
        assert_eq!((e.code, e.expected_size, e.actual_size), (2, 5, 2));
    }

    #[test]
    fn the_lower_limit_wins() {
        let config = Config::parse("", std::path::Path::new("t.toml")).unwrap();
        let asked = ScanRequestOptions {
            max_scansize: 1000,
            max_files: u64::MAX,
            max_recursion: 99,
            max_scantime_ms: 5,
            alert_encrypted: true,
            ..ScanRequestOptions::default()
        };
        let o = options(&config, &asked);
        assert_eq!(o.limits.max_scansize, 1000);
        assert_eq!(o.limits.max_files, config.limits.max_files);
        assert_eq!(o.limits.max_recursion, config.limits.max_recursion);
        assert_eq!(o.limits.max_scantime, Some(Duration::from_millis(5)));
        assert!(o.alert_encrypted && !o.alert_exceeds_max);
    }
}
