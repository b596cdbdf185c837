//! Scanning a file window by window finds exactly what scanning it whole finds.
//!
//! Matches are planted across the window boundaries (1 MiB reads, 64 KiB kept
//! from the previous window) and signatures have gaps wider than the kept bytes,
//! so that the re-read path for long verifications runs too.

use std::io::Write;

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{BodySig, ByteMatch, HexPattern, Offset, SignatureSink, TargetType, Token};

const MIB: usize = 1 << 20;

fn exact(bytes: &[u8]) -> Vec<Token> {
    bytes
        .iter()
        .map(|b| Token::Byte(ByteMatch::exact(*b)))
        .collect()
}

fn sig(name: &str, offset: Offset, parts: Vec<Vec<Token>>) -> (String, Offset, Vec<Token>) {
    (
        name.to_string(),
        offset,
        parts.into_iter().flatten().collect(),
    )
}

/// The detections of `sigs` on `data` scanned from a file, window by window,
/// after checking that they equal a scan of the same bytes in memory; sorted.
fn windowed_agrees_with_whole(sigs: &[(String, Offset, Vec<Token>)], data: &[u8]) -> Vec<String> {
    let mut builder = EngineBuilder::new();
    for (name, offset, tokens) in sigs {
        builder
            .body(BodySig {
                name,
                target: TargetType::Any,
                offset: *offset,
                pattern: HexPattern {
                    tokens: tokens.clone(),
                },
            })
            .expect("signature compiles");
    }
    let engine = builder.build().expect("engine builds");
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut scanner = engine.scanner();
    let mut file = tempfile::tempfile().expect("temp file");
    file.write_all(data).expect("write");
    let windowed = scanner.scan_file(&file, &limits).expect("file scan");
    let whole = scanner.scan_bytes(data, &limits).expect("buffer scan");
    let mut a: Vec<String> = windowed.detections.into_iter().map(|d| d.name).collect();
    let mut b: Vec<String> = whole.detections.into_iter().map(|d| d.name).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    a
}

#[test]
fn file_windows_agree_with_whole_buffer() {
    // Pseudo-random filler that never contains the planted markers.
    let mut data: Vec<u8> = (0..3 * MIB + 12345)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] | 0x80)
        .collect();
    let plant = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        data[at..at + bytes.len()].copy_from_slice(bytes)
    };
    // A marker straddling the first window boundary.
    plant(&mut data, MIB - 3, b"STRADDLE");
    // Two parts far apart: further than the kept bytes, before and after a boundary.
    plant(&mut data, MIB - 200_000, b"FARLEFT");
    plant(&mut data, MIB + 10, b"FARRIGHT");
    // A part after the anchor beyond the current window (forward re-read).
    plant(&mut data, 2 * MIB - 20, b"NEAREND");
    plant(&mut data, 2 * MIB + 70_000, b"NEXTWIN");
    // An end-of-file signature.
    let n = data.len();
    plant(&mut data, n - 9, b"TAILMARK");

    let sigs = vec![
        sig("Straddle", Offset::Any, vec![exact(b"STRADDLE")]),
        sig(
            "FarApart",
            Offset::Any,
            vec![
                exact(b"FARLEFT"),
                vec![Token::Gap { min: 0, max: None }],
                exact(b"FARRIGHT"),
            ],
        ),
        sig(
            "FarRange",
            Offset::Any,
            vec![
                exact(b"FARLEFT"),
                vec![Token::Gap {
                    min: 150_000,
                    max: Some(250_000),
                }],
                exact(b"FARRIGHT"),
            ],
        ),
        sig(
            "FarRangeMiss",
            Offset::Any,
            vec![
                exact(b"FARLEFT"),
                vec![Token::Gap {
                    min: 0,
                    max: Some(100_000),
                }],
                exact(b"FARRIGHT"),
            ],
        ),
        sig(
            "ForwardReread",
            Offset::Any,
            vec![
                exact(b"NEAREND"),
                vec![Token::Gap {
                    min: 60_000,
                    max: Some(80_000),
                }],
                exact(b"NEXTWIN"),
            ],
        ),
        sig(
            "Tail",
            Offset::FromEnd { back: 9, shift: 0 },
            vec![exact(b"TAILMARK")],
        ),
        sig(
            "TailWrongOffset",
            Offset::FromEnd { back: 10, shift: 0 },
            vec![exact(b"TAILMARK")],
        ),
        sig(
            "StartAnchored",
            Offset::Absolute {
                at: (MIB - 200_000) as u64,
                shift: 0,
            },
            vec![
                exact(b"FARLEFT"),
                vec![Token::Gap { min: 0, max: None }],
                exact(b"TAILMARK"),
            ],
        ),
    ];
    let a = windowed_agrees_with_whole(&sigs, &data);
    assert_eq!(
        a,
        [
            "FarApart",
            "FarRange",
            "ForwardReread",
            "StartAnchored",
            "Straddle",
            "Tail"
        ]
    );
}

