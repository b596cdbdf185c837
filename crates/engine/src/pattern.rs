//! Body signatures compiled for matching: an element list and an anchor.
//!
//! The anchor is the most selective run of exact bytes in the pattern; the
//! Aho-Corasick automaton looks only for anchors, and [`crate::verify`] checks
//! the whole pattern around each anchor hit, forwards and backwards from it.

use aether_sigs::{
    BodySig, ByteMatch, CharClass, HexPattern, Offset, TargetType, Token, Unsupported,
};

use crate::names::NameId;

/// [`Program::slot`] of a body signature: a match is a detection.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Anchor length: the gram index finds 4-byte anchors (see [`crate::grams`]);
/// shorter ones are the exception.
pub(crate) const MAX_ANCHOR: usize = 4;

/// Unbounded gap length.
pub(crate) const UNBOUNDED: usize = usize::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Elem {
    Byte(ByteMatch),
    /// One of the branches (branch lengths may differ).
    Alt(Box<[Box<[ByteMatch]>]>),
    /// `len` bytes equal to none of the branches.
    NegAlt {
        len: usize,
        branches: Box<[Box<[ByteMatch]>]>,
    },
    /// A character class inside the pattern: consumes its byte(s).
    Class {
        class: CharClass,
        negated: bool,
    },
    /// `min..=max` arbitrary bytes; `max == UNBOUNDED` for `*` and `{n-}`.
    Gap {
        min: usize,
        max: usize,
    },
}

impl Elem {
    /// (shortest, longest) number of bytes the element consumes.
    pub(crate) fn len_range(&self) -> (usize, usize) {
        match self {
            Elem::Byte(_) => (1, 1),
            Elem::Alt(branches) => {
                let lens = branches.iter().map(|b| b.len());
                (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0))
            }
            Elem::NegAlt { len, .. } => (*len, *len),
            Elem::Class {
                class: CharClass::Line,
                negated: false,
            } => (1, 2),
            Elem::Class { .. } => (1, 1),
            Elem::Gap { min, max } => (*min, *max),
        }
    }
}

/// A zero-width check just outside the match: `(B)`, `(L)` or `(W)` at an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) class: CharClass,
    pub(crate) negated: bool,
    /// `(W)` of a wide (`::wf`) subsignature: it looks at the UTF-16 unit
    /// next to the match (a letter or digit followed by a zero byte).
    pub(crate) wide: bool,
}

/// A compiled body signature.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) elems: Box<[Elem]>,
    pub(crate) left: Option<Edge>,
    pub(crate) right: Option<Edge>,
    pub(crate) offset: Offset,
    pub(crate) target: TargetType,
    pub(crate) name: NameId,
    /// [`NO_SLOT`] for a body signature; for a subsignature of a logical
    /// signature, the counter its matches go to (see [`crate::logical`]).
    pub(crate) slot: u32,
    /// Index in `elems` of the anchor's first byte.
    pub(crate) anchor_at: usize,
    pub(crate) anchor_len: usize,
    /// Bytes from the pattern's start to the anchor's start: shortest, longest.
    pub(crate) back: (usize, usize),
    /// Bytes from the anchor's start to the pattern's end: longest.
    pub(crate) fwd_max: usize,
    /// The anchor is the whole pattern: a hit is a match (offset aside).
    pub(crate) anchor_is_pattern: bool,
}

fn sat_add(a: usize, b: usize) -> usize {
    a.saturating_add(b)
}

/// Lowers a parsed signature into a [`Program`] and its anchor bytes.
pub(crate) fn compile(sig: &BodySig<'_>, name: NameId) -> Result<(Program, Vec<u8>), Unsupported> {
    let (prog, mut anchors) =
        compile_pattern(&sig.pattern, sig.offset, sig.target, false, false, name)?;
    // Without `nocase` the anchor has exactly one spelling.
    let anchor = anchors.pop().map(|a| a.bytes).unwrap_or_default();
    Ok((prog, anchor))
}

/// A letter matched in either case (`::i`): bit 5 is the only difference.
fn fold(m: ByteMatch) -> ByteMatch {
    if m.is_exact() && m.value.is_ascii_alphabetic() {
        ByteMatch {
            value: m.value.to_ascii_uppercase(),
            mask: 0xdf,
        }
    } else {
        m
    }
}

