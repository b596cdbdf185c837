//! The frame decoder on arbitrary bytes, fed in pieces whose sizes come from the
//! input: it must never panic, never hold more than one frame past the limit, and
//! every frame it returns must re-encode to a frame it decodes the same way. Scan
//! requests and answers (`ScanFd`, `ScanResult`) must also yield their enums as a
//! receiver reads them: known values or an error, never a panic. Decoding into a
//! reused frame (`next_frame_into`, with its fast path for records) must give the
//! same frames and errors as `next_frame`.
#![no_main]

use aether_ipc::Decoder;
use aether_ipc::frame::{self, HEADER_LEN};
use aether_ipc::msg::{Body, Frame, Record, ScanErrorCode, ScanVerdict};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut dec = Decoder::new(MAX);
    let mut dec_into = Decoder::new(MAX);
    // Stale values that must not leak into the next frame.
    let mut reused = Frame::new(Body::Record(Record {
        seq: 1,
        time_ns: 2,
        kind: 3,
        name: "stale".into(),
        data: b"stale".to_vec(),
    }));
    for chunk in bytes.chunks(step) {
        dec.extend(chunk);
        dec_into.extend(chunk);
        loop {
            let got = dec.next_frame();
            let got_into = dec_into.next_frame_into(&mut reused);
            match (&got, &got_into) {
                (Ok(Some(f)), Ok(true)) => assert_eq!(f, &reused),
                (Ok(None), Ok(false)) => {}
                (Err(a), Err(b)) => assert_eq!(
                    std::mem::discriminant(a),
                    std::mem::discriminant(b)
                ),
                _ => panic!("next_frame {got:?} but next_frame_into {got_into:?}"),
            }
            match got {
                Ok(Some(f)) => {
                    match &f.body {
                        Some(Body::ScanResult(r)) => {
                            let _ = ScanVerdict::try_from(r.verdict);
                            if let Some(e) = &r.error {
                                let _ = ScanErrorCode::try_from(e.code);
                            }
                            let _ = r.detections.iter().map(|d| d.chain.len()).sum::<usize>();
                        }
                        Some(Body::ScanFd(req)) => {
                            let _ = req.options.clone().unwrap_or_default();
                        }
                        _ => {}
                    }
                    let again = frame::encode(&f);
                    let mut d2 = Decoder::new(usize::MAX);
                    d2.extend(&again);
                    assert_eq!(d2.next_frame().ok().flatten().as_ref(), Some(&f));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(dec.buffered() <= MAX + HEADER_LEN + step);
    }
    let _ = dec.finish();
});
