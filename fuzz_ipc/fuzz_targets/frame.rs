//! The frame decoder on arbitrary bytes, fed in pieces whose sizes come from the
//! input: it must never panic, never hold more than one frame past the limit, and
//! every frame it returns must re-encode to a frame it decodes the same way. Scan
//! requests and answers (`ScanFd`, `ScanResult`) must also yield their enums as a
//! receiver reads them: known values or an error, never a panic.
#![no_main]

use aether_ipc::Decoder;
use aether_ipc::frame::{self, HEADER_LEN};
use aether_ipc::msg::{Body, ScanErrorCode, ScanVerdict};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut dec = Decoder::new(MAX);
    for chunk in bytes.chunks(step) {
        dec.extend(chunk);
        loop {
            match dec.next_frame() {
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
