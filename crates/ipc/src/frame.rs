//! Framing: each [`Frame`] travels as an 8-byte header and its protobuf encoding.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "AE" (0x41 0x45)
//! 2       1     protocol version (1)
//! 3       1     flags, 0 (a frame with any flag set is refused: reserved)
//! 4       4     payload length, big-endian u32, at most the decoder's limit
//! 8       n     payload: one Frame message (proto/aether.proto)
//! ```

use prost::Message;

use crate::msg::{Body, Frame, Record};

/// The two magic bytes that open every frame.
pub const MAGIC: [u8; 2] = *b"AE";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 8;
/// The default payload size limit: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first two bytes are not `AE`.
    #[error("not an aether frame: magic {0:02x?}")]
    BadMagic([u8; 2]),
    /// A version this decoder does not speak.
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    UnsupportedVersion(u8),
    /// Reserved flag bits were set.
    #[error("reserved flags {0:#04x} set")]
    ReservedFlags(u8),
    /// The payload is longer than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid Frame message.
    #[error("undecodable payload: {0}")]
    Decode(String),
    /// The stream ended inside a frame.
    #[error("connection closed inside a frame ({0} bytes of it received)")]
    Truncated(usize),
}

/// Encodes `frame` with its header.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + frame.encoded_len());
    encode_into(frame, &mut out);
    out
}

/// Appends `frame`, with its header, to `out`.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let len = frame.encoded_len();
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    // Frames this side makes are far below 4 GiB; the decoder's limit applies anyway.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    frame.encode(out).unwrap_or_default();
}

/// Checks a header and returns the payload length it announces.
pub fn parse_header(header: &[u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let magic = [header[0], header[1]];
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if header[2] != VERSION {
        return Err(FrameError::UnsupportedVersion(header[2]));
    }
    if header[3] != 0 {
        return Err(FrameError::ReservedFlags(header[3]));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// A varint at the front of `b`, and the bytes after it.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            // The tenth byte may carry only the top bit (as prost checks).
            if i == 9 && byte > 1 {
                return None;
            }
            return Some((v, b.get(i + 1..)?));
        }
    }
    None
}

/// A length-delimited field's bytes at the front of `b`, and the bytes after.
fn delimited(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = varint(b)?;
    let len = usize::try_from(len).ok()?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// A record borrowed from the bytes it was read from: what a subscriber reading
/// flat out may look at without copying the name and payload out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// See [`Record::seq`].
    pub seq: u64,
    /// See [`Record::time_ns`].
    pub time_ns: u64,
    /// See [`Record::kind`].
    pub kind: u32,
    /// See [`Record::name`].
    pub name: &'a str,
    /// See [`Record::data`].
    pub data: &'a [u8],
}

impl RecordRef<'_> {
    /// The owned record.
    pub fn to_record(&self) -> Record {
        let mut r = Record::default();
        self.copy_into(&mut r);
        r
    }

    /// Writes this record into `r`, reusing its buffers.
    pub fn copy_into(&self, r: &mut Record) {
        r.seq = self.seq;
        r.time_ns = self.time_ns;
        r.kind = self.kind;
        r.name.clear();
        r.name.push_str(self.name);
        r.data.clear();
        r.data.extend_from_slice(self.data);
    }
}

