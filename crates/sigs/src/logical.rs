//! Logical signatures (`.ldb`): `Name;TargetDescription;Logic;Subsig0;Subsig1;...`.
//!
//! The parser turns a line into a typed [`LogicalSig`] and checks it as ClamAV's
//! `load_oneldb` does, in the same order, so a line is rejected, skipped or
//! loaded exactly where clamscan rejects, skips or loads it (the few places
//! where aether is stricter are listed in docs/database-formats.md). It does no
//! matching: [`LogicExpr::eval`] is the pure half of ClamAV's `cli_ac_chklsig`,
//! given how often each subsignature matched; finding those matches is the
//! engine's job.
//!
//! The logical expression is split the way ClamAV splits it, not by a textbook
//! grammar, because the split decides what the count forms see: at top level
//! at the *first* `&`/`|` (`0&1|2` is `0&(1|2)`), and inside a parenthesised
//! block at its *last* operator of depth one (`(0|1&2)` is `(0|1)&2`).

use crate::hex::{HexError, HexPattern};
use crate::line::Parsed;
use crate::offset::{Offset, OffsetError};
use crate::record::{FUNCTIONALITY_LEVEL, TargetType};

/// At most this many subsignatures per signature (ClamAV's `MAX_LDB_SUBSIGS`).
pub const MAX_SUBSIGS: usize = 64;
/// ClamAV reads `.ldb` lines into a buffer of this size (`CLI_DEFAULT_LSIG_BUFSIZE`).
pub const MAX_LINE_LEN: usize = 32768;
/// How deep the operations of a logical expression may nest. ClamAV has no
/// bound (it recurses once per operator of a chain, so `0&1&...&63` is 63
/// deep); this one keeps a hostile line from exhausting the stack while
/// allowing four times the longest chain of distinct subsignatures.
pub const MAX_EXPR_DEPTH: usize = 256;
/// ClamAV reads at most this many target-description attributes; the rest of
/// the block is ignored (`ATTRIB_TOKENS`).
pub const MAX_ATTRIBUTES: usize = 10;
/// `Intermediates:` holds at most this many types; the rest is ignored (`EXPR_TOKEN_MAX`).
pub const MAX_INTERMEDIATES: usize = 16;
/// Macro subsignatures name one of this many groups.
pub const MAX_MACRO_GROUPS: u32 = 32;

/// The file type names ClamAV knows (`CL_TYPE_*` in its `ftmap`), as written in
/// `Container:`, `Intermediates:` and `HandlerType:`. A signature naming any
/// other type is skipped, as ClamAV skips it.
pub const FILE_TYPE_NAMES: &[&str] = &[
    "CL_TYPE_TEXT_ASCII",
    "CL_TYPE_TEXT_UTF8",
    "CL_TYPE_TEXT_UTF16LE",
    "CL_TYPE_TEXT_UTF16BE",
    "CL_TYPE_BINARY_DATA",
    "CL_TYPE_IGNORED",
    "CL_TYPE_ANY",
    "CL_TYPE_MSEXE",
    "CL_TYPE_ELF",
    "CL_TYPE_MACHO",
    "CL_TYPE_MACHO_UNIBIN",
    "CL_TYPE_POSIX_TAR",
    "CL_TYPE_OLD_TAR",
    "CL_TYPE_CPIO_OLD",
    "CL_TYPE_CPIO_ODC",
    "CL_TYPE_CPIO_NEWC",
    "CL_TYPE_CPIO_CRC",
    "CL_TYPE_GZ",
    "CL_TYPE_ZIP",
    "CL_TYPE_BZ",
    "CL_TYPE_RAR",
    "CL_TYPE_ARJ",
    "CL_TYPE_MSSZDD",
    "CL_TYPE_MSOLE2",
    "CL_TYPE_MSCAB",
    "CL_TYPE_MSCHM",
    "CL_TYPE_SIS",
    "CL_TYPE_SCRENC",
    "CL_TYPE_GRAPHICS",
    "CL_TYPE_GIF",
    "CL_TYPE_PNG",
    "CL_TYPE_JPEG",
    "CL_TYPE_TIFF",
    "CL_TYPE_RIFF",
    "CL_TYPE_BINHEX",
    "CL_TYPE_TNEF",
    "CL_TYPE_CRYPTFF",
    "CL_TYPE_PDF",
    "CL_TYPE_UUENCODED",
    "CL_TYPE_HTML_UTF16",
    "CL_TYPE_SCRIPT",
    "CL_TYPE_RTF",
    "CL_TYPE_HTML",
    "CL_TYPE_MAIL",
    "CL_TYPE_SFX",
    "CL_TYPE_ZIPSFX",
    "CL_TYPE_RARSFX",
    "CL_TYPE_CABSFX",
    "CL_TYPE_ARJSFX",
    "CL_TYPE_NULSFT",
    "CL_TYPE_AUTOIT",
    "CL_TYPE_ISHIELD_MSI",
    "CL_TYPE_7Z",
    "CL_TYPE_7ZSFX",
    "CL_TYPE_SWF",
    "CL_TYPE_ISO9660",
    "CL_TYPE_JAVA",
    "CL_TYPE_DMG",
    "CL_TYPE_MBR",
    "CL_TYPE_GPT",
    "CL_TYPE_APM",
    "CL_TYPE_XAR",
    "CL_TYPE_PART_ANY",
    "CL_TYPE_PART_HFSPLUS",
    "CL_TYPE_XZ",
    "CL_TYPE_OOXML_WORD",
    "CL_TYPE_OOXML_PPT",
    "CL_TYPE_OOXML_XL",
    "CL_TYPE_INTERNAL",
    "CL_TYPE_XDP",
    "CL_TYPE_XML_WORD",
    "CL_TYPE_XML_XL",
    "CL_TYPE_HWP3",
    "CL_TYPE_XML_HWP",
    "CL_TYPE_HWPOLE2",
    "CL_TYPE_OOXML_HWP",
    "CL_TYPE_PS",
    "CL_TYPE_MHTML",
    "CL_TYPE_LNK",
    "CL_TYPE_EGG",
    "CL_TYPE_EGGSFX",
    "CL_TYPE_UDF",
    "CL_TYPE_ALZ",
    "CL_TYPE_ONENOTE",
    "CL_TYPE_PYTHON_COMPILED",
    "CL_TYPE_LHA_LZH",
    "CL_TYPE_AI_MODEL",
    "CL_TYPE_ZSTD",
];

/// Why a line was skipped rather than loaded (the reasons the loader counts):
/// an attribute name or `CL_TYPE_*` ClamAV does not know.
pub const SKIP_UNKNOWN_ATTRIBUTE: &str = "logical signatures with a target description attribute or file type ClamAV does not know (ClamAV skips them too)";
/// A `Target:` above 14.
pub const SKIP_TARGET: &str = "target type above 14";

/// A parsed logical signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalSig<'a> {
    pub name: &'a str,
    pub tdb: TargetDescription<'a>,
    pub expr: LogicExpr,
    /// Subsignature `i` is the `i` of the expression; there are as many as the
    /// expression's highest index plus one, at most [`MAX_SUBSIGS`].
    pub subsigs: Vec<SubSig<'a>>,
}

/// An inclusive range `min-max` of the target description block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

impl Range {
    pub fn contains(&self, v: u64) -> bool {
        u64::from(self.min) <= v && v <= u64::from(self.max)
    }
}

/// The target description block: conditions on the file besides its contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetDescription<'a> {
    /// `Engine:x-y`: functionality levels (already checked against aether's).
    pub engine: Option<Range>,
    /// `Target:n` (required).
    pub target: TargetType,
    /// `FileSize:x-y`.
    pub file_size: Option<Range>,
    /// `EntryPoint:x-y` (executables only).
    pub entry_point: Option<Range>,
    /// `NumberOfSections:x-y` (executables only).
    pub number_of_sections: Option<Range>,
    /// `Container:CL_TYPE_*`: the type of the file's immediate container
    /// (`CL_TYPE_ANY`: the file is not in a container). One of [`FILE_TYPE_NAMES`].
    pub container: Option<&'a str>,
    /// `Intermediates:CL_TYPE_A>CL_TYPE_B`: the containers, outermost first,
    /// the last the immediate one; `CL_TYPE_ANY` is a wildcard. Empty when absent.
    pub intermediates: Vec<&'a str>,
    /// `IconGroup1:` / `IconGroup2:` (`.idb` icon groups; PE only).
    pub icon_group1: Option<&'a str>,
    pub icon_group2: Option<&'a str>,
    /// `HandlerType:CL_TYPE_*`: do not alert; rescan the file as this type.
    pub handler_type: Option<&'a str>,
}

