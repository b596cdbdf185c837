//! The matcher against a slow reference on random patterns and data.
//!
//! The reference tries every start position and every way through the pattern
//! with plain recursion, straight from the documented semantics of ClamAV's hex
//! signatures; the engine (anchor, automaton, forward and backward verification,
//! pruning by offset) must agree with it on every input.

use aether_engine::{EngineBuilder, Limits};
use aether_sigs::{
    BodySig, ByteMatch, CharClass, HexPattern, Offset, SignatureSink, TargetType, Token,
};

mod common;
use common::Rng;

const ALPHABET: &[u8] = b"AB\n\r -a";

fn byte(rng: &mut Rng) -> u8 {
    ALPHABET[rng.below(ALPHABET.len() as u64) as usize]
}

fn random_token(rng: &mut Rng) -> Token {
    match rng.below(10) {
        0..=4 => Token::Byte(ByteMatch::exact(byte(rng))),
        5 => Token::Byte(if rng.below(2) == 0 {
            ByteMatch::ANY
        } else {
            ByteMatch {
                value: byte(rng) & 0xf0,
                mask: 0xf0,
            }
        }),
        6 => {
            let min = rng.below(3) as u32;
            let max = match rng.below(3) {
                0 => None,
                _ => Some(min + rng.below(3) as u32),
            };
            Token::Gap { min, max }
        }
        7 => {
            let n = 1 + rng.below(3);
            let branches = (0..n)
                .map(|_| {
                    (0..1 + rng.below(2))
                        .map(|_| ByteMatch::exact(byte(rng)))
                        .collect()
                })
                .collect();
            Token::Alt {
                branches,
                negated: false,
            }
        }
        8 => {
            let len = 1 + rng.below(2);
            let branches = (0..1 + rng.below(2))
                .map(|_| (0..len).map(|_| ByteMatch::exact(byte(rng))).collect())
                .collect();
            Token::Alt {
                branches,
                negated: true,
            }
        }
        _ => Token::Class {
            class: [CharClass::Boundary, CharClass::Line, CharClass::NonAlnum]
                [rng.below(3) as usize],
            negated: rng.below(4) == 0,
        },
    }
}

fn random_pattern(rng: &mut Rng) -> Vec<Token> {
    loop {
        let n = 1 + rng.below(6) as usize;
        let tokens: Vec<Token> = (0..n).map(|_| random_token(rng)).collect();
        // The engine anchors on exact bytes, as ClamAV requires static bytes.
        let inner = &tokens[..];
        if inner
            .iter()
            .any(|t| matches!(t, Token::Byte(b) if b.is_exact()))
        {
            return tokens;
        }
    }
}

fn random_offset(rng: &mut Rng) -> Offset {
    match rng.below(4) {
        0 | 1 => Offset::Any,
        2 => Offset::Absolute {
            at: rng.below(6),
            shift: rng.below(3) * rng.below(3),
        },
        _ => Offset::FromEnd {
            back: rng.below(12),
            shift: rng.below(3),
        },
    }
}

// ---- the reference ------------------------------------------------------

fn boundary(b: u8) -> u8 {
    match b {
        b' ' | b'-' | b'/' | b'_' => 3,
        b'.' | b'<' | b'@' => 1,
        b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'>' => 2,
        _ => 0,
    }
}

/// Byte counts a token can consume at `pos` (empty = no match).
fn consume(t: &Token, d: &[u8], pos: usize) -> Vec<usize> {
    let at = |k: usize| d.get(pos + k).copied();
    let fits = |br: &[ByteMatch]| {
        br.iter()
            .enumerate()
            .all(|(k, m)| at(k).is_some_and(|b| m.matches(b)))
    };
    match t {
        Token::Byte(m) => at(0)
            .filter(|b| m.matches(*b))
            .map(|_| vec![1])
            .unwrap_or_default(),
        Token::Gap { min, max } => {
            let room = d.len().saturating_sub(pos);
            let hi = max.map_or(room, |m| (m as usize).min(room));
            (*min as usize..=hi).collect()
        }
        Token::Alt {
            branches,
            negated: false,
        } => branches
            .iter()
            .filter(|br| fits(br))
            .map(|br| br.len())
            .collect(),
        Token::Alt {
            branches,
            negated: true,
        } => {
            let len = branches[0].len();
            if pos + len <= d.len() && !branches.iter().any(|br| fits(br)) {
                vec![len]
            } else {
                vec![]
            }
        }
        Token::Class { class, negated } => {
            let Some(b) = at(0) else { return vec![] };
            let (hit, len) = match class {
                CharClass::Boundary => (boundary(b) != 0, 1),
                CharClass::NonAlnum => (!b.is_ascii_alphanumeric(), 1),
                CharClass::Line if b == b'\n' => (true, 1),
                CharClass::Line if b == b'\r' && at(1) == Some(b'\n') => (true, 2),
                CharClass::Line => (false, 1),
            };
            match (hit, negated) {
                (true, false) => vec![len],
                (false, true) => vec![1],
                _ => vec![],
            }
        }
    }
}

