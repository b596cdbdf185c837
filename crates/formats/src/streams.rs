//! Single-member compressed streams: gzip, bzip2, xz and zstd.
//!
//! Each holds one member, its decompressed content. Concatenated streams
//! (`cat a.gz b.gz`) decode as one, as `gzip -d` does.

use std::io::{self, BufReader, Write};

use crate::filetype::FileType;
use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, FormatError, Member, Visitor, visit};

pub(crate) fn walk(
    ty: FileType,
    src: &dyn ReadAt,
    visitor: &mut dyn Visitor,
) -> Result<(), FormatError> {
    let input = || BufReader::with_capacity(64 << 10, SourceReader::new(src, 0, src.size()));
    let (name, body) = match ty {
        FileType::Gz => (
            gzip_name(src),
            Body::Read(Box::new(flate2::read::MultiGzDecoder::new(input()))),
        ),
        FileType::Bz => (
            String::new(),
            Body::Read(Box::new(bzip2::read::MultiBzDecoder::new(input()))),
        ),
        FileType::Xz => {
            let mut inp = input();
            (
                String::new(),
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    lzma_rs::xz_decompress(&mut inp, &mut WriteRef(out)).map_err(lzma_error)
                })),
            )
        }
        FileType::Zstd => {
            let mut inp = input();
            (
                String::new(),
                Body::Push(Box::new(move |out: &mut dyn Write| {
                    zstd_frames(&mut inp, out)
                })),
            )
        }
        other => return Err(FormatError::NotAContainer(other)),
    };
    let mut member = Member::new(name, body);
    member.packed_size = Some(src.size());
    member.stream = true;
    visit(visitor, &mut member);
    Ok(())
}

/// lzma-rs wants a sized `Write`; this passes through to a `dyn Write`.
pub(crate) struct WriteRef<'w>(pub &'w mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

pub(crate) fn lzma_error(e: lzma_rs::error::Error) -> io::Error {
    match e {
        lzma_rs::error::Error::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

/// Decodes zstd frames until the input ends.
fn zstd_frames(inp: &mut BufReader<SourceReader<'_>>, out: &mut dyn Write) -> io::Result<()> {
    use io::BufRead;
    loop {
        if inp.fill_buf()?.is_empty() {
            return Ok(());
        }
        let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut *inp)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        io::copy(&mut dec, &mut WriteRef(out))?;
    }
}

/// The original file name stored in a gzip header (FNAME), if any.
fn gzip_name(src: &dyn ReadAt) -> String {
    let mut head = [0u8; 1024];
    let n = src.read_at(&mut head, 0).unwrap_or(0);
    let head = &head[..n];
    let Some(&flags) = head.get(3) else {
        return String::new();
    };
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(x) = head.get(10..12) else {
            return String::new();
        };
        at = 12 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    if flags & 0x08 == 0 {
        return String::new();
    }
    let Some(rest) = head.get(at..) else {
        return String::new();
    };
    let end = memchr::memchr(0, rest).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}
