//! Bytes a scan makes (a decompressed archive member, a normalized copy of a
//! page): kept in memory up to a bound and past it in an unnamed temporary
//! file, so that a large one costs the page cache, not the heap of every
//! scanning thread at once. ClamAV writes all of them to files.

use std::fs::File;
use std::io::{self, Seek, Write};

/// A writer that keeps up to `in_memory` bytes in memory and the rest in an
/// unnamed temporary file, and refuses to grow past `cap`.
#[derive(Debug)]
pub(crate) struct Spill {
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
    in_memory: u64,
    cap: u64,
    /// A write was refused because it would pass `cap`.
    pub(crate) over: bool,
}

/// What a [`Spill`] holds once written.
#[derive(Debug)]
pub(crate) enum Spilled {
    Memory(Vec<u8>),
    /// The file, at its start, and its length.
    File(File, u64),
}

impl Spill {
    pub(crate) fn new(in_memory: u64, cap: u64) -> Spill {
        Spill {
            mem: Vec::new(),
            file: None,
            len: 0,
            in_memory,
            cap,
            over: false,
        }
    }

    pub(crate) fn finish(self) -> io::Result<Spilled> {
        match self.file {
            None => Ok(Spilled::Memory(self.mem)),
            Some(mut f) => {
                f.flush()?;
                f.rewind()?;
                Ok(Spilled::File(f, self.len))
            }
        }
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.len.saturating_add(buf.len() as u64) > self.cap {
            self.over = true;
            return Err(io::Error::other("member exceeds the scan limits"));
        }
        if self.file.is_none() && self.len + buf.len() as u64 > self.in_memory {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Spilled {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Spilled::Memory(v) => v.len() as u64,
            Spilled::File(_, n) => *n,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
