//! JSON Lines output (`--json`); the schema is in `docs/json-output.md`.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use aether_scan::{Entry, EntryError, Outcome, Target};
use serde_json::{Map, Value, json};

use crate::path::{display_path, strerror};
use crate::summary::rfc3339_utc;
use crate::text::TextOptions;
use crate::{Printer, Summary};

/// One JSON object per line per entry, then one summary object.
pub struct JsonPrinter {
    out: Box<dyn Write + Send>,
    opts: TextOptions,
    flush_each: bool,
}

impl JsonPrinter {
    /// `-i` and `-o` filter objects as they filter clamscan's lines.
    pub fn new(out: Box<dyn Write + Send>, opts: TextOptions, flush_each: bool) -> JsonPrinter {
        JsonPrinter {
            out,
            opts,
            flush_each,
        }
    }

    fn write(&mut self, value: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }
}

/// The JSON object for one entry.
pub(crate) fn entry_json(entry: &Entry) -> Value {
    let mut obj = Map::new();
    obj.insert("type".into(), json!("file"));
    match &entry.target {
        Target::Path(p) => {
            obj.insert("path".into(), json!(display_path(p)));
            let bytes = p.as_os_str().as_bytes();
            if std::str::from_utf8(bytes).is_err() {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                obj.insert("path_hex".into(), json!(hex));
            }
        }
        Target::Stdin => {
            obj.insert("path".into(), json!("-"));
        }
    }
    obj.insert("verdict".into(), json!(entry.verdict().as_str()));
    let (mut signatures, mut chains, mut size, mut scanned, mut file_type, mut limit) = (
        Vec::new(),
        Vec::new(),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    );
    let (mut reason, mut error) = (Value::Null, Value::Null);
    match &entry.outcome {
        Outcome::Scanned(s) => {
            signatures = s.signatures.clone();
            chains = s.chains.clone();
            size = json!(s.size);
            scanned = json!(s.bytes_scanned);
            file_type = s.file_type.map_or(Value::Null, |t| json!(t.clamav_name()));
            limit = s.limit.map_or(Value::Null, |l| json!(format!("{l:?}")));
        }
        Outcome::Empty => {
            size = json!(0);
            reason = json!("empty");
        }
        Outcome::Excluded => reason = json!("excluded"),
        Outcome::ExcludedProc => reason = json!("proc"),
        Outcome::SymbolicLink => reason = json!("symlink"),
        Outcome::Special => reason = json!("special"),
        Outcome::Error(e) => {
            error = json!(match e.io_error() {
                Some(io) if !matches!(e, EntryError::Scan(_)) =>
                    format!("{}: {}", error_kind(e), strerror(io)),
                _ => e.to_string(),
            });
        }
    }
    let top = obj
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string();
    let matches: Vec<Value> = signatures
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let chain = chains.get(i).cloned().unwrap_or_default();
            let mut location = top.clone();
            for member in &chain {
                location.push('!');
                location.push_str(member);
            }
            json!({"signature": name, "chain": chain, "location": location})
        })
        .collect();
    obj.insert("signatures".into(), json!(signatures));
    obj.insert("matches".into(), json!(matches));
    obj.insert("size".into(), size);
    obj.insert("bytes_scanned".into(), scanned);
    obj.insert("file_type".into(), file_type);
    obj.insert("limit".into(), limit);
    obj.insert("reason".into(), reason);
    obj.insert("error".into(), error);
    Value::Object(obj)
}

fn error_kind(e: &EntryError) -> &'static str {
    match e {
        EntryError::Inaccessible(_) => "can't access file",
        EntryError::Stat(_) => "can't stat file",
        EntryError::Open(_) => "can't open file",
        EntryError::OpenDir(_) => "can't open directory",
        EntryError::ReadDir(_) => "can't read directory",
        _ => "error",
    }
}