/// A count condition: `=n`, `>n`, `<n`, each optionally `,m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Count {
    pub cmp: CountCmp,
    pub n: u32,
    /// `,m`: at least `m` different subsignatures must have matched. ClamAV
    /// reads it only after a parenthesised block; after a single subsignature
    /// it is accepted and ignored, so the parser leaves it `None` there.
    pub distinct: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountCmp {
    Eq,
    Gt,
    Lt,
}

impl CountCmp {
    fn holds(self, v: u32, n: u32) -> bool {
        match self {
            CountCmp::Eq => v == n,
            CountCmp::Gt => v > n,
            CountCmp::Lt => v < n,
        }
    }

    fn symbol(self) -> char {
        match self {
            CountCmp::Eq => '=',
            CountCmp::Gt => '>',
            CountCmp::Lt => '<',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicOp {
    And,
    Or,
}

/// A logical expression over subsignature indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogicExpr {
    /// Subsignature `id`, matched at least once, or as `count` says.
    Sub { id: u8, count: Option<Count> },
    /// `left op right`; `count` is a modifier on a parenthesised block `(a|b)>2,1`.
    Op {
        op: LogicOp,
        left: Box<LogicExpr>,
        right: Box<LogicExpr>,
        count: Option<Count>,
    },
}

/// The outcome of evaluating an expression, as ClamAV computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub matched: bool,
    /// Matches contributed by the sub-expressions that held (what a block's
    /// `=n`, `>n`, `<n` compares).
    pub count: u32,
    /// Bit `i`: subsignature `i` contributed (what `,m` counts). A block with
    /// a count modifier contributes its count but not its subsignatures, as in ClamAV.
    pub ids: u64,
}

const FALSE: Evaluation = Evaluation {
    matched: false,
    count: 0,
    ids: 0,
};

impl LogicExpr {
    /// Parses a logical expression (the third field of an `.ldb` line, or a
    /// PCRE subsignature's trigger) as ClamAV's `cli_ac_chklsig` does.
    pub fn parse(text: &str) -> Result<LogicExpr, ExprError> {
        parse_region(text.as_bytes(), 0, text.len(), 0)
    }

    /// The highest subsignature index the expression names.
    pub fn max_id(&self) -> u8 {
        match self {
            LogicExpr::Sub { id, .. } => *id,
            LogicExpr::Op { left, right, .. } => left.max_id().max(right.max_id()),
        }
    }

    /// Whether the expression holds when subsignature `i` matched `counts[i]`
    /// times (indexes past the slice count as 0 matches).
    pub fn eval(&self, counts: &[u32]) -> bool {
        self.evaluate(counts).matched
    }

    /// [`eval`](Self::eval) with ClamAV's match count and contributing subsignatures.
    pub fn evaluate(&self, counts: &[u32]) -> Evaluation {
        match self {
            LogicExpr::Sub { id, count } => {
                let v = counts.get(usize::from(*id)).copied().unwrap_or(0);
                let holds = match count {
                    Some(c) => c.cmp.holds(v, c.n),
                    None => v > 0,
                };
                if holds {
                    Evaluation {
                        matched: true,
                        count: v,
                        ids: 1u64 << (id & 63),
                    }
                } else {
                    FALSE
                }
            }
            LogicExpr::Op {
                op,
                left,
                right,
                count,
            } => {
                // Both sides are always evaluated; only what holds contributes.
                let l = left.evaluate(counts);
                let r = right.evaluate(counts);
                let holds = match op {
                    LogicOp::And => l.matched && r.matched,
                    LogicOp::Or => l.matched || r.matched,
                };
                let (total, ids) = if holds {
                    (l.count.wrapping_add(r.count), l.ids | r.ids)
                } else {
                    (0, 0)
                };
                let Some(c) = count else {
                    return if holds {
                        Evaluation {
                            matched: true,
                            count: total,
                            ids,
                        }
                    } else {
                        FALSE
                    };
                };
                if !c.cmp.holds(total, c.n) {
                    return FALSE;
                }
                if let Some(m) = c.distinct
                    && ids.count_ones() < m
                {
                    return FALSE;
                }
                Evaluation {
                    matched: true,
                    count: total,
                    ids: 0,
                }
            }
        }
    }

