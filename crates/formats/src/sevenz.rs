//! 7z archives, read with `sevenz-rust2` (pure Rust; LZMA, LZMA2, copy and
//! the branch filters without optional features).
//!
//! The reader's memory limit bounds header buffers and decoder dictionaries.
//! A solid block is one compressed stream: a member the visitor does not read
//! to its end (skipped for its size) abandons the rest of its block instead
//! of decoding it for nothing, which would be unbounded work.

use std::io::{self, Read, Seek, SeekFrom};

use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};

use crate::source::ReadAt;
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

/// Memory the reader may use for headers and for each decoder, in KiB.
const MEMORY_LIMIT_KB: usize = 256 << 10;

/// A seekable reader over a [`ReadAt`].
struct Seeker<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
}

impl Read for Seeker<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Seeker<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.src.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            ));
        };
        self.pos = target;
        Ok(target)
    }
}

fn problem_of(e: Error, member: Option<String>) -> Problem {
    match e {
        Error::PasswordRequired | Error::MaybeBadPassword(_) => Problem::Encrypted {
            member: member.unwrap_or_else(|| "(archive header)".into()),
        },
        Error::UnsupportedCompressionMethod(m) => Problem::Unsupported {
            member: member.unwrap_or_default(),
            detail: format!("7z method {m}"),
        },
        other => Problem::Broken {
            member,
            detail: format!("7z: {other}"),
        },
    }
}

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let seeker = Seeker { src, pos: 0 };
    let mut archive =
        match ArchiveReader::new_with_memory_limit(seeker, Password::empty(), MEMORY_LIMIT_KB) {
            Ok(a) => a,
            Err(e) => {
                visitor.problem(problem_of(e, None));
                return Ok(());
            }
        };
    // The engine scans members on its own threads.
    archive.set_thread_count(1);
    let mut stopped = false;
    let mut current: Option<String> = None;
    let result = archive.for_each_entries_with_decision(|entry, reader| {
        if entry.is_directory() || !entry.has_stream() {
            return Ok(EntryDecision::Continue);
        }
        let name = entry.name().to_string();
        current = Some(name.clone());
        if check_name(visitor, &name) == Flow::Stop {
            stopped = true;
            return Ok(EntryDecision::Stop);
        }
        let mut m = Member::new(name, Body::Read(Box::new(reader)));
        m.declared_size = Some(entry.size());
        if visit(visitor, &mut m) == Flow::Stop {
            stopped = true;
            return Ok(EntryDecision::Stop);
        }
        Ok(if m.finished {
            EntryDecision::Continue
        } else {
            EntryDecision::SkipBlock
        })
    });
    if let Err(e) = result
        && !stopped
    {
        visitor.problem(problem_of(e, current));
    }
    Ok(())
}