/// Patterns with `*` whose parts lie megabytes apart in a file larger than
/// the range the scanner re-reads whole: their parts are searched for window
/// by window, and the verdicts equal a scan of the same bytes in memory.
#[test]
fn unbounded_gaps_across_a_large_file_agree_with_whole_buffer() {
    let mut data: Vec<u8> = (0..20 * MIB + 777)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] | 0x80)
        .collect();
    let plant = |data: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        data[at..at + bytes.len()].copy_from_slice(bytes)
    };
    plant(&mut data, 100, b"FIRSTPART");
    plant(&mut data, 6 * MIB - 3, b"MIDDLEPART");
    plant(&mut data, 13 * MIB + 5, b"THIRDPART");
    plant(&mut data, 19 * MIB + 11, b"LASTPART");
    // A part that occurs only before the first: order matters.
    plant(&mut data, 50, b"EARLYONLY");
    let star = || vec![Token::Gap { min: 0, max: None }];
    let sigs = vec![
        sig(
            "TwoFar",
            Offset::Any,
            vec![exact(b"FIRSTPART"), star(), exact(b"LASTPART")],
        ),
        sig(
            "Four",
            Offset::Any,
            vec![
                exact(b"FIRSTPART"),
                star(),
                exact(b"MIDDLEPART"),
                star(),
                exact(b"THIRDPART"),
                star(),
                exact(b"LASTPART"),
            ],
        ),
        sig(
            "WrongOrder",
            Offset::Any,
            vec![
                exact(b"FIRSTPART"),
                star(),
                exact(b"THIRDPART"),
                star(),
                exact(b"MIDDLEPART"),
            ],
        ),
        sig(
            "MissingAfter",
            Offset::Any,
            vec![exact(b"MIDDLEPART"), star(), exact(b"EARLYONLY")],
        ),
        sig(
            "GapTooWide",
            Offset::Any,
            vec![
                exact(b"MIDDLEPART"),
                vec![Token::Gap {
                    min: 14 * MIB as u32,
                    max: None,
                }],
                exact(b"LASTPART"),
            ],
        ),
        sig(
            "GapMinOk",
            Offset::Any,
            vec![
                exact(b"MIDDLEPART"),
                vec![Token::Gap {
                    min: 12 * MIB as u32,
                    max: None,
                }],
                exact(b"LASTPART"),
            ],
        ),
        sig(
            "AtStart",
            Offset::Absolute { at: 100, shift: 0 },
            vec![exact(b"FIRSTPART"), star(), exact(b"THIRDPART")],
        ),
        sig(
            "AtWrongStart",
            Offset::Absolute { at: 101, shift: 5 },
            vec![exact(b"FIRSTPART"), star(), exact(b"THIRDPART")],
        ),
        sig(
            "NearEnd",
            Offset::FromEnd {
                back: (MIB + 777 - 11 + 2) as u64,
                shift: 4,
            },
            vec![exact(b"LASTPART")],
        ),
    ];
    let a = windowed_agrees_with_whole(&sigs, &data);
    assert_eq!(a, ["AtStart", "Four", "GapMinOk", "NearEnd", "TwoFar"]);
}