    fn depth(&self) -> usize {
        match self {
            LogicExpr::Sub { .. } => 1,
            LogicExpr::Op { left, right, .. } => 1 + left.depth().max(right.depth()),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.cmp.symbol(), self.n)?;
        if let Some(m) = self.distinct {
            write!(f, ",{m}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for LogicExpr {
    /// An expression ClamAV (and [`LogicExpr::parse`]) reads back as this one:
    /// every operation is a parenthesised block.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogicExpr::Sub { id, count } => {
                write!(f, "{id}")?;
                if let Some(c) = count {
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            LogicExpr::Op {
                op,
                left,
                right,
                count,
            } => {
                let sym = match op {
                    LogicOp::And => '&',
                    LogicOp::Or => '|',
                };
                // An operation prints as a block, so either side's own
                // operator sits at depth two and the split is this one.
                write!(f, "({left}{sym}{right})")?;
                if let Some(c) = count {
                    write!(f, "{c}")?;
                }
                Ok(())
            }
        }
    }
}

/// A logical expression that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at column {column}")]
pub struct ExprError {
    /// 1-based byte position in the expression.
    pub column: usize,
    pub kind: ExprErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprErrorKind {
    #[error("empty expression")]
    Empty,
    #[error("')' without a matching '('")]
    UnexpectedClose,
    #[error("'(' without a matching ')'")]
    Unclosed,
    #[error("missing left operand")]
    MissingLeft,
    #[error("missing right operand")]
    MissingRight,
    #[error("missing number after '{0}'")]
    MissingNumber(char),
    #[error("malformed count {0:?} (expected n or n,m)")]
    BadCount(String),
    #[error("expected a subsignature index, found {0:?}")]
    BadOperand(String),
    #[error("subsignature index {0} is above {max}", max = MAX_SUBSIGS - 1)]
    IndexTooLarge(String),
    #[error("expression nested deeper than {MAX_EXPR_DEPTH}")]
    TooDeep,
}

fn expr_err<T>(at: usize, kind: ExprErrorKind) -> Result<T, ExprError> {
    Err(ExprError {
        column: at + 1,
        kind,
    })
}

fn is_cmp(c: u8) -> bool {
    matches!(c, b'<' | b'>' | b'=')
}

fn cmp_of(c: u8) -> CountCmp {
    match c {
        b'=' => CountCmp::Eq,
        b'>' => CountCmp::Gt,
        _ => CountCmp::Lt,
    }
}

/// A C `sscanf("%u")` at the start of `text`: leading white space, an
/// optional sign, at least one digit; the value wraps as C's does. Returns
/// the value and the bytes used.
fn scan_u32(text: &[u8]) -> Option<(u32, usize)> {
    let mut i = text
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    let neg = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    // strtoul saturates at its maximum; the store into an unsigned int truncates.
    let mut v: u64 = 0;
    for &c in &text[i..i + digits] {
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    if neg {
        v = v.wrapping_neg();
    }
    Some((v as u32, i + digits))
}

/// A block's `n` or `n,m`, read as ClamAV's `sscanf("%u,%u")`: whatever
/// follows the numbers is ignored. `text` starts with a digit.
fn parse_count(cmp: u8, text: &[u8], at: usize) -> Result<Count, ExprError> {
    let Some((n, used)) = scan_u32(text) else {
        return expr_err(
            at,
            ExprErrorKind::BadCount(String::from_utf8_lossy(text).into_owned()),
        );
    };
    let distinct = match text.get(used) {
        Some(b',') => scan_u32(&text[used + 1..]).map(|(m, _)| m),
        _ => None,
    };
    Ok(Count {
        cmp: cmp_of(cmp),
        n,
        distinct,
    })
}

/// Parses `s[start..end]`, splitting as ClamAV's `cli_ac_chklsig` does.
/// `depth` counts operations, the depth of the tree being built; parentheses
/// around a whole region are taken off in a loop, so they cost no stack.
fn parse_region(
    s: &[u8],
    mut start: usize,
    mut end: usize,
    depth: usize,
) -> Result<LogicExpr, ExprError> {
    loop {
        let e = &s[start..end];
        let len = e.len();
        if len == 0 {
            return expr_err(start, ExprErrorKind::Empty);
        }
        let mut pth = 0usize;
        // First top-level operator; last operator at depth one.
        let mut op: Option<(u8, usize)> = None;
        let mut op1: Option<(u8, usize)> = None;
        // Where the block ends, and its count if it ends the region.
        let mut blkend = 0usize;
        let mut blkcount: Option<Count> = None;
        let mut i = 0usize;
        while i < len {
            match e[i] {
                b'(' => pth += 1,
                b')' => {
                    if pth == 0 {
                        return expr_err(start + i, ExprErrorKind::UnexpectedClose);
                    }
                    pth -= 1;
                }
                c @ (b'&' | b'|') => {
                    if pth == 0 {
                        op = Some((c, i));
                        break;
                    } else if pth == 1 {
                        op1 = Some((c, i));
                    }
                }
                _ => {}
            }
            if op1.is_some() && pth == 0 {
                blkend = i;
                blkcount = None;
                if i + 1 < len && is_cmp(e[i + 1]) {
                    let cmp = e[i + 1];
                    let num_start = i + 2;
                    let mut j = num_start;
                    while j < len && (e[j].is_ascii_digit() || e[j] == b',') {
                        j += 1;
                    }
                    if j == num_start || !e[num_start].is_ascii_digit() {
                        return expr_err(
                            start + i + 1,
                            ExprErrorKind::MissingNumber(char::from(cmp)),
                        );
                    }
                    let count = parse_count(cmp, &e[num_start..j], start + num_start)?;
                    i = j - 1;
                    if i + 1 == len {
                        blkcount = Some(count);
                    }
                }
                if i + 1 == len {
                    break;
                }
            }
            i += 1;
        }
        if pth != 0 {
            return expr_err(end, ExprErrorKind::Unclosed);
        }
        let (op, opoff, lstart, rend, count) = match (op, op1) {
            (None, None) => {
                if e[0] == b'(' {
                    start += 1;
                    end -= 1;
                    continue;
                }
                return parse_leaf(e, start);
            }
            (Some((c, off)), _) => (c, off, 0, len, None),
            (None, Some((c, off))) => (c, off, 1, blkend, blkcount),
        };
        if opoff == 0 {
            return expr_err(start, ExprErrorKind::MissingLeft);
        }
        if opoff + 1 == len {
            return expr_err(start + opoff, ExprErrorKind::MissingRight);
        }
        if depth + 1 >= MAX_EXPR_DEPTH {
            return expr_err(start + opoff, ExprErrorKind::TooDeep);
        }
        let left = parse_region(s, start + lstart, start + opoff, depth + 1)?;
        let right = parse_region(s, start + opoff + 1, start + rend, depth + 1)?;
        return Ok(LogicExpr::Op {
            op: if op == b'&' {
                LogicOp::And
            } else {
                LogicOp::Or
            },
            left: Box::new(left),
            right: Box::new(right),
            count,
        });
    }
}

/// `id`, `id=n`, `id>n`, `id<n`, read as ClamAV reads them: the index by
/// `sscanf("%u")` at the start, the comparison by the last `<`, `>` or `=`
/// and the number after it; anything else in between is ignored, and so is
/// a `,m` (ClamAV counts distinct subsignatures only after a block).
fn parse_leaf(e: &[u8], start: usize) -> Result<LogicExpr, ExprError> {
    let text = || String::from_utf8_lossy(e).into_owned();
    let Some((id, _)) = scan_u32(e) else {
        return expr_err(start, ExprErrorKind::BadOperand(text()));
    };
    if id as usize >= MAX_SUBSIGS {
        return expr_err(start, ExprErrorKind::IndexTooLarge(text()));
    }
    let count = match e.iter().rposition(|&c| is_cmp(c) || c == b')') {
        None => None,
        // ClamAV accepts `0(1)2` and never matches it; aether refuses it.
        Some(at) if e[at] == b')' => {
            return expr_err(start + at, ExprErrorKind::BadOperand(text()));
        }
        Some(at) => {
            let Some((n, _)) = scan_u32(&e[at + 1..]) else {
                return expr_err(start + at, ExprErrorKind::MissingNumber(char::from(e[at])));
            };
            Some(Count {
                cmp: cmp_of(e[at]),
                n,
                distinct: None,
            })
        }
    };
    Ok(LogicExpr::Sub {
        id: id as u8,
        count,
    })
}

/// Modifiers of a hex subsignature (`::iwaf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers {
    /// `i`: letters match in either case.
    pub nocase: bool,
    /// `w`: each byte followed by a zero byte (wildcards are not widened).
    pub wide: bool,
    /// `a`: match as ASCII too (with `w`: both forms).
    pub ascii: bool,
    /// `f`: delimited by non-alphanumeric bytes (or the file's ends).
    pub fullword: bool,
}

impl Modifiers {
    pub fn is_empty(&self) -> bool {
        *self == Modifiers::default()
    }
}

/// The flags after a PCRE subsignature's closing `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PcreFlags {
    /// `g`: find every match, not only the first.
    pub global: bool,
    /// `r`: the offset is where the search starts, not the only place a match may start.
    pub rolling: bool,
    /// `e`: the match must lie within offset..offset+shift.
    pub encompass: bool,
    /// `i` (PCRE_CASELESS).
    pub caseless: bool,
    /// `s` (PCRE_DOTALL).
    pub dotall: bool,
    /// `m` (PCRE_MULTILINE).
    pub multiline: bool,
    /// `x` (PCRE_EXTENDED).
    pub extended: bool,
    /// `A` (PCRE_ANCHORED).
    pub anchored: bool,
    /// `E` (PCRE_DOLLAR_ENDONLY).
    pub dollar_endonly: bool,
    /// `U` (PCRE_UNGREEDY).
    pub ungreedy: bool,
}

/// A hex subsignature: `[Offset:]HexSig[::modifiers]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexSubSig {
    pub offset: Offset,
    /// The pattern ClamAV compiles: with `f`, wrapped in `(W)...(W)` (and
    /// `[x-y]` written `{x-y}`); with `w`, each byte followed by `00`
    /// (wildcards and gaps are not widened). Both are applied here, as ClamAV
    /// applies them to the text before it checks it.
    pub pattern: HexPattern,
    /// With both `w` and `a`: the narrow form, matched as well.
    pub ascii: Option<HexPattern>,
    /// As written. `nocase` is left to the matcher; `fullword` and `wide` are
    /// already in `pattern`.
    pub modifiers: Modifiers,
}

/// A PCRE subsignature: `[Offset:]Trigger/regex/[flags]`. The regex is kept
/// as written (ClamAV's `\x3B` for `;` included); it is not compiled here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcreSubSig<'a> {
    pub offset: Offset,
    /// Evaluated over the subsignatures before this one; the regex runs only when it holds.
    pub trigger: LogicExpr,
    pub regex: &'a str,
    pub flags: PcreFlags,
}

impl PcreSubSig<'_> {
    /// A PCRE construct in the regex that Rust's `regex` crate cannot run
    /// (it guarantees linear time, so it has no lookaround or backreferences),
    /// or `None`. A hint for the engine's choice of regex library, found by
    /// looking at the text; it does not validate the regex.
    pub fn needs_backtracking(&self) -> Option<&'static str> {
        let r = self.regex.as_bytes();
        let mut i = 0;
        while i < r.len() {
            match r[i] {
                b'\\' => {
                    match r.get(i + 1) {
                        Some(b'1'..=b'9') => return Some("backreference"),
                        Some(b'k' | b'g') => return Some("backreference"),
                        _ => {}
                    }
                    i += 2;
                    continue;
                }
                b'(' if r.get(i + 1) == Some(&b'?') => {
                    let rest = &r[i + 2..];
                    if rest.starts_with(b"=")
                        || rest.starts_with(b"!")
                        || rest.starts_with(b"<=")
                        || rest.starts_with(b"<!")
                    {
                        return Some("lookaround");
                    }
                    if rest.starts_with(b">") {
                        return Some("atomic group");
                    }
                    if rest.starts_with(b"(") {
                        return Some("conditional group");
                    }
                    if rest.starts_with(b"R")
                        || rest.starts_with(b"&")
                        || rest.starts_with(b"P>")
                        || rest.first().is_some_and(|c| c.is_ascii_digit())
                    {
                        return Some("recursion");
                    }
                }
                b'+' if i > 0 && matches!(r[i - 1], b'*' | b'+' | b'?' | b'}') => {
                    return Some("possessive quantifier");
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// How a byte-compare subsignature reads the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteFormat {
    /// `h`: hex digits.
    Hex,
    /// `d`: decimal digits (big endian only).
    Decimal,
    /// `a`: hex or decimal, decided when scanning.
    Auto,
    /// `i`: raw binary integer of 1, 2, 4 or 8 bytes.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

/// A byte-compare subsignature: `Trigger(Offset#Options#Comparisons)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteCompare {
    /// The subsignature whose match start the offset is relative to.
    pub trigger: u8,
    /// Bytes from the trigger's match start (`>>n` positive, `<<n` negative).
    pub offset: i64,
    /// `None` when neither `h`, `d`, `a` nor `i` is given.
    pub format: Option<ByteFormat>,
    /// `None` when neither `l` nor `b` is given (`d` implies big endian).
    pub endian: Option<Endian>,
    /// `e`: compare only when exactly `length` bytes could be read.
    pub exact: bool,
    /// Bytes to read.
    pub length: u32,
    /// One or two comparisons, all of which must hold.
    pub comparisons: Vec<(CountCmp, i64)>,
}

/// One subsignature of a logical signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubSig<'a> {
    Hex(HexSubSig),
    Pcre(PcreSubSig<'a>),
    ByteCompare(ByteCompare),
    /// `${min-max}group$`: one of the `.ndb` signatures of macro group `group`
    /// (those with offset `$group`) `min..=max` bytes after the previous subsignature.
    Macro {
        min: u32,
        max: u32,
        group: u32,
    },
    /// `fuzzy_img#hash[#distance]`: an image's perceptual hash.
    FuzzyImage {
        hash: [u8; 8],
        distance: u32,
    },
}

/// Why an `.ldb` line is malformed. Displays as the text after `path:line: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LdbError {
    #[error("logical signature line is longer than {MAX_LINE_LEN} bytes")]
    LineTooLong,
    #[error(
        "expected at least 4 ';'-separated fields (name, target description, logic, subsignature), found {0}"
    )]
    FieldCount(usize),
    #[error("empty signature name")]
    EmptyName,
    #[error("logical expression: {0}")]
    Expr(ExprError),
    #[error("the logical expression names subsignatures 0 to {max}, but the line has {found}", max = expected - 1)]
    SubsigCount { expected: usize, found: usize },
    #[error("more than {MAX_SUBSIGS} subsignatures")]
    TooManySubsigs,
    #[error("target description: attribute {0:?} is not Name:Value")]
    AttributeFormat(String),
    #[error("target description: the Engine attribute must come first")]
    EngineNotFirst,
    #[error("target description: invalid value for {attr}: {value:?}")]
    AttributeValue { attr: &'static str, value: String },
    #[error(
        "target description: attributes other than Target need Engine with a minimum level of at least 51"
    )]
    NeedsEngine51,
    #[error("target description: no Target")]
    NoTarget,
    #[error("target description: IconGroup needs Target:1 (PE)")]
    IconGroupNeedsPe,
    #[error(
        "target description: EntryPoint and NumberOfSections need Target 1 (PE), 6 (ELF) or 9 (Mach-O)"
    )]
    ExeAttributeNeedsExecutable,
    #[error("subsignature {index}: {kind}")]
    Subsig { index: usize, kind: SubsigError },
}

