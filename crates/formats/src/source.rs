//! Positioned reading of an input that may be a file or bytes in memory.

use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// An input read at offsets: a file (`pread`, never mapped, so a file
/// truncated under us is an error rather than SIGBUS) or a byte slice.
pub trait ReadAt {
    /// The input's size in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; 0 at or past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("input ends before offset {offset}"),
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl ReadAt for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.as_slice().read_at(buf, offset)
    }
}

impl ReadAt for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

/// A [`Read`] over the range `start..end` of a [`ReadAt`].
pub struct SourceReader<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
    end: u64,
}

impl<'a> SourceReader<'a> {
    /// Reads `src[start..end]` (clamped to the input's size).
    pub fn new(src: &'a dyn ReadAt, start: u64, end: u64) -> SourceReader<'a> {
        let end = end.min(src.size());
        SourceReader {
            src,
            pos: start.min(end),
            end,
        }
    }

    /// The offset of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.src.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_clamp_at_the_end() {
        let data = b"hello world".to_vec();
        let mut r = SourceReader::new(&data, 6, 100);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "world");
        let mut buf = [0u8; 4];
        assert!(data.read_exact_at(&mut buf, 9).is_err());
        assert_eq!(data.as_slice().read_at(&mut buf, 1 << 40).unwrap(), 0);
    }
}
