//! A client's byte stream through the clamd codec, as the daemon drives it:
//! commands cut from arbitrary reads, INSTREAM bodies decoded, replies
//! formatted. Checks that nothing panics, progress is always made, the
//! stream quota holds, and decoding does not depend on how reads split.
#![no_main]

use aether_clamd::{Chunk, Command, InstreamDecoder, Replier, next_command};
use libfuzzer_sys::fuzz_target;

/// Runs the stream delivered in reads of `step` bytes; returns what was
/// decoded, as a transcript.
fn drive(data: &[u8], step: usize, quota: u64) -> Vec<u8> {
    let mut transcript = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut first = true;
    let mut reads = 0;
    let mut stream: Option<InstreamDecoder> = None;
    loop {
        // Decode as much as the buffer allows.
        loop {
            if let Some(dec) = stream.as_mut() {
                match dec.decode(&buf) {
                    Err(_) => {
                        transcript.extend_from_slice(b"<limit>");
                        return transcript;
                    }
                    Ok((chunk, used)) => {
                        assert!(used <= buf.len());
                        let stop = match chunk {
                            Chunk::Data(d) => {
                                assert!(!d.is_empty());
                                transcript.extend_from_slice(d);
                                false
                            }
                            Chunk::End => {
                                transcript.extend_from_slice(b"<end>");
                                stream = None;
                                false
                            }
                            Chunk::NeedMore => true,
                        };
                        assert!(dec_total_ok(stream.as_ref(), quota));
                        buf.drain(..used);
                        if stop {
                            break;
                        }
                    }
                }
            } else {
                // The legacy "one packet" rule depends on read boundaries,
                // so only the prefixed framings are compared across splits.
                match next_command(&buf, first, false) {
                    Ok(None) => break,
                    Err(_) => {
                        transcript.extend_from_slice(b"<toolong>");
                        return transcript;
                    }
                    Ok(Some(f)) => {
                        assert!(f.consumed > 0 && f.consumed <= buf.len());
                        let r = Replier::new(f.delimiter, Some(1));
                        if let Some(p) = f.command.path() {
                            let _ = r.virus(p, "X");
                            let _ = r.errno(p, "File path check failure:", 2);
                        }
                        let _ = r.pong();
                        transcript.extend_from_slice(f.command.name().as_bytes());
                        transcript.extend_from_slice(f.command.path().unwrap_or(b""));
                        transcript.push(b'|');
                        if f.command == Command::Instream {
                            stream = Some(InstreamDecoder::new(quota));
                        }
                        first = false;
                        buf.drain(..f.consumed);
                    }
                }
            }
        }
        if fed == data.len() {
            return transcript;
        }
        let n = step.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        reads += 1;
        let _ = reads;
    }
}

fn dec_total_ok(dec: Option<&InstreamDecoder>, quota: u64) -> bool {
    dec.is_none_or(|d| d.total() <= quota)
}

fuzz_target!(|input: &[u8]| {
    let Some((&knobs, data)) = input.split_first() else {
        return;
    };
    let quota = u64::from(knobs & 0x3f) * 16;
    // Legacy framing at packet end: must not panic either.
    let _ = next_command(data, true, true);
    let whole = drive(data, data.len().max(1), quota);
    let step = usize::from(knobs >> 6) * 3 + 1;
    let split = drive(data, step, quota);
    assert_eq!(whole, split, "decoding depends on how reads split");
});