/// What is wrong with one subsignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubsigError {
    #[error("malformed hex signature: {0}")]
    Hex(HexError),
    /// The text ClamAV builds from the signature and its `w`/`f` modifiers
    /// does not parse (the columns are in `text`).
    #[error("malformed hex signature once its modifiers are applied ({text}): {error}")]
    HexModified { text: String, error: HexError },
    #[error("malformed offset: {0}")]
    Offset(OffsetError),
    #[error("offset {0} needs target type 1 (PE), 6 (ELF) or 9 (Mach-O)")]
    OffsetNeedsExecutable(String),
    #[error("too many ':'-separated fields")]
    FieldCount,
    #[error("unknown modifier {0:?} (expected i, w, a or f)")]
    Modifier(char),
    #[error("PCRE subsignature needs a /regex/ between two '/'")]
    PcreDelimiters,
    #[error("PCRE subsignature needs a trigger expression before its '/'")]
    PcreNoTrigger,
    #[error("empty PCRE regex")]
    PcreEmpty,
    #[error("PCRE trigger: {0}")]
    PcreTrigger(ExprError),
    #[error("PCRE trigger names subsignature {0}, which is not before this one")]
    PcreTriggerForward(u8),
    #[error("unknown PCRE flag {0:?} (expected g r e i s m x A E U)")]
    PcreFlag(char),
    #[error("byte compare: {0}")]
    ByteCompare(String),
    #[error("macro subsignature must be ${{min-max}}group$ with group below {MAX_MACRO_GROUPS}")]
    Macro,
    #[error("fuzzy image hash must be fuzzy_img#<16 hex digits>[#0]")]
    FuzzyImage,
}

/// Splits at `delim` as ClamAV's `cli_ldbtokenize`: from field `skip` on, a
/// `/` not preceded by `\` opens or closes a regex, inside which `delim` does
/// not split.
fn ldb_fields(text: &str, delim: u8, skip: usize) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut in_regex = false;
    let mut field_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if !in_regex && c == delim {
            out.push(&text[field_start..i]);
            field_start = i + 1;
        } else if out.len() >= skip && c == b'/' && i > 0 && b[i - 1] != b'\\' {
            in_regex = !in_regex;
        }
    }
    out.push(&text[field_start..]);
    out
}

/// The signature name of an `.ldb` line, for ignore-list checks before parsing the rest.
pub fn logical_line_name(line: &str) -> &str {
    line.split(';').next().unwrap_or(line)
}

/// Parses one `.ldb` line (without its line ending; not a comment).
///
/// A line meant for other engine levels is [`Parsed::SkippedFlevel`]; one
/// with a target description ClamAV skips (an unknown attribute or file type,
/// a target above 14) is [`Parsed::Unsupported`], as is one with an offset
/// aether cannot represent yet (`$n$`).
pub fn parse_logical_line(line: &str) -> Result<Parsed<LogicalSig<'_>>, LdbError> {
    if line.len() > MAX_LINE_LEN {
        return Err(LdbError::LineTooLong);
    }
    let fields = ldb_fields(line, b';', 2);
    if fields.len() < 4 {
        return Err(LdbError::FieldCount(fields.len()));
    }
    let name = fields[0];
    if name.is_empty() {
        return Err(LdbError::EmptyName);
    }
    let expr = LogicExpr::parse(fields[2]).map_err(LdbError::Expr)?;
    let expected = usize::from(expr.max_id()) + 1;
    let found = fields.len() - 3;
    if expected != found {
        if found > MAX_SUBSIGS {
            return Err(LdbError::TooManySubsigs);
        }
        return Err(LdbError::SubsigCount { expected, found });
    }
    let tdb = match parse_tdb(fields[1])? {
        Tdb::Ok(t) => t,
        Tdb::SkipFlevel => return Ok(Parsed::SkippedFlevel),
        Tdb::Skip(why) => return Ok(Parsed::Unsupported(why)),
    };
    let mut subsigs = Vec::with_capacity(found);
    let mut unsupported = None;
    for (index, text) in fields[3..].iter().enumerate() {
        match parse_subsig(text, index, tdb.target) {
            Ok(s) => subsigs.push(s),
            Err(SubsigOutcome::Unsupported(why)) => {
                // Keep checking the rest: a malformed later subsignature still
                // makes the whole line an error, as in ClamAV.
                unsupported.get_or_insert(why);
            }
            Err(SubsigOutcome::Error(kind)) => return Err(LdbError::Subsig { index, kind }),
        }
    }
    if let Some(why) = unsupported {
        return Ok(Parsed::Unsupported(why));
    }
    debug_assert!(expr.depth() <= MAX_EXPR_DEPTH);
    Ok(Parsed::Record(LogicalSig {
        name,
        tdb,
        expr,
        subsigs,
    }))
}

enum Tdb<'a> {
    Ok(TargetDescription<'a>),
    SkipFlevel,
    Skip(&'static str),
}

/// ClamAV's `cli_isnumber` (an empty string passes) and `atoi` into a u32.
fn tdb_number(s: &str) -> Option<u32> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // atoi is strtol cut to an int: saturating at i64::MAX, then truncated.
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v
            .saturating_mul(10)
            .saturating_add(u64::from(b - b'0'))
            .min(i64::MAX as u64);
    }
    Some(v as u32)
}