fn left_ok(t: &Token, d: &[u8], start: usize) -> bool {
    let Token::Class { class, negated } = t else {
        unreachable!()
    };
    let hit = match (start.checked_sub(1).map(|p| d[p]), class) {
        (None, _) => true,
        (Some(b), CharClass::Boundary) => matches!(boundary(b), 1 | 3),
        (Some(b), CharClass::Line) => b == b'\n',
        (Some(b), CharClass::NonAlnum) => !b.is_ascii_alphanumeric(),
    };
    hit != *negated
}

fn right_ok(t: &Token, d: &[u8], end: usize) -> bool {
    let Token::Class { class, negated } = t else {
        unreachable!()
    };
    let hit = match (d.get(end).copied(), class) {
        (None, _) => true,
        (Some(b), CharClass::Boundary) => boundary(b) >= 2,
        (Some(b), CharClass::Line) => b == b'\n' || (b == b'\r' && d.get(end + 1) == Some(&b'\n')),
        (Some(b), CharClass::NonAlnum) => !b.is_ascii_alphanumeric(),
    };
    hit != *negated
}

fn match_from(tokens: &[Token], d: &[u8], pos: usize, right: Option<&Token>) -> bool {
    match tokens.split_first() {
        None => right.is_none_or(|r| right_ok(r, d, pos)),
        Some((t, rest)) => consume(t, d, pos)
            .into_iter()
            .any(|n| match_from(rest, d, pos + n, right)),
    }
}

fn reference(tokens: &[Token], offset: Offset, d: &[u8]) -> bool {
    let mut inner = tokens;
    let mut left = None;
    let mut right = None;
    if let Some((t @ Token::Class { .. }, rest)) = inner.split_first() {
        left = Some(t);
        inner = rest;
    }
    if let Some((t @ Token::Class { .. }, rest)) = inner.split_last() {
        right = Some(t);
        inner = rest;
    }
    let len = d.len() as u64;
    (0..=d.len()).any(|s| {
        let s64 = s as u64;
        let offset_ok = match offset {
            Offset::Any => true,
            Offset::Absolute { at, shift } => s64 >= at && s64 - at <= shift,
            Offset::FromEnd { back, shift } => {
                len >= back && s64 >= len - back && s64 - (len - back) <= shift
            }
            _ => false,
        };
        offset_ok && left.is_none_or(|l| left_ok(l, d, s)) && match_from(inner, d, s, right)
    })
}

// ---- the test -----------------------------------------------------------

#[test]
fn engine_agrees_with_reference() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = Limits {
        all_match: true,
        ..Limits::default()
    };
    let mut checked = 0u32;
    let mut matched = 0u32;
    for round in 0..400 {
        // Several signatures per engine, so shared anchors are exercised too.
        let sigs: Vec<(Vec<Token>, Offset)> = (0..8)
            .map(|_| (random_pattern(&mut rng), random_offset(&mut rng)))
            .collect();
        let names: Vec<String> = (0..sigs.len())
            .map(|i| format!("Sig.{round}.{i}"))
            .collect();
        let mut builder = EngineBuilder::new();
        let mut accepted = vec![false; sigs.len()];
        for (i, (tokens, offset)) in sigs.iter().enumerate() {
            let sig = BodySig {
                name: &names[i],
                target: TargetType::Any,
                offset: *offset,
                pattern: HexPattern {
                    tokens: tokens.clone(),
                },
            };
            accepted[i] = builder.body(sig).is_ok();
        }
        let engine = builder.build().expect("automaton builds");
        let mut scanner = engine.scanner();
        for _ in 0..25 {
            let len = 3 + rng.below(38) as usize;
            // Three final NULs make the data binary to ClamAV's text
            // detection (a NUL pair is a UTF-16 unit below 128 whatever the
            // alignment): text is also matched through its normalized copy,
            // which the raw reference does not model. At least six bytes:
            // ClamAV ignores files of five or fewer.
            let data: Vec<u8> = (0..len).map(|_| byte(&mut rng)).chain([0, 0, 0]).collect();
            let outcome = scanner.scan_bytes(&data, &limits).expect("in-memory scan");
            let got: Vec<&str> = outcome.detections.iter().map(|d| d.name.as_str()).collect();
            for (i, (tokens, offset)) in sigs.iter().enumerate() {
                if !accepted[i] {
                    continue;
                }
                let want = reference(tokens, *offset, &data);
                let have = got.contains(&names[i].as_str());
                assert_eq!(
                    want,
                    have,
                    "signature {tokens:?} offset {offset:?} on {:?}",
                    String::from_utf8_lossy(&data)
                );
                checked += 1;
                matched += want as u32;
            }
        }
    }
    // The generator must exercise both outcomes, or the test proves nothing.
    eprintln!("matched {matched} of {checked}");
    assert!(
        matched > 500 && checked - matched > 500,
        "matched {matched} of {checked}"
    );
}