/// Reads a Frame payload holding a Record without prost; `None` unless the
/// payload is exactly one `record` field whose fields are all known and
/// well-formed, the shape [`encode`] writes. The caller then decodes with
/// prost, which handles every other valid encoding, and agrees with this on
/// these (tested against prost on random payloads).
pub fn record_ref(payload: &[u8]) -> Option<RecordRef<'_>> {
    // Field 4 (record), wire type 2.
    let rest = payload.strip_prefix(&[0x22])?;
    let (mut body, after) = delimited(rest)?;
    if !after.is_empty() {
        return None;
    }
    let mut r = RecordRef {
        seq: 0,
        time_ns: 0,
        kind: 0,
        name: "",
        data: &[],
    };
    while !body.is_empty() {
        let (tag, rest) = varint(body)?;
        body = match tag {
            // seq, time_ns, kind: varints (a uint32 keeps the low 32 bits, as prost).
            0x08 | 0x10 | 0x18 => {
                let (v, rest) = varint(rest)?;
                match tag {
                    0x08 => r.seq = v,
                    0x10 => r.time_ns = v,
                    _ => r.kind = v as u32,
                }
                rest
            }
            // name (UTF-8) and data: a later occurrence replaces an earlier one.
            0x22 | 0x2a => {
                let (bytes, rest) = delimited(rest)?;
                if tag == 0x22 {
                    r.name = std::str::from_utf8(bytes).ok()?;
                } else {
                    r.data = bytes;
                }
                rest
            }
            _ => return None,
        };
    }
    Some(r)
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 7 bits a byte, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends the frame of `Frame{record}`, header included, to `out`: the bytes
/// prost writes for it (tested against it), without building a `Frame`. The
/// publisher frames every record once, at the sensor's rate.
pub fn encode_record_into(r: &Record, out: &mut Vec<u8>) {
    let scalar = |v: u64| if v == 0 { 0 } else { 1 + varint_len(v) };
    let bytes = |n: usize| {
        if n == 0 {
            0
        } else {
            1 + varint_len(n as u64) + n
        }
    };
    let body = scalar(r.seq)
        + scalar(r.time_ns)
        + scalar(u64::from(r.kind))
        + bytes(r.name.len())
        + bytes(r.data.len());
    let payload = 1 + varint_len(body as u64) + body;
    out.reserve(HEADER_LEN + payload);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&(payload as u32).to_be_bytes());
    out.push(0x22);
    put_varint(body as u64, out);
    for (tag, v) in [(0x08, r.seq), (0x10, r.time_ns), (0x18, u64::from(r.kind))] {
        if v != 0 {
            out.push(tag);
            put_varint(v, out);
        }
    }
    for (tag, b) in [(0x22, r.name.as_bytes()), (0x2a, r.data.as_slice())] {
        if !b.is_empty() {
            out.push(tag);
            put_varint(b.len() as u64, out);
            out.extend_from_slice(b);
        }
    }
}

/// Decodes one payload into `frame`, reusing its allocations (see
/// [`Decoder::next_frame_into`]).
fn decode_payload_into(payload: &[u8], frame: &mut Frame) -> Result<(), FrameError> {
    // Records, the frames a subscriber gets by the hundred thousand, are read
    // here without prost when they are in the plain shape this crate writes
    // (prost copies each byte field twice, through an allocation); anything
    // else, including anything malformed, goes through prost.
    if let Some(Body::Record(r)) = &mut frame.body
        && let Some(view) = record_ref(payload)
    {
        view.copy_into(r);
        return Ok(());
    }
    // Anything else starts from nothing: a payload may leave the body out (a
    // newer peer's message), and no field of the last frame may survive.
    frame.body = None;
    if let Err(e) = frame.merge(payload) {
        frame.body = None;
        return Err(FrameError::Decode(e.to_string()));
    }
    Ok(())
}

/// Decodes `bytes`, one whole frame with its header and nothing after it, into
/// `frame` (reusing its allocations), refusing payloads over `max` bytes.
pub fn decode_frame_into(bytes: &[u8], frame: &mut Frame, max: usize) -> Result<(), FrameError> {
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated(bytes.len()));
    };
    let len = parse_header(header, max)?;
    match bytes.get(HEADER_LEN..) {
        Some(payload) if payload.len() == len => decode_payload_into(payload, frame),
        _ => Err(FrameError::Decode(format!(
            "a frame of {} bytes announcing {len}",
            bytes.len()
        ))),
    }
}

/// An incremental decoder: feed it bytes as they arrive ([`Decoder::buffer`]), take
/// frames out ([`Decoder::next_frame`]). It holds at most one frame's bytes plus what
/// one read returned, and checks the header before waiting for the payload, so an
/// oversized or foreign stream is refused after 8 bytes.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the unread bytes start in `buf`: frames are consumed by moving this, and
    /// the buffer is compacted only when it is at least half consumed, so taking many
    /// small frames out of one large read stays linear.
    start: usize,
    max: usize,
}