/// The target description block, as ClamAV's `lsigattribs` and `init_tdb`.
fn parse_tdb(text: &str) -> Result<Tdb<'_>, LdbError> {
    let mut t = TargetDescription::default();
    let mut target: Option<u32> = None;
    let mut new_ext = false;
    for (i, attr) in text.split(',').take(MAX_ATTRIBUTES).enumerate() {
        let Some((key, value)) = attr.split_once(':') else {
            return Err(LdbError::AttributeFormat(attr.to_string()));
        };
        let key: &'static str = match key {
            "Target" => "Target",
            "Engine" => "Engine",
            "FileSize" => "FileSize",
            "EntryPoint" => "EntryPoint",
            "NumberOfSections" => "NumberOfSections",
            "IconGroup1" => "IconGroup1",
            "IconGroup2" => "IconGroup2",
            "Container" => "Container",
            "HandlerType" => "HandlerType",
            "Intermediates" => "Intermediates",
            _ => return Ok(Tdb::Skip(SKIP_UNKNOWN_ATTRIBUTE)),
        };
        if key == "Engine" {
            if i != 0 {
                return Err(LdbError::EngineNotFirst);
            }
        } else if key != "Target" {
            new_ext = true;
        }
        let bad = || LdbError::AttributeValue {
            attr: key,
            value: value.to_string(),
        };
        let known_type = |v: &str| FILE_TYPE_NAMES.contains(&v);
        match key {
            "Target" => target = Some(tdb_number(value).ok_or_else(bad)?),
            "Engine" | "FileSize" | "EntryPoint" | "NumberOfSections" => {
                let Some((lo, hi)) = value.split_once('-') else {
                    return Err(bad());
                };
                let r = Range {
                    min: tdb_number(lo).ok_or_else(bad)?,
                    max: tdb_number(hi).ok_or_else(bad)?,
                };
                *match key {
                    "Engine" => &mut t.engine,
                    "FileSize" => &mut t.file_size,
                    "EntryPoint" => &mut t.entry_point,
                    _ => &mut t.number_of_sections,
                } = Some(r);
            }
            "IconGroup1" => t.icon_group1 = Some(value),
            "IconGroup2" => t.icon_group2 = Some(value),
            "Container" | "HandlerType" => {
                if !known_type(value) {
                    return Ok(Tdb::Skip(SKIP_UNKNOWN_ATTRIBUTE));
                }
                if key == "Container" {
                    t.container = Some(value);
                } else {
                    t.handler_type = Some(value);
                }
            }
            _ => {
                let types: Vec<&str> = value.split('>').take(MAX_INTERMEDIATES).collect();
                if !types.iter().all(|v| known_type(v)) {
                    return Ok(Tdb::Skip(SKIP_UNKNOWN_ATTRIBUTE));
                }
                t.intermediates = types;
            }
        }
    }
    if new_ext && t.engine.is_none_or(|e| e.min < 51) {
        return Err(LdbError::NeedsEngine51);
    }
    if let Some(e) = t.engine
        && (e.min > FUNCTIONALITY_LEVEL || e.max < FUNCTIONALITY_LEVEL)
    {
        return Ok(Tdb::SkipFlevel);
    }
    let Some(target) = target else {
        return Err(LdbError::NoTarget);
    };
    let Some(target) = TargetType::from_number(target) else {
        return Ok(Tdb::Skip(SKIP_TARGET));
    };
    t.target = target;
    if (t.icon_group1.is_some() || t.icon_group2.is_some()) && target != TargetType::Pe {
        return Err(LdbError::IconGroupNeedsPe);
    }
    if (t.entry_point.is_some() || t.number_of_sections.is_some())
        && !matches!(target, TargetType::Pe | TargetType::Elf | TargetType::MachO)
    {
        return Err(LdbError::ExeAttributeNeedsExecutable);
    }
    Ok(Tdb::Ok(t))
}

enum SubsigOutcome {
    Error(SubsigError),
    Unsupported(&'static str),
}

impl From<SubsigError> for SubsigOutcome {
    fn from(e: SubsigError) -> SubsigOutcome {
        SubsigOutcome::Error(e)
    }
}

/// An offset of a subsignature, checked against the signature's target as
/// ClamAV's `cli_caloff` does.
fn subsig_offset(text: &str, target: TargetType) -> Result<Offset, SubsigOutcome> {
    let exe = matches!(target, TargetType::Pe | TargetType::Elf | TargetType::MachO);
    if text.is_empty() {
        // ClamAV reads an empty offset as the number 0.
        return Ok(Offset::Absolute { at: 0, shift: 0 });
    }
    match Offset::parse(text) {
        Ok(o) if o.is_executable_relative() && !exe => {
            Err(SubsigError::OffsetNeedsExecutable(text.to_string()).into())
        }
        Ok(o) => Ok(o),
        Err(OffsetError::Unsupported(_)) if text.starts_with("VI") && !exe => {
            Err(SubsigError::OffsetNeedsExecutable(text.to_string()).into())
        }
        Err(OffsetError::Unsupported(why)) => Err(SubsigOutcome::Unsupported(why)),
        Err(e) => Err(SubsigError::Offset(e).into()),
    }
}

fn parse_subsig(text: &str, index: usize, target: TargetType) -> Result<SubSig<'_>, SubsigOutcome> {
    if text.starts_with('$') {
        return parse_macro(text).ok_or(SubsigOutcome::Error(SubsigError::Macro));
    }
    if text.contains('/') {
        return parse_pcre(text, index, target);
    }
    if let (Some(_), Some(first), Some(last)) = (text.find('('), text.find('#'), text.rfind('#'))
        && first != last
    {
        return parse_byte_compare(text)
            .map(SubSig::ByteCompare)
            .map_err(|e| SubsigError::ByteCompare(e).into());
    }
    if let Some(rest) = text.strip_prefix("fuzzy_img#") {
        return parse_fuzzy(rest).ok_or(SubsigOutcome::Error(SubsigError::FuzzyImage));
    }
    let f = ldb_fields(text, b':', 0);
    // ClamAV: sig, off:sig, sig::mods, off:sig::mods (the field between is ignored).
    let (offset, sig, mods) = match f.as_slice() {
        [sig] => (None, *sig, ""),
        [off, sig] => (Some(*off), *sig, ""),
        [sig, "", mods] => (None, *sig, *mods),
        [off, sig, "", mods] => (Some(*off), *sig, *mods),
        _ => return Err(SubsigError::FieldCount.into()),
    };
    let mut modifiers = Modifiers::default();
    for c in mods.chars() {
        match c {
            'i' => modifiers.nocase = true,
            'w' => modifiers.wide = true,
            'a' => modifiers.ascii = true,
            'f' => modifiers.fullword = true,
            c => return Err(SubsigError::Modifier(c).into()),
        }
    }
    let offset = offset.map(|o| subsig_offset(o, target));
    let (pattern, ascii) = modified_patterns(sig, modifiers)?;
    let offset = match offset {
        None => Offset::Any,
        Some(o) => o?,
    };
    Ok(SubSig::Hex(HexSubSig {
        offset,
        pattern,
        ascii,
        modifiers,
    }))
}

/// The patterns ClamAV's `cli_sigopts_handler` compiles for `sig` under
/// `m`: the main one, and with `w` and `a` the narrow one too.
fn modified_patterns(
    sig: &str,
    m: Modifiers,
) -> Result<(HexPattern, Option<HexPattern>), SubsigError> {
    // An error is reported on the text as written when that text is wrong
    // too, so its column points into the line.
    let parse = |text: &str| -> Result<HexPattern, SubsigError> {
        HexPattern::parse(text).map_err(|e| match HexPattern::parse(sig) {
            Err(orig) => SubsigError::Hex(orig),
            Ok(_) => SubsigError::HexModified {
                text: text.to_string(),
                error: e,
            },
        })
    };
    let narrow = if m.fullword {
        fullword_text(sig).ok_or_else(|| SubsigError::HexModified {
            text: sig.to_string(),
            error: HexError {
                column: sig.find('[').map_or(1, |i| i + 1),
                kind: crate::hex::HexErrorKind::MalformedRange(sig.to_string()),
            },
        })?
    } else {
        sig.to_string()
    };
    // With any modifier ClamAV treats every alternative as generic, and a
    // generic alternative cannot be negated.
    let parse = |text: &str| -> Result<HexPattern, SubsigError> {
        let p = parse(text)?;
        if !m.is_empty()
            && let Some(at) = text.find("!(")
            && p.tokens
                .iter()
                .any(|t| matches!(t, crate::hex::Token::Alt { negated: true, .. }))
        {
            return Err(SubsigError::HexModified {
                text: text.to_string(),
                error: HexError {
                    column: at + 1,
                    kind: crate::hex::HexErrorKind::NegatedGeneric,
                },
            });
        }
        Ok(p)
    };
    if !m.wide {
        return Ok((parse(&narrow)?, None));
    }
    let Some(wide) = wide_text(&narrow) else {
        return Err(SubsigError::HexModified {
            text: narrow.clone(),
            error: HexError {
                column: narrow.len(),
                kind: crate::hex::HexErrorKind::UnclosedGroup,
            },
        });
    };
    let pattern = parse(&wide)?;
    let ascii = if m.ascii { Some(parse(&narrow)?) } else { None };
    Ok((pattern, ascii))
}

