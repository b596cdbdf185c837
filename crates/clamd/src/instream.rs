//! INSTREAM framing: `<u32 big-endian length><bytes>` chunks, ended by a
//! chunk of length zero.

/// One step of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Stream data (part or all of a chunk).
    Data(&'a [u8]),
    /// The zero-length chunk: the stream is complete.
    End,
    /// More bytes are needed.
    NeedMore,
}

/// The stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstreamError {
    /// A chunk would take the stream past `StreamMaxLength`. clamd checks
    /// each chunk's announced length against what is left, before reading it.
    #[error("INSTREAM size limit exceeded (chunk of {requested} bytes, {remaining} left)")]
    SizeLimitExceeded {
        /// The announced chunk length.
        requested: u32,
        /// Bytes still allowed.
        remaining: u64,
    },
}

/// Decodes an INSTREAM body incrementally.
#[derive(Debug, Clone)]
pub struct InstreamDecoder {
    remaining_quota: u64,
    in_chunk: u32,
    total: u64,
    done: bool,
}

impl InstreamDecoder {
    /// A decoder allowing at most `max_len` bytes of data (`StreamMaxLength`).
    pub fn new(max_len: u64) -> InstreamDecoder {
        InstreamDecoder {
            remaining_quota: max_len,
            in_chunk: 0,
            total: 0,
            done: false,
        }
    }

    /// Data bytes decoded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether the end chunk was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes from `input`; returns what was found and how many bytes of
    /// `input` it used. Call again with the rest until [`Chunk::End`] or
    /// [`Chunk::NeedMore`].
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(Chunk<'a>, usize), InstreamError> {
        if self.done {
            return Ok((Chunk::End, 0));
        }
        if self.in_chunk > 0 {
            if input.is_empty() {
                return Ok((Chunk::NeedMore, 0));
            }
            let n = input.len().min(self.in_chunk as usize);
            self.in_chunk -= n as u32;
            self.total += n as u64;
            return Ok((Chunk::Data(&input[..n]), n));
        }
        let Some(header) = input.get(..4) else {
            return Ok((Chunk::NeedMore, 0));
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len == 0 {
            self.done = true;
            return Ok((Chunk::End, 4));
        }
        if u64::from(len) > self.remaining_quota {
            return Err(InstreamError::SizeLimitExceeded {
                requested: len,
                remaining: self.remaining_quota,
            });
        }
        self.remaining_quota -= u64::from(len);
        self.in_chunk = len;
        let rest = &input[4..];
        if rest.is_empty() {
            return Ok((Chunk::NeedMore, 4));
        }
        let n = rest.len().min(len as usize);
        self.in_chunk -= n as u32;
        self.total += n as u64;
        Ok((Chunk::Data(&rest[..n]), 4 + n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for c in chunks {
            v.extend_from_slice(&(c.len() as u32).to_be_bytes());
            v.extend_from_slice(c);
        }
        v.extend_from_slice(&[0; 4]);
        v
    }

    /// Feeds `wire` in pieces of `step` bytes, as a socket would deliver it.
    fn run(max: u64, wire: &[u8], step: usize) -> Result<Vec<u8>, InstreamError> {
        let mut d = InstreamDecoder::new(max);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                let (chunk, used) = d.decode(&pending)?;
                let stop = match chunk {
                    Chunk::Data(b) => {
                        out.extend_from_slice(b);
                        false
                    }
                    Chunk::End => true,
                    Chunk::NeedMore => true,
                };
                pending.drain(..used);
                if stop {
                    break;
                }
            }
            if d.is_done() {
                return Ok(out);
            }
        }
        Ok(out)
    }

    #[test]
    fn any_split_gives_the_same_bytes() {
        let wire = frame(&[b"hello ", b"", b"world"]);
        // the empty chunk ends the stream, as in clamd
        for step in 1..wire.len() + 1 {
            assert_eq!(run(100, &wire, step).unwrap(), b"hello ");
        }
        let wire = frame(&[b"hello ", b"world"]);
        for step in 1..wire.len() + 1 {
            assert_eq!(run(100, &wire, step).unwrap(), b"hello world");
        }
    }

    #[test]
    fn quota_is_checked_per_announced_chunk() {
        assert_eq!(
            run(11, &frame(&[b"hello ", b"world"]), 3).unwrap(),
            b"hello world"
        );
        assert_eq!(
            run(10, &frame(&[b"hello ", b"world"]), 64),
            Err(InstreamError::SizeLimitExceeded {
                requested: 5,
                remaining: 4
            })
        );
        // refused on the header alone, before any data arrives
        let mut d = InstreamDecoder::new(1024);
        assert!(d.decode(&(2048u32).to_be_bytes()).is_err());
    }
}