impl Printer for JsonPrinter {
    fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        let verdict = entry.verdict();
        if self.opts.infected_only && verdict != aether_scan::Verdict::Infected {
            return Ok(());
        }
        if self.opts.suppress_ok && verdict == aether_scan::Verdict::Clean {
            return Ok(());
        }
        self.write(&entry_json(entry))
    }

    fn summary(&mut self, summary: &Summary<'_>) -> io::Result<()> {
        let s = summary.stats;
        let value = json!({
            "type": "summary",
            "known_viruses": summary.known_viruses,
            "engine_version": summary.engine_version,
            "scanned_directories": s.directories,
            "scanned_files": s.files,
            "infected_files": s.infected,
            "errors": s.errors,
            "failed_arguments": s.failed_arguments,
            "skipped": s.skipped,
            "bytes_scanned": s.bytes_scanned,
            "bytes_read": s.bytes_read,
            "time_seconds": summary.elapsed.as_secs_f64(),
            "start_time": rfc3339_utc(summary.start),
            "end_time": rfc3339_utc(summary.end),
            "exit_code": summary.exit_code,
        });
        self.write(&value)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_scan::Scanned;
    use std::ffi::OsStr;
    use std::path::PathBuf;

    #[test]
    fn infected_entry() {
        let e = Entry {
            target: Target::Path(PathBuf::from("d/e.com")),
            outcome: Outcome::Scanned(Scanned {
                size: 68,
                bytes_scanned: 68,
                file_type: Some(aether_engine::FileType::Text),
                signatures: vec!["Eicar-Signature".into()],
                chains: vec![Vec::new()],
                limit: None,
            }),
        };
        let v = entry_json(&e);
        assert_eq!(v["type"], "file");
        assert_eq!(v["path"], "d/e.com");
        assert_eq!(v["verdict"], "infected");
        assert_eq!(v["signatures"], json!(["Eicar-Signature"]));
        assert_eq!(v["size"], 68);
        assert_eq!(v["file_type"], "CL_TYPE_TEXT_ASCII");
        assert_eq!(v["error"], Value::Null);
        assert!(v.get("path_hex").is_none());
        assert_eq!(
            v["matches"],
            json!([{"signature": "Eicar-Signature", "chain": [], "location": "d/e.com"}])
        );
    }

    #[test]
    fn a_match_inside_an_archive_names_its_member_chain() {
        let e = Entry {
            target: Target::Path(PathBuf::from("d/outer.zip")),
            outcome: Outcome::Scanned(Scanned {
                size: 500,
                bytes_scanned: 900,
                file_type: Some(aether_engine::FileType::Zip),
                signatures: vec!["Eicar-Signature".into(), "Other".into()],
                chains: vec![
                    vec!["inner.tar.gz".into(), "dir/evil.exe".into()],
                    vec!["a.txt".into()],
                ],
                limit: None,
            }),
        };
        let v = entry_json(&e);
        assert_eq!(v["signatures"], json!(["Eicar-Signature", "Other"]));
        assert_eq!(
            v["matches"][0]["chain"],
            json!(["inner.tar.gz", "dir/evil.exe"])
        );
        assert_eq!(
            v["matches"][0]["location"],
            "d/outer.zip!inner.tar.gz!dir/evil.exe"
        );
        assert_eq!(v["matches"][1]["location"], "d/outer.zip!a.txt");
    }

    #[test]
    fn non_utf8_path_and_error() {
        let p = PathBuf::from(OsStr::from_bytes(b"d/\xff"));
        let e = Entry {
            target: Target::Path(p),
            outcome: Outcome::Error(EntryError::Open(io::Error::from_raw_os_error(libc::ENOENT))),
        };
        let v = entry_json(&e);
        assert_eq!(v["path"], "d/\\xff");
        assert_eq!(v["path_hex"], "642fff");
        assert_eq!(v["verdict"], "error");
        assert_eq!(v["error"], "can't open file: No such file or directory");
        assert_eq!(v["signatures"], json!([]));
    }
}