/// A byte an anchor may hold: exact, or a letter in either case.
pub(crate) fn anchorable(m: ByteMatch) -> bool {
    m.is_exact() || (m.mask == 0xdf && m.value.is_ascii_uppercase())
}

/// How a program's anchor is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) bytes: Vec<u8>,
    /// `bytes` is a 4-byte anchor with bit 5 of every byte set, found by the
    /// case-folded gram index (see [`crate::grams::fold`]); the anchor's own
    /// bytes must be checked again on a hit.
    pub(crate) folded: bool,
}

/// Lowers a hex pattern into a [`Program`] and how to find its anchor: one
/// spelling, or for a `nocase` anchor of four bytes its folded form, or for a
/// shorter `nocase` anchor every spelling (each letter in both cases). `wide`:
/// the pattern is a `::w` subsignature, whose `(W)` edges look at UTF-16 units.
pub(crate) fn compile_pattern(
    pattern: &HexPattern,
    offset: Offset,
    target: TargetType,
    nocase: bool,
    wide: bool,
    name: NameId,
) -> Result<(Program, Vec<Anchor>), Unsupported> {
    let fold_all = |b: &[ByteMatch]| -> Box<[ByteMatch]> {
        b.iter()
            .map(|m| if nocase { fold(*m) } else { *m })
            .collect()
    };
    let mut tokens: &[Token] = &pattern.tokens;
    let mut left = None;
    let mut right = None;
    if let Some((Token::Class { class, negated }, rest)) = tokens.split_first() {
        left = Some(Edge {
            class: *class,
            negated: *negated,
            wide: wide && *class == CharClass::NonAlnum,
        });
        tokens = rest;
    }
    if let Some((Token::Class { class, negated }, rest)) = tokens.split_last() {
        right = Some(Edge {
            class: *class,
            negated: *negated,
            wide: wide && *class == CharClass::NonAlnum,
        });
        tokens = rest;
    }
    let mut elems = Vec::with_capacity(tokens.len());
    for t in tokens {
        let e = match t {
            Token::Byte(b) => Elem::Byte(if nocase { fold(*b) } else { *b }),
            Token::Gap { min, max } => Elem::Gap {
                min: *min as usize,
                max: max.map_or(UNBOUNDED, |m| m as usize),
            },
            Token::Alt {
                branches,
                negated: false,
            } => Elem::Alt(branches.iter().map(|b| fold_all(b)).collect()),
            Token::Alt {
                branches,
                negated: true,
            } => {
                let len = branches.first().map_or(0, |b| b.len());
                if branches.iter().any(|b| b.len() != len) {
                    return Err(Unsupported("negated alternatives of different lengths"));
                }
                Elem::NegAlt {
                    len,
                    branches: branches.iter().map(|b| fold_all(b)).collect(),
                }
            }
            Token::Class { class, negated } => Elem::Class {
                class: *class,
                negated: *negated,
            },
        };
        // Merge adjacent gaps: `{2}*` is one gap.
        if let (Some(Elem::Gap { min: m0, max: x0 }), Elem::Gap { min, max }) =
            (elems.last_mut(), &e)
        {
            *m0 = sat_add(*m0, *min);
            *x0 = sat_add(*x0, *max);
            continue;
        }
        elems.push(e);
    }
    let (anchor_at, anchor_len) = best_anchor(&elems).ok_or(Unsupported(
        "body signatures without a static byte to anchor on",
    ))?;
    let anchor_elems = &elems[anchor_at..anchor_at + anchor_len];
    let any_folded = anchor_elems
        .iter()
        .any(|e| matches!(e, Elem::Byte(m) if !m.is_exact()));
    // Every spelling of the anchor: a folded letter doubles them. Four-byte
    // anchors go to the folded index instead, as one entry.
    let mut anchors: Vec<Vec<u8>> = vec![Vec::with_capacity(anchor_len)];
    for e in anchor_elems {
        let m = match e {
            Elem::Byte(m) => *m,
            _ => ByteMatch::exact(0),
        };
        if m.is_exact() {
            anchors.iter_mut().for_each(|a| a.push(m.value));
        } else {
            let lower: Vec<Vec<u8>> = anchors
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    a.push(m.value.to_ascii_lowercase());
                    a
                })
                .collect();
            anchors.iter_mut().for_each(|a| a.push(m.value));
            anchors.extend(lower);
        }
    }
    let anchors: Vec<Anchor> = if any_folded && anchor_len == MAX_ANCHOR {
        let bytes = anchors
            .first()
            .map(|a| a.iter().map(|b| b | 0x20).collect())
            .unwrap_or_default();
        vec![Anchor {
            bytes,
            folded: true,
        }]
    } else {
        anchors
            .into_iter()
            .map(|bytes| Anchor {
                bytes,
                folded: false,
            })
            .collect()
    };
    let back = elems[..anchor_at]
        .iter()
        .fold((0usize, 0usize), |(lo, hi), e| {
            let (a, b) = e.len_range();
            (sat_add(lo, a), sat_add(hi, b))
        });
    let fwd_max = elems[anchor_at..]
        .iter()
        .fold(0usize, |acc, e| sat_add(acc, e.len_range().1));
    let anchor_is_pattern = anchor_len == elems.len() && left.is_none() && right.is_none();
    Ok((
        Program {
            elems: elems.into_boxed_slice(),
            left,
            right,
            offset,
            target,
            name,
            slot: NO_SLOT,
            anchor_at,
            anchor_len,
            back,
            fwd_max,
            anchor_is_pattern,
        },
        anchors,
    ))
}

