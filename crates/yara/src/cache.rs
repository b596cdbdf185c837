//! Compiled rules kept on disk, so that a large rule set is compiled once.
//!
//! YARA-X takes seconds to compile a rule set of ten thousand rules and a
//! fraction of that to read its serialized form back. The cache file holds
//! that form behind a header:
//!
//! ```text
//! "AETHYARA"  u32 format  [32] fingerprint  [32] SHA-256 of payload  u64 length  payload
//! ```
//!
//! The fingerprint covers what the rules depend on: each rule file's path and
//! contents, the external variables and their values, and the versions of
//! aether-yara and YARA-X. A different fingerprint means "stale": the rules
//! are compiled again and the file is replaced.
//!
//! YARA-X documents [`yara_x::Rules::deserialize`] as unsafe for bytes a third
//! party could have written: a scan may then panic, and serialized rules may
//! carry precompiled machine code, which YARA-X loads (through wasmtime's
//! unchecked `Module::deserialize`) whatever features this build has. aether
//! never writes machine code (YARA-X's `native-code-serialization` is off),
//! so a cache it wrote is WebAssembly that wasmtime validates and compiles
//! again; but a file someone else planted could hold code. So the cache is
//! trusted only as far as the existing database cache is: the directory and
//! the file must belong to this user and be writable by nobody else, the file
//! is opened without following links and checked again once open, and the
//! payload's checksum must match (that one catches damage, not an attacker).
//! A file that fails any of these is reported and replaced, never read.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::External;

const MAGIC: &[u8; 8] = b"AETHYARA";
/// Bumped whenever the layout above changes.
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 32 + 32 + 8;
/// Far more than any real rule set compiles to; a larger file is refused
/// rather than read into memory.
const MAX_PAYLOAD: u64 = 1 << 31;

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    /// Made from other rule files, variables or versions (or missing): not a
    /// problem worth a warning.
    #[error("stale")]
    Stale,
    #[error("{0}")]
    Refused(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the compiled form depends on.
pub(crate) fn fingerprint(
    sources: &[(String, String)],
    externals: &[(String, External)],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"aether-yara compiled rules\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(b"\0");
    h.update(yara_x::VERSION.as_bytes());
    h.update(b"\0");
    for (origin, text) in sources {
        h.update((origin.len() as u64).to_le_bytes());
        h.update(origin.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.update(b"externals\0");
    for (name, value) in externals {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        match value {
            External::Bool(b) => h.update([b'b', *b as u8]),
            External::Integer(i) => {
                h.update(b"i");
                h.update(i.to_le_bytes());
            }
            External::Float(f) => {
                h.update(b"f");
                h.update(f.to_bits().to_le_bytes());
            }
            External::String(s) => {
                h.update(b"s");
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// The cache file for a list of rule files: one per list, replaced when
/// stale.
pub(crate) fn cache_file(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update(b"\0");
    }
    let d = h.finalize();
    let name: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("yara-{name}.yarac"))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether metadata describes something only this user can change.
fn private(m: &std::fs::Metadata) -> bool {
    m.uid() == euid() && m.mode() & 0o022 == 0
}

fn check_private_dir(dir: &Path) -> Result<(), CacheError> {
    let m = std::fs::symlink_metadata(dir)?;
    if !m.is_dir() || !private(&m) {
        return Err(CacheError::Refused(format!(
            "{} is not a private directory of this user",
            dir.display()
        )));
    }
    Ok(())
}

/// Reads the serialized rules in `file` when they were made for `fp`.
pub(crate) fn read(file: &Path, dir: &Path, fp: &[u8; 32]) -> Result<Vec<u8>, CacheError> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheError::Stale),
        Err(e) => return Err(e.into()),
    };
    check_private_dir(dir)?;
    // Checked on the open file, so that what is read is what was checked.
    let m = f.metadata()?;
    if !m.is_file() || !private(&m) {
        return Err(CacheError::Refused(format!(
            "{} is not a private file of this user",
            file.display()
        )));
    }
    let mut header = [0u8; HEADER_LEN];
    let mut f = std::io::BufReader::new(f);
    f.read_exact(&mut header)
        .map_err(|_| CacheError::Corrupt("shorter than its header".into()))?;
    let (magic, rest) = header.split_at(8);
    let (version, rest) = rest.split_at(4);
    let (stored_fp, rest) = rest.split_at(32);
    let (checksum, len) = rest.split_at(32);
    if magic != MAGIC {
        return Err(CacheError::Corrupt("not an aether YARA cache".into()));
    }
    let version = u32::from_le_bytes(version.try_into().map_err(|_| CacheError::Stale)?);
    if version != FORMAT_VERSION || stored_fp != fp {
        return Err(CacheError::Stale);
    }
    let len = u64::from_le_bytes(len.try_into().map_err(|_| CacheError::Stale)?);
    if len > MAX_PAYLOAD || len != m.len().saturating_sub(HEADER_LEN as u64) {
        return Err(CacheError::Corrupt(format!(
            "payload length {len} does not match the file size {}",
            m.len()
        )));
    }
    let mut payload = Vec::with_capacity(len as usize);
    f.read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(CacheError::Corrupt("the file changed while read".into()));
    }
    if Sha256::digest(&payload).as_slice() != checksum {
        return Err(CacheError::Corrupt("checksum mismatch".into()));
    }
    Ok(payload)
}

/// Writes `payload` for `fp` to `file`: aside first, then renamed over it, so
/// a reader sees the old file or the new one, never half of one.
pub(crate) fn write(
    file: &Path,
    dir: &Path,
    fp: &[u8; 32],
    payload: &[u8],
) -> Result<(), CacheError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check_private_dir(dir)?;
    // Unique per process and call: threads of one process may write at once.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = file.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(fp)?;
        out.write_all(&Sha256::digest(payload))?;
        out.write_all(&(payload.len() as u64).to_le_bytes())?;
        out.write_all(payload)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}