/// `(W)sig(W)` with every `[x-y]` written `{x-y}` (the pattern is two bytes
/// longer at each end, so a square range would no longer sit next to a
/// single byte). `None` for a `[` without its `]`.
fn fullword_text(sig: &str) -> Option<String> {
    let mut out = String::with_capacity(sig.len() + 6);
    out.push_str("(W)");
    let mut open = false;
    for c in sig.chars() {
        match c {
            '[' => {
                out.push('{');
                open = true;
            }
            ']' if open => {
                out.push('}');
                open = false;
            }
            c => out.push(c),
        }
    }
    if open {
        return None;
    }
    out.push_str("(W)");
    Some(out)
}

/// The wide form of a hex signature, as ClamAV writes it: each byte (two
/// characters, wildcards included) followed by `00`; `*`, `|`, `)` and
/// `{..}` copied; `[x-y]` written `{x-y}`; `(B)`, `(L)`, `(W)` kept.
/// `None` where ClamAV refuses (a `(` or `!(` at the very end, a class
/// without its `)`).
fn wide_text(sig: &str) -> Option<String> {
    let b = sig.as_bytes();
    let mut out = String::with_capacity(b.len() * 2);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c @ (b'*' | b'|' | b')') => out.push(char::from(c)),
            b'[' => {
                out.push('{');
                i += 1;
                while i < b.len() && b[i] != b']' {
                    out.push(char::from(b[i]));
                    i += 1;
                }
                out.push('}');
            }
            b'{' => {
                while i < b.len() && b[i] != b'}' {
                    out.push(char::from(b[i]));
                    i += 1;
                }
                out.push('}');
            }
            c @ (b'!' | b'(') => {
                if c == b'!' {
                    out.push('!');
                    i += 1;
                }
                out.push(char::from(*b.get(i)?));
                if i + 2 >= b.len() {
                    return None;
                }
                if matches!(b[i + 1], b'B' | b'L' | b'W') {
                    out.push(char::from(b[i + 1]));
                    if b[i + 2] != b')' {
                        return None;
                    }
                    out.push(')');
                    i += 2;
                }
            }
            c => {
                out.push(char::from(c));
                if let Some(&d) = b.get(i + 1) {
                    out.push(char::from(d));
                }
                out.push_str("00");
                i += 1;
            }
        }
        i += 1;
    }
    Some(out)
}

fn parse_macro(text: &str) -> Option<SubSig<'_>> {
    let inner = text.strip_prefix("${")?.strip_suffix('$')?;
    let (range, group) = inner.split_once('}')?;
    let (min, max) = range.split_once('-')?;
    let num = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (min, max, group) = (num(min)?, num(max)?, num(group)?);
    (group < MAX_MACRO_GROUPS).then_some(SubSig::Macro { min, max, group })
}

fn parse_fuzzy(rest: &str) -> Option<SubSig<'_>> {
    let (hash, dist) = match rest.split_once('#') {
        Some((h, d)) => (h, Some(d)),
        None => (rest, None),
    };
    if hash.len() != 16 {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (o, pair) in bytes.iter_mut().zip(hash.as_bytes().chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    // ClamAV 1.4 matches exact hashes only and refuses any other distance.
    let distance = match dist {
        None => 0,
        Some(d) if !d.is_empty() && d.bytes().all(|b| b == b'0') => 0,
        Some(_) => return None,
    };
    Some(SubSig::FuzzyImage {
        hash: bytes,
        distance,
    })
}

fn parse_pcre(text: &str, index: usize, target: TargetType) -> Result<SubSig<'_>, SubsigOutcome> {
    let f = ldb_fields(text, b':', 0);
    // ClamAV: two fields are offset and signature; otherwise the first field
    // is the signature and the rest is ignored (`0/abc/::i` loads as `0/abc/`).
    let (offset, sig) = match f.as_slice() {
        [off, sig] => (Some(*off), *sig),
        _ => (None, f.first().copied().unwrap_or("")),
    };
    let (Some(open), Some(close)) = (sig.find('/'), sig.rfind('/')) else {
        return Err(SubsigError::PcreDelimiters.into());
    };
    if open == close {
        return Err(SubsigError::PcreDelimiters.into());
    }
    if text.starts_with('/') {
        return Err(SubsigError::PcreNoTrigger.into());
    }
    let (trigger, regex, flags) = (&sig[..open], &sig[open + 1..close], &sig[close + 1..]);
    if trigger.is_empty() {
        return Err(SubsigError::PcreNoTrigger.into());
    }
    if regex.is_empty() {
        return Err(SubsigError::PcreEmpty.into());
    }
    let trigger = LogicExpr::parse(trigger).map_err(SubsigError::PcreTrigger)?;
    if usize::from(trigger.max_id()) >= index {
        return Err(SubsigError::PcreTriggerForward(trigger.max_id()).into());
    }
    let offset = match offset {
        Some(o) => subsig_offset(o, target)?,
        None => Offset::Any,
    };
    let mut fl = PcreFlags::default();
    for c in flags.chars() {
        match c {
            'g' => fl.global = true,
            'r' => fl.rolling = true,
            'e' => fl.encompass = true,
            'i' => fl.caseless = true,
            's' => fl.dotall = true,
            'm' => fl.multiline = true,
            'x' => fl.extended = true,
            'A' => fl.anchored = true,
            'E' => fl.dollar_endonly = true,
            'U' => fl.ungreedy = true,
            c => return Err(SubsigError::PcreFlag(c).into()),
        }
    }
    Ok(SubSig::Pcre(PcreSubSig {
        offset,
        trigger,
        regex,
        flags: fl,
    }))
}