/// How much a byte tells about a position: zeros and padding bytes are common
/// in every file, so anchors avoid them when they can.
fn byte_weight(b: u8, prev: Option<u8>) -> f32 {
    let w = match b {
        0x00 => 0.25,
        0xff => 0.5,
        0x20 | 0x0a | 0x0d | 0x90 | 0xcc => 0.6,
        b if b.is_ascii_alphanumeric() => 0.9,
        _ => 1.0,
    };
    if prev == Some(b) { w * 0.5 } else { w }
}

/// The best window of at most [`MAX_ANCHOR`] consecutive exact bytes.
fn best_anchor(elems: &[Elem]) -> Option<(usize, usize)> {
    let exact = |e: &Elem| matches!(e, Elem::Byte(b) if anchorable(*b));
    let byte = |e: &Elem| match e {
        Elem::Byte(b) => b.value,
        _ => 0,
    };
    let mut best: Option<(f32, usize, usize)> = None;
    let mut i = 0;
    while i < elems.len() {
        if !exact(&elems[i]) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < elems.len() && exact(&elems[i]) {
            i += 1;
        }
        let run = run_start..i;
        let len = run.len().min(MAX_ANCHOR);
        for start in run.start..=run.end - len {
            let mut score = 0.0;
            let mut prev = None;
            for e in &elems[start..start + len] {
                let b = byte(e);
                score += byte_weight(b, prev);
                prev = Some(b);
            }
            if best.is_none_or(|(s, _, l)| score > s || (score == s && len > l)) {
                best = Some((score, start, len));
            }
        }
    }
    best.map(|(_, start, len)| (start, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_sigs::HexPattern;

    fn elems_of(tokens: Vec<Token>) -> Vec<Elem> {
        let sig = BodySig {
            name: "t",
            target: TargetType::Any,
            offset: Offset::Any,
            pattern: HexPattern { tokens },
        };
        compile(&sig, NameId(0))
            .map(|(p, _)| p.elems.into_vec())
            .unwrap_or_default()
    }

    #[test]
    fn anchor_prefers_rare_bytes() {
        let mut elems: Vec<Elem> = [0u8, 0, 0, 0]
            .iter()
            .map(|b| Elem::Byte(ByteMatch::exact(*b)))
            .collect();
        elems.push(Elem::Gap { min: 1, max: 1 });
        elems.extend(b"MZ".iter().map(|b| Elem::Byte(ByteMatch::exact(*b))));
        assert_eq!(best_anchor(&elems), Some((5, 2)));
    }

    #[test]
    fn adjacent_gaps_merge() {
        let t = vec![
            Token::Byte(ByteMatch::exact(1)),
            Token::Gap {
                min: 2,
                max: Some(2),
            },
            Token::Gap { min: 0, max: None },
            Token::Byte(ByteMatch::exact(2)),
        ];
        let e = elems_of(t);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            Elem::Gap {
                min: 2,
                max: UNBOUNDED
            }
        );
    }

    #[test]
    fn no_static_byte_is_unsupported() {
        let sig = BodySig {
            name: "t",
            target: TargetType::Any,
            offset: Offset::Any,
            pattern: HexPattern {
                tokens: vec![Token::Byte(ByteMatch::ANY), Token::Byte(ByteMatch::ANY)],
            },
        };
        assert!(compile(&sig, NameId(0)).is_err());
    }
}