impl Decoder {
    /// A decoder refusing payloads over `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer().extend_from_slice(bytes);
    }

    /// The internal buffer, for reading into directly (`read_buf`): append only. It
    /// has room for at least 4 KiB more (doubling as needed), so that one read takes
    /// whatever a burst of frames brought.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(self.buf.len().max(4096));
        }
        &mut self.buf
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that
    /// makes the stream unusable (the caller closes the connection).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(len) = self.complete()? else {
            return Ok(None);
        };
        let payload = self
            .buf
            .get(self.start + HEADER_LEN..self.start + HEADER_LEN + len)
            .unwrap_or(&[]);
        let frame = Frame::decode(payload).map_err(|e| FrameError::Decode(e.to_string()))?;
        self.consume(len);
        Ok(Some(frame))
    }

    /// Like [`Decoder::next_frame`], but decodes into `frame`, reusing its
    /// allocations: when `frame` holds a [`Record`](crate::msg::Record), the next
    /// record's name and payload are written into the same buffers. A subscriber
    /// taking hundreds of thousands of records a second spends more on allocating
    /// and freeing them than on anything else. `Ok(false)`: more bytes are needed
    /// (`frame` is then unchanged).
    pub fn next_frame_into(&mut self, frame: &mut Frame) -> Result<bool, FrameError> {
        let Some(len) = self.complete()? else {
            return Ok(false);
        };
        let payload = self
            .buf
            .get(self.start + HEADER_LEN..self.start + HEADER_LEN + len)
            .unwrap_or(&[]);
        decode_payload_into(payload, frame)?;
        self.consume(len);
        Ok(true)
    }

    /// The payload length of the complete frame at the front, `None` if more bytes
    /// are needed.
    fn complete(&self) -> Result<Option<usize>, FrameError> {
        let unread = self.buf.get(self.start..).unwrap_or(&[]);
        let Some(header) = unread.first_chunk::<HEADER_LEN>() else {
            // Refuse foreign bytes as soon as they show, not after 8.
            if let Some(&b) = unread.first()
                && b != MAGIC[0]
            {
                return Err(FrameError::BadMagic([
                    b,
                    unread.get(1).copied().unwrap_or(0),
                ]));
            }
            return Ok(None);
        };
        let len = parse_header(header, self.max)?;
        if unread.len() < HEADER_LEN + len {
            return Ok(None);
        }
        Ok(Some(len))
    }

    /// Drops the frame of `len` payload bytes at the front.
    fn consume(&mut self, len: usize) {
        // Consumed by moving `start`; the bytes are dropped in bulk (here when all
        // is read, else by `buffer` once half is), never one frame at a time.
        self.start += HEADER_LEN + len;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Called at end of stream: an error if a frame was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Body, Subscribe};

    fn sub(since: u64) -> Frame {
        Frame::new(Body::Subscribe(Subscribe {
            since,
            shared_memory: false,
        }))
    }

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let mut bytes = encode(&sub(1));
        bytes.extend(encode(&sub(2)));
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(DEFAULT_MAX_FRAME);
            let mut got = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                d.extend(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, [sub(1), sub(2)], "cut at {cut}");
            d.finish().unwrap();
        }
    }

    #[test]
    fn decoding_into_a_reused_frame_gives_each_frame_exactly() {
        use crate::msg::Record;
        let full = Frame::new(Body::Record(Record {
            seq: 7,
            time_ns: 8,
            kind: 3,
            name: "exec".into(),
            data: b"{\"pid\":1}".to_vec(),
        }));
        // Every field at its default: none of the last record's may survive.
        let empty = Frame::new(Body::Record(Record::default()));
        let frames = [
            full.clone(),
            Frame { body: None },
            full.clone(),
            empty.clone(),
            sub(4),
            full.clone(),
            empty,
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            encode_into(f, &mut bytes);
        }
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(DEFAULT_MAX_FRAME);
            let mut f = Frame::default();
            let mut got = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                d.extend(part);
                while d.next_frame_into(&mut f).unwrap() {
                    got.push(f.clone());
                }
            }
            assert_eq!(got, frames, "cut at {cut}");
            d.finish().unwrap();
        }
        // A bad payload is an error, as for next_frame.
        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 0, 0, 0, 0, 2, 0x1a, 0x09]);
        let mut f = full;
        assert!(matches!(
            d.next_frame_into(&mut f),
            Err(FrameError::Decode(_))
        ));
    }

    /// The fast record reader and prost agree on every payload the fast reader
    /// takes: random mutations of real records (bytes flipped, cut, inserted,
    /// fields repeated or reordered).
    #[test]
    fn the_fast_record_reader_agrees_with_prost() {
        use crate::msg::Record;
        let mut rand = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut taken = 0;
        for i in 0..20_000 {
            let rec = Record {
                seq: rand() >> (rand() % 64),
                time_ns: rand() >> (rand() % 64),
                kind: (rand() % 300) as u32,
                name: ["", "exec", "exit", "é"][i % 4].into(),
                data: (0..rand() % 40).map(|_| rand() as u8).collect(),
            };
            let mut payload = Frame::new(Body::Record(rec)).encode_to_vec();
            for _ in 0..rand() % 3 {
                let at = (rand() as usize) % (payload.len() + 1);
                match rand() % 4 {
                    0 => payload.truncate(at),
                    1 => {
                        if let Some(b) = payload.get_mut(at) {
                            *b ^= 1 << (rand() % 8);
                        }
                    }
                    2 => payload.insert(at, rand() as u8),
                    _ => {
                        // Repeat the record's last field inside it.
                        let again = payload[payload.len().saturating_sub(3)..].to_vec();
                        payload.extend(again);
                        if let Some(l) = payload.get_mut(1) {
                            *l = l.wrapping_add(3);
                        }
                    }
                }
            }
            let mut fast = Record {
                seq: 1,
                time_ns: 2,
                kind: 3,
                name: "stale".into(),
                data: b"stale".to_vec(),
            };
            if let Some(view) = record_ref(&payload) {
                view.copy_into(&mut fast);
                taken += 1;
                let slow = Frame::decode(payload.as_slice()).unwrap();
                assert_eq!(
                    slow,
                    Frame::new(Body::Record(fast)),
                    "payload {payload:02x?}"
                );
            }
        }
        // Most payloads are plain records or harmless changes to them.
        assert!(taken > 5_000, "fast path taken {taken} times");
    }

    #[test]
    fn the_fast_record_writer_writes_what_prost_writes() {
        use crate::msg::Record;
        let mut rand = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1du64);
        for i in 0..20_000 {
            let rec = Record {
                seq: if i % 11 == 0 {
                    0
                } else {
                    rand() >> (rand() % 64)
                },
                time_ns: if i % 7 == 0 {
                    0
                } else {
                    rand() >> (rand() % 64)
                },
                kind: if i % 3 == 0 {
                    0
                } else {
                    (rand() >> (rand() % 64)) as u32
                },
                name: ["", "exec", "exit", "é", "process_snapshot"][i % 5].into(),
                data: (0..[0, 1, 127, 128, 300, 20_000][i % 6])
                    .map(|_| rand() as u8)
                    .collect(),
            };
            let mut fast = vec![1, 2, 3];
            encode_record_into(&rec, &mut fast);
            let mut slow = vec![1, 2, 3];
            encode_into(&Frame::new(Body::Record(rec.clone())), &mut slow);
            assert_eq!(fast, slow, "{rec:?}");
        }
    }

    #[test]
    fn garbage_oversized_and_partial_frames_are_refused() {
        let mut d = Decoder::new(DEFAULT_MAX_FRAME);
        d.extend(b"GET / HTTP/1.1\r\n");
        assert!(matches!(d.next_frame(), Err(FrameError::BadMagic(_))));

        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 0, 0, 0, 0, 17]);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));

        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 2, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::UnsupportedVersion(2)));
        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 4, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::ReservedFlags(4)));

        // A payload that is not protobuf (a length-delimited field running past the end).
        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 0, 0, 0, 0, 2, 0x1a, 0x09]);
        assert!(matches!(d.next_frame(), Err(FrameError::Decode(_))));

        // Partial: waits, then reports the cut at end of stream.
        let bytes = encode(&sub(9));
        let mut d = Decoder::new(16);
        d.extend(&bytes[..bytes.len() - 1]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated(bytes.len() - 1)));

        // An empty payload is a frame with no body, tolerated.
        let mut d = Decoder::new(16);
        d.extend(&[b'A', b'E', 1, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Ok(Some(Frame { body: None })));
    }
}