/// A C `strtol(s, _, 0)` number that must use all of `s`: leading white
/// space, an optional sign, then decimal, `0x` hex or `0` octal; saturating
/// as `strtol` does. Empty is 0, as ClamAV reads it.
fn c_number(s: &str) -> Option<i64> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if s.is_empty() {
        return Some(0);
    }
    if body.is_empty() && radix != 8 {
        return None;
    }
    let mut v: i128 = 0;
    for c in body.chars() {
        let d = c.to_digit(radix)?;
        v = (v * i128::from(radix) + i128::from(d)).min(i128::from(i64::MAX) + 1);
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// `Trigger(Offset#Options#Comparisons)`, as ClamAV's `cli_bcomp_addpatt`.
fn parse_byte_compare(text: &str) -> Result<ByteCompare, String> {
    let Some(open) = text.find('(') else {
        return Err("missing '('".into());
    };
    let trig = &text[..open];
    if trig.is_empty() || !trig.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("trigger {trig:?} is not a subsignature index"));
    }
    let trigger = match trig.parse::<u32>() {
        Ok(t) if t as usize <= MAX_SUBSIGS => t as u8,
        _ => return Err(format!("trigger {trig} is above {MAX_SUBSIGS}")),
    };
    let Some(close) = text[open..].find(')').map(|p| open + p) else {
        return Err("missing ')'".into());
    };
    if close + 1 != text.len() {
        return Err("text after ')'".into());
    }
    let params: Vec<&str> = text[open + 1..close].split('#').collect();
    let [off, opts, comps] = params.as_slice() else {
        return Err(format!(
            "{} '#'-separated parameters, 3 expected",
            params.len()
        ));
    };
    let offset = if let Some(n) = off.strip_prefix(">>") {
        c_number(n).ok_or_else(|| format!("offset {off:?} is not a number"))?
    } else if let Some(n) = off.strip_prefix("<<") {
        c_number(n)
            .ok_or_else(|| format!("offset {off:?} is not a number"))?
            .wrapping_neg()
    } else if off.is_empty() || off.starts_with('0') {
        // ClamAV reads any offset starting with 0 as 0.
        0
    } else {
        return Err(format!("offset {off:?} must be >>n, <<n or 0"));
    };
    let mut format = None;
    let mut endian = None;
    let mut exact = false;
    let digits_at = opts
        .bytes()
        .position(|b| b.is_ascii_digit())
        .ok_or_else(|| format!("options {opts:?} have no byte length"))?;
    for c in opts[..digits_at].chars() {
        // ClamAV's table: the same option twice is no clash.
        let other_format = |f: ByteFormat| format.is_some_and(|g| g != f);
        let clash = match c {
            'h' => other_format(ByteFormat::Hex),
            'i' => other_format(ByteFormat::Binary),
            'a' => other_format(ByteFormat::Auto),
            'd' => other_format(ByteFormat::Decimal) || endian == Some(Endian::Little),
            'l' => endian == Some(Endian::Big) || format == Some(ByteFormat::Decimal),
            'b' => endian == Some(Endian::Little),
            'e' => false,
            _ => return Err(format!("unknown option {c:?}")),
        };
        if clash {
            return Err(format!("option {c:?} conflicts with an earlier one"));
        }
        match c {
            'h' => format = Some(ByteFormat::Hex),
            'i' => format = Some(ByteFormat::Binary),
            'a' => format = Some(ByteFormat::Auto),
            'd' => {
                format = Some(ByteFormat::Decimal);
                endian = Some(Endian::Big);
            }
            'l' => endian = Some(Endian::Little),
            'b' => endian = Some(Endian::Big),
            _ => exact = true,
        }
    }
    let len_text = &opts[digits_at..];
    let length = c_number(len_text)
        .filter(|&n| n > 0 && n <= i64::from(u32::MAX))
        .ok_or_else(|| format!("byte length {len_text:?} is not a positive number"))?
        as u32;
    if format == Some(ByteFormat::Binary) && !matches!(length, 1 | 2 | 4 | 8) {
        return Err(format!("binary byte length {length} is not 1, 2, 4 or 8"));
    }
    if format == Some(ByteFormat::Hex) && length > 18 {
        return Err(format!("hex byte length {length} is above 18"));
    }
    let parts: Vec<&str> = comps.split(',').collect();
    if parts.len() > 2 {
        return Err("more than two comparisons".into());
    }
    let mut comparisons = Vec::with_capacity(parts.len());
    for p in parts {
        let cmp = match p.as_bytes().first() {
            Some(b'<') => CountCmp::Lt,
            Some(b'>') => CountCmp::Gt,
            Some(b'=') => CountCmp::Eq,
            _ => return Err(format!("comparison {p:?} must start with <, > or =")),
        };
        let v = c_number(&p[1..])
            .ok_or_else(|| format!("comparison value {:?} is not a number", &p[1..]))?;
        comparisons.push((cmp, v));
    }
    Ok(ByteCompare {
        trigger,
        offset,
        format,
        endian,
        exact,
        length,
        comparisons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> LogicExpr {
        LogicExpr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn eval(s: &str, counts: &[u32]) -> bool {
        expr(s).eval(counts)
    }

    #[test]
    fn splits_like_clamav() {
        // Top level: at the first operator.
        assert_eq!(expr("0&1|2").to_string(), "(0&(1|2))");
        // In a block: at the last operator of depth one.
        assert_eq!(expr("(0|1&2)").to_string(), "((0|1)&2)");
        assert_eq!(expr("((0|1))").to_string(), "(0|1)");
        assert_eq!(expr("(0)").to_string(), "0");
        assert_eq!(expr("(0|1|2)>2,1").to_string(), "((0|1)|2)>2,1");
        // The mixing matters: 0|(1&2) differs from (0|1)&2.
        assert!(eval("0|1&2", &[1, 0, 0]));
        assert!(!eval("(0|1&2)", &[1, 0, 0]));
    }

    #[test]
    fn expression_errors() {
        let k = |s: &str| LogicExpr::parse(s).unwrap_err().kind;
        assert_eq!(k(""), ExprErrorKind::Empty);
        assert_eq!(k("0)"), ExprErrorKind::UnexpectedClose);
        assert_eq!(k("(0"), ExprErrorKind::Unclosed);
        assert_eq!(k("&0"), ExprErrorKind::MissingLeft);
        assert_eq!(k("0&"), ExprErrorKind::MissingRight);
        assert_eq!(k("0="), ExprErrorKind::MissingNumber('='));
        assert_eq!(k("(0|1)>"), ExprErrorKind::MissingNumber('>'));
        assert_eq!(k("(0|1)>,2"), ExprErrorKind::MissingNumber('>'));
        assert_eq!(k("0(1)2"), ExprErrorKind::BadOperand("0(1)2".into()));
        assert_eq!(k("-1"), ExprErrorKind::IndexTooLarge("-1".into()));
        assert_eq!(k("a"), ExprErrorKind::BadOperand("a".into()));
        assert_eq!(k("64"), ExprErrorKind::IndexTooLarge("64".into()));
        assert_eq!(k("()"), ExprErrorKind::Empty);
        // ClamAV strips one pair of parentheses, leaving `0)=`.
        assert_eq!(k("(0)=2"), ExprErrorKind::UnexpectedClose);
        // Parentheses alone cost nothing; operations nest at most MAX_EXPR_DEPTH.
        let parens = format!("{}0{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(expr(&parens), LogicExpr::Sub { id: 0, count: None });
        let chain = vec!["0"; MAX_EXPR_DEPTH + 1].join("&");
        assert_eq!(k(&chain), ExprErrorKind::TooDeep);
        let chain = vec!["0"; MAX_EXPR_DEPTH - 1].join("|");
        assert!(eval(&chain, &[1]));
        assert_eq!(LogicExpr::parse("0&1&").unwrap_err().column, 4);
    }

    #[test]
    fn reads_numbers_as_clamav_sscanf() {
        // What ClamAV's sscanf skips or ignores, and how it wraps.
        assert_eq!(expr(" 1"), LogicExpr::Sub { id: 1, count: None });
        assert_eq!(expr("+1x"), LogicExpr::Sub { id: 1, count: None });
        let c = |e: &str| match expr(e) {
            LogicExpr::Sub { count, .. } => count,
            LogicExpr::Op { count, .. } => count,
        };
        assert_eq!(c("0=-1").map(|c| c.n), Some(u32::MAX));
        assert_eq!(c("0>4294967296").map(|c| c.n), Some(0));
        assert_eq!(c("0=1=2").map(|c| c.n), Some(2));
        assert_eq!(c("0>1,5").and_then(|c| c.distinct), None);
        assert_eq!(c("(0|1)=2,").map(|c| (c.n, c.distinct)), Some((2, None)));
        assert_eq!(
            c("(0|1)>2,2,3").map(|c| (c.n, c.distinct)),
            Some((2, Some(2)))
        );
    }

    #[test]
    fn single_counts() {
        // (expression, counts, expected)
        let table: &[(&str, &[u32], bool)] = &[
            ("0", &[0], false),
            ("0", &[1], true),
            ("0", &[], false),
            ("0=0", &[0], true),
            ("0=0", &[1], false),
            ("0=2", &[2], true),
            ("0=2", &[3], false),
            ("0>2", &[2], false),
            ("0>2", &[3], true),
            ("0<2", &[1], true),
            ("0<2", &[0], true),
            ("0<2", &[2], false),
            // `,m` after a single subsignature is read and ignored.
            ("0>1,5", &[2], true),
            ("0=2,3", &[2], true),
            ("0<3,9", &[2], true),
        ];
        for (e, c, want) in table {
            assert_eq!(eval(e, c), *want, "{e} on {c:?}");
        }
    }

    #[test]
    fn block_counts() {
        let table: &[(&str, &[u32], bool)] = &[
            // Sum of the matches of the parts that held.
            ("(0|1)=3", &[1, 2], true),
            ("(0|1)=3", &[3, 0], true),
            ("(0|1)=3", &[1, 1], false),
            ("(0|1)>2", &[1, 2], true),
            ("(0|1)>2", &[1, 1], false),
            ("(0|1)<2", &[1, 0], true),
            ("(0|1)<2", &[1, 1], false),
            // A block that does not hold counts 0: `<n` and `=0` then hold.
            ("(0|1)<2", &[0, 0], true),
            ("(0&1)=0", &[5, 0], true),
            ("(0&1)=0", &[5, 1], false),
            // `,m`: at least m different subsignatures.
            ("(0|1)>2,2", &[3, 0], false),
            ("(0|1)>2,2", &[2, 1], true),
            ("(0|1)=4,2", &[4, 0], false),
            ("(0|1)=4,2", &[2, 2], true),
            ("(0|1)<5,2", &[1, 1], true),
            ("(0|1)<5,2", &[0, 1], false),
            ("(0|1|2)>5,2", &[6, 0, 0], false),
            ("(0|1|2)>5,2", &[5, 1, 0], true),
            // `,0` is no condition (ClamAV tests `if (m)`).
            ("(0|1)>2,0", &[3, 0], true),
            // A subsignature counted by `=0` holds and counts as seen for `,m`.
            ("(0=0|1)=2,2", &[0, 2], true),
            // A block with a count passes its count up but not its subsignatures.
            ("((0|1)>0|2)=3,2", &[1, 1, 1], false),
            ("((0|1)>0|2)=3,1", &[1, 1, 1], true),
            ("((0|1)|2)=3,3", &[1, 1, 1], true),
        ];
        for (e, c, want) in table {
            assert_eq!(eval(e, c), *want, "{e} on {c:?}");
        }
    }

    #[test]
    fn documented_examples_evaluate() {
        // Sig2: ((0|1|2)>5,2)&(3|1)
        let e = expr("((0|1|2)>5,2)&(3|1)");
        assert!(e.eval(&[3, 3, 0, 1]));
        assert!(!e.eval(&[6, 0, 0, 1]));
        assert!(e.eval(&[3, 3, 0, 0]));
        assert!(!e.eval(&[3, 0, 3, 0]));
        // Sig3: ((0|1|2|3)=2)&(4|1)
        let e = expr("((0|1|2|3)=2)&(4|1)");
        assert!(e.eval(&[1, 0, 0, 1, 1]));
        assert!(!e.eval(&[1, 0, 0, 2, 1]));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "0",
            "0&1|2",
            "(0|1&2)",
            "((0|1|2)>5,2)&(3|1)",
            "(0|1)=0",
            "0=2&1<3,1",
            "((0|1)&(2|3))&4",
        ] {
            let e = expr(s);
            let again = expr(&e.to_string());
            assert_eq!(e, again, "{s} -> {e}");
        }
    }

    #[test]
    fn pcre_backtracking_hints() {
        fn p(r: &str) -> PcreSubSig<'_> {
            PcreSubSig {
                offset: Offset::Any,
                trigger: LogicExpr::Sub { id: 0, count: None },
                regex: r,
                flags: PcreFlags::default(),
            }
        }
        assert_eq!(p("a(?=b)").needs_backtracking(), Some("lookaround"));
        assert_eq!(p("(?<!x)y").needs_backtracking(), Some("lookaround"));
        assert_eq!(p("(a)\\1").needs_backtracking(), Some("backreference"));
        assert_eq!(p("a++").needs_backtracking(), Some("possessive quantifier"));
        assert_eq!(p("(?>ab)").needs_backtracking(), Some("atomic group"));
        assert_eq!(p("a.*?\\x2Eb(?:c|d)").needs_backtracking(), None);
        assert_eq!(p("(?<name>.{16})end").needs_backtracking(), None);
    }

    #[test]
    fn modifiers_rewrite_the_pattern_as_clamav() {
        assert_eq!(
            wide_text("aa??[1-2]bb*cc{3}(dd|ee)!(B)").as_deref(),
            Some("aa00??00{1-2}bb00*cc00{3}(dd00|ee00)!(B)")
        );
        assert_eq!(wide_text("aabb("), None);
        assert_eq!(wide_text("aabb(Bx)cc"), None);
        assert_eq!(
            fullword_text("aa[1-2]bbcc").as_deref(),
            Some("(W)aa{1-2}bbcc(W)")
        );
        assert_eq!(fullword_text("aa[1-2bbcc"), None);
        let m = |s: &str| Modifiers {
            nocase: s.contains('i'),
            wide: s.contains('w'),
            ascii: s.contains('a'),
            fullword: s.contains('f'),
        };
        // A single byte is too short alone, not once widened.
        assert!(modified_patterns("61", m("")).is_err());
        let (p, a) = modified_patterns("61", m("w")).unwrap();
        assert_eq!(p.to_string(), "6100");
        assert!(a.is_none());
        assert!(modified_patterns("61", m("wa")).is_err());
        let (p, a) = modified_patterns("6162", m("wfa")).unwrap();
        assert_eq!(p.to_string(), "(W)61006200(W)");
        assert_eq!(a.map(|a| a.to_string()).as_deref(), Some("(W)6162(W)"));
        // Modifiers make alternatives generic, which cannot be negated.
        assert!(modified_patterns("aabb!(cc|dd)eeff", m("")).is_ok());
        assert!(matches!(
            modified_patterns("aabb!(cc|dd)eeff", m("i")),
            Err(SubsigError::HexModified { .. })
        ));
    }

    /// The target description of `S;{t};0;aabbcc`, with its names owned.
    fn tdb(t: &str) -> TargetDescription<'static> {
        let line = format!("S;{t};0;aabbcc");
        let own = |s: Option<&str>| s.map(|s| -> &'static str { names(s) });
        match parse_logical_line(&line) {
            Ok(Parsed::Record(sig)) => TargetDescription {
                container: own(sig.tdb.container),
                handler_type: own(sig.tdb.handler_type),
                icon_group1: own(sig.tdb.icon_group1),
                icon_group2: own(sig.tdb.icon_group2),
                intermediates: sig.tdb.intermediates.iter().map(|s| names(s)).collect(),
                ..sig.tdb
            },
            other => panic!("{t}: {other:?}"),
        }
    }

    /// The test's strings, as `'static` ones (a fixed list, nothing leaked).
    fn names(s: &str) -> &'static str {
        const ALL: &[&str] = &["a", "b"];
        FILE_TYPE_NAMES
            .iter()
            .chain(ALL)
            .find(|n| **n == s)
            .copied()
            .unwrap_or_else(|| panic!("unexpected name {s}"))
    }

    #[test]
    fn target_description_fields() {
        let t = tdb(
            "Engine:51-255,Target:1,FileSize:10-20,EntryPoint:0-4096,NumberOfSections:1-8,\
             Container:CL_TYPE_ZIP,IconGroup1:a,IconGroup2:b,HandlerType:CL_TYPE_PDF",
        );
        assert_eq!(t.engine, Some(Range { min: 51, max: 255 }));
        assert_eq!(t.target, TargetType::Pe);
        assert_eq!(t.file_size, Some(Range { min: 10, max: 20 }));
        assert!(
            t.file_size
                .is_some_and(|r| r.contains(20) && !r.contains(21))
        );
        assert_eq!(t.entry_point, Some(Range { min: 0, max: 4096 }));
        assert_eq!(t.number_of_sections, Some(Range { min: 1, max: 8 }));
        assert_eq!(t.container, Some("CL_TYPE_ZIP"));
        assert_eq!((t.icon_group1, t.icon_group2), (Some("a"), Some("b")));
        assert_eq!(t.handler_type, Some("CL_TYPE_PDF"));
        let t = tdb("Engine:51-255,Target:0,Intermediates:CL_TYPE_ZIP>CL_TYPE_ANY>CL_TYPE_GZ");
        assert_eq!(
            t.intermediates,
            ["CL_TYPE_ZIP", "CL_TYPE_ANY", "CL_TYPE_GZ"]
        );
        // The last Target wins; an empty number is 0; atoi truncates.
        assert_eq!(tdb("Target:1,Target:").target, TargetType::Any);
        let t = tdb("Engine:51-255,Target:0,FileSize:-99999999999");
        assert_eq!(
            t.file_size,
            Some(Range {
                min: 0,
                max: 1215752191
            })
        );
        // Only the first 10 attributes are read.
        let many = format!(
            "Engine:51-255,Target:0{},Bogus:1",
            ",FileSize:1-2".repeat(8)
        );
        assert_eq!(tdb(&many).file_size, Some(Range { min: 1, max: 2 }));
        // Skips, not errors.
        for (t, want) in [
            (
                "Engine:51-255,Target:0,Bogus:1",
                Parsed::Unsupported(SKIP_UNKNOWN_ATTRIBUTE),
            ),
            (
                "Engine:51-255,Target:0,Container:CL_TYPE_X",
                Parsed::Unsupported(SKIP_UNKNOWN_ATTRIBUTE),
            ),
            ("Target:15", Parsed::Unsupported(SKIP_TARGET)),
            ("Engine:217-255,Target:0", Parsed::SkippedFlevel),
            ("Engine:1-209,Target:0", Parsed::SkippedFlevel),
        ] {
            let line = format!("S;{t};0;aabbcc");
            assert_eq!(parse_logical_line(&line), Ok(want), "{t}");
        }
    }

    #[test]
    fn byte_compare_fields() {
        let b = parse_byte_compare("0(>>26#ib2#>512)").unwrap();
        assert_eq!(
            b,
            ByteCompare {
                trigger: 0,
                offset: 26,
                format: Some(ByteFormat::Binary),
                endian: Some(Endian::Big),
                exact: false,
                length: 2,
                comparisons: vec![(CountCmp::Gt, 512)],
            }
        );
        let b = parse_byte_compare("1(<<0x10#hle4#>0x20,<-3)").unwrap();
        assert_eq!(b.offset, -16);
        assert_eq!(b.comparisons, vec![(CountCmp::Gt, 32), (CountCmp::Lt, -3)]);
        assert!(b.exact);
        for bad in [
            "0(>>1#ib3#=1)",
            "0(>>1#dl2#=1)",
            "0(>>1#hd2#=1)",
            "0(>>1#h19#=1)",
            "0(>>1#h0#=1)",
            "0(>1#h2#=1)",
            "0(>>1#h2#=1,=2,=3)",
            "0(>>1#h2#!1)",
            "0(>>1#h2)",
            "x(>>1#h2#=1)",
            "65(>>1#h2#=1)",
            "0(>>1#h2#=1)x",
            "0(>>1#q2#=1)",
        ] {
            assert!(parse_byte_compare(bad).is_err(), "{bad}");
        }
    }
}
