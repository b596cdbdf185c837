//! ClamAV hex signatures (`HexSignature` in `.ndb` lines): the pattern language.
//!
//! The parser turns the text into a flat list of [`Token`]s and checks what ClamAV
//! checks (balanced groups, legal ranges, equal-length negated alternatives); it does
//! no matching. The engine decides anchors and verification from the tokens.

/// One byte compared under a mask: `4d` is mask `0xff`, `4?` mask `0xf0`,
/// `?d` mask `0x0f`, `??` mask `0x00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteMatch {
    pub value: u8,
    pub mask: u8,
}

impl ByteMatch {
    pub const fn exact(value: u8) -> ByteMatch {
        ByteMatch { value, mask: 0xff }
    }

    pub const ANY: ByteMatch = ByteMatch { value: 0, mask: 0 };

    #[inline]
    pub fn matches(self, b: u8) -> bool {
        b & self.mask == self.value & self.mask
    }

    pub fn is_exact(self) -> bool {
        self.mask == 0xff
    }
}

/// ClamAV's character classes `(B)`, `(L)`, `(W)`.
///
/// At either end of a signature they are zero-width checks on the byte just
/// outside the match (a file boundary counts as a boundary); inside a signature
/// they consume the byte(s) they describe: `(B)` one boundary byte, `(L)` `\n`
/// or `\r\n`, `(W)` one non-alphanumeric byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CharClass {
    /// `(B)`: word boundary.
    Boundary,
    /// `(L)`: CR, CRLF or file boundary.
    Line,
    /// `(W)`: a non-alphanumeric byte.
    NonAlnum,
}

/// One element of a hex signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token {
    /// A byte under a mask.
    Byte(ByteMatch),
    /// Any `min..=max` bytes (`max: None` = unbounded): `*` is `{0-}`,
    /// `{n}`, `{-n}`, `{n-}`, `{n-m}` and `[n-m]` as written.
    Gap { min: u32, max: Option<u32> },
    /// `(aa|bb|ccdd)` or `!(aa|bb)`: one of the branches (or, negated, any byte
    /// string of the branches' common length that is none of them).
    /// Branches of generic alternates may hold masked bytes; a `{n}` inside a
    /// branch is expanded to `n` any-bytes by the parser.
    Alt {
        branches: Vec<Vec<ByteMatch>>,
        negated: bool,
    },
    /// `(B)`, `(L)`, `(W)`, or their negation `!(B)` etc.
    Class { class: CharClass, negated: bool },
}

/// A parsed hex signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HexPattern {
    pub tokens: Vec<Token>,
}

/// ClamAV's limit on `[x-y]` ranges (`AC_CH_MAXDIST`).
pub const SQUARE_RANGE_MAX: u32 = 32;
/// `{n}` with `1 <= n < 128` is a run of `??`s rather than a split (ClamAV's rule).
pub const FIXED_GAP_INLINE_LIMIT: u32 = 128;
/// How deep `(` groups may nest (ClamAV's `ACPATT_ALTN_MAXNEST`).
pub const MAX_GROUP_NESTING: usize = 15;
/// How many branches a generic alternate may expand to. ClamAV has no limit and
/// expands nested groups eagerly; we bound it so a hostile line cannot exhaust memory.
pub const MAX_ALT_BRANCHES: usize = 4096;
/// How many bytes the branches of all alternative groups of one pattern may
/// hold together once expanded (nested groups multiply, `{k}` repeats).
pub const MAX_ALT_BYTES: usize = 1 << 20;
/// The largest number a range may hold; ClamAV reads them into a C `int`.
pub const MAX_RANGE_VALUE: u32 = i32::MAX as u32;

/// A hex signature that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at column {column}")]
pub struct HexError {
    /// 1-based byte position in the hex signature where the problem starts.
    pub column: usize,
    pub kind: HexErrorKind,
}

/// What is wrong with a hex signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexErrorKind {
    #[error("empty hex signature")]
    Empty,
    #[error("odd number of hex digits")]
    OddNibbles,
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("missing closing parenthesis")]
    UnclosedGroup,
    #[error("unexpected closing parenthesis")]
    UnexpectedClose,
    #[error("'|' outside of an alternative group")]
    BarOutsideGroup,
    #[error("empty group '()'")]
    EmptyGroup,
    #[error("empty alternative in a group")]
    EmptyAlternative,
    #[error("'!' must be followed by '('")]
    LoneNegation,
    #[error("groups nested deeper than {MAX_GROUP_NESTING}")]
    TooDeep,
    #[error("alternatives expand to more than {MAX_ALT_BRANCHES} branches")]
    TooManyBranches,
    #[error("alternatives expand to more than {MAX_ALT_BYTES} bytes")]
    AlternativesTooLarge,
    #[error(
        "negation applies only to alternatives of plain bytes with equal length (generic alternates cannot be negated)"
    )]
    NegatedGeneric,
    #[error("character class (B), (L), (W) inside an alternative")]
    ClassInAlternative,
    #[error("{0} inside an alternative (only {{n}} with n < 128 is allowed there)")]
    WildcardInAlternative(&'static str),
    #[error("malformed range {0:?}")]
    MalformedRange(String),
    #[error("range {min}-{max} has its lower bound above its upper bound")]
    ReversedRange { min: u32, max: u32 },
    #[error("number in range is larger than {MAX_RANGE_VALUE}")]
    RangeTooLarge,
    #[error("[x-y] range upper bound {0} is above {SQUARE_RANGE_MAX}")]
    SquareRangeTooLarge(u32),
    #[error("[x-y] range needs a single byte on one side of it")]
    SquareRangeSide,
    #[error("more than two [x-y] ranges in one sub-signature")]
    TooManySquareRanges,
    #[error("sub-signature has no two consecutive fixed bytes (ClamAV needs them to index it)")]
    NoStaticBytes,
    #[error(
        "sub-signature needs two bytes (or single-byte alternatives) before its first \
         multi-byte alternative or character class (ClamAV's prefilter)"
    )]
    NoPrefilterStart,
    #[error("empty sub-signature (a '*' or range at the start or end, or two in a row)")]
    EmptyPart,
}

impl HexError {
    fn new(column0: usize, kind: HexErrorKind) -> HexError {
        HexError {
            column: column0 + 1,
            kind,
        }
    }
}

/// A parsed element before validation; keeps what the public tokens lose
/// (which syntax a gap was written in, where things are) for ClamAV's checks.
#[derive(Debug)]
enum Item {
    Byte(ByteMatch),
    /// `{n}` with `1 <= n < 128`: n any-bytes, not a split.
    InlineGap(u32),
    /// `*`, `{..}`: splits the signature into sub-signatures.
    SplitGap {
        min: u32,
        max: Option<u32>,
    },
    /// `[x-y]`.
    Square {
        min: u32,
        max: u32,
    },
    Alt {
        branches: Vec<Vec<ByteMatch>>,
        negated: bool,
    },
    Class {
        class: CharClass,
        negated: bool,
    },
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    /// Bytes held by the expanded branches of the groups parsed so far.
    alt_bytes: usize,
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn err<T>(&self, at: usize, kind: HexErrorKind) -> Result<T, HexError> {
        Err(HexError::new(at, kind))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// One byte: two of `0-9a-fA-F?`.
    fn byte(&mut self) -> Result<ByteMatch, HexError> {
        let start = self.pos;
        let hi = self.s.get(start).copied();
        let lo = self.s.get(start + 1).copied();
        let half = |c: Option<u8>| match c {
            Some(b'?') => Some((0u8, 0u8)),
            Some(c) => nibble(c).map(|v| (v, 0xf)),
            None => None,
        };
        let (Some((hv, hm)), Some((lv, lm))) = (half(hi), half(lo)) else {
            // The first character is a nibble (callers check); the second is not.
            return match lo {
                None => self.err(start, HexErrorKind::OddNibbles),
                Some(c) if is_syntax(c) => self.err(start, HexErrorKind::OddNibbles),
                Some(c) => self.err(start + 1, HexErrorKind::UnexpectedChar(char::from(c))),
            };
        };
        self.pos += 2;
        Ok(ByteMatch {
            value: (hv << 4) | lv,
            mask: (hm << 4) | lm,
        })
    }

    /// A decimal number of at most `MAX_RANGE_VALUE`.
    fn number(&mut self) -> Option<Result<u32, HexError>> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        let mut v: u64 = 0;
        for &c in &self.s[start..self.pos] {
            v = v * 10 + u64::from(c - b'0');
            if v > u64::from(MAX_RANGE_VALUE) {
                return Some(self.err(start, HexErrorKind::RangeTooLarge));
            }
        }
        Some(Ok(v as u32))
    }

    fn range_text(&self, start: usize, close: u8) -> String {
        let end = self.s[start..]
            .iter()
            .position(|&c| c == close)
            .map_or(self.s.len(), |p| start + p + 1);
        String::from_utf8_lossy(&self.s[start..end]).into_owned()
    }

    /// `{n}`, `{-n}`, `{n-}`, `{n-m}` after the `{`.
    fn brace(&mut self, start: usize) -> Result<Item, HexError> {
        let malformed = |p: &Self| {
            p.err(
                start,
                HexErrorKind::MalformedRange(p.range_text(start, b'}')),
            )
        };
        let min = self.number().transpose()?;
        let item = if self.peek() == Some(b'-') {
            self.pos += 1;
            let max = self.number().transpose()?;
            match (min, max) {
                (None, None) => return malformed(self),
                (min, max) => {
                    let min = min.unwrap_or(0);
                    if let Some(max) = max
                        && min > max
                    {
                        return self.err(start, HexErrorKind::ReversedRange { min, max });
                    }
                    Item::SplitGap { min, max }
                }
            }
        } else {
            match min {
                None => return malformed(self),
                Some(n) if (1..FIXED_GAP_INLINE_LIMIT).contains(&n) => Item::InlineGap(n),
                Some(n) => Item::SplitGap {
                    min: n,
                    max: Some(n),
                },
            }
        };
        if self.peek() != Some(b'}') {
            return malformed(self);
        }
        self.pos += 1;
        Ok(item)
    }

    /// `[n]` or `[n-m]` after the `[`.
    fn square(&mut self, start: usize) -> Result<Item, HexError> {
        let malformed = |p: &Self| {
            p.err(
                start,
                HexErrorKind::MalformedRange(p.range_text(start, b']')),
            )
        };
        let Some(min) = self.number().transpose()? else {
            return malformed(self);
        };
        let max = if self.peek() == Some(b'-') {
            self.pos += 1;
            match self.number().transpose()? {
                Some(m) => m,
                None => return malformed(self),
            }
        } else {
            min
        };
        if self.peek() != Some(b']') {
            return malformed(self);
        }
        self.pos += 1;
        if min > max {
            return self.err(start, HexErrorKind::ReversedRange { min, max });
        }
        if max > SQUARE_RANGE_MAX {
            return self.err(start, HexErrorKind::SquareRangeTooLarge(max));
        }
        Ok(Item::Square { min, max })
    }

    /// A group after its `(` (and `!`): a character class or alternatives.
    fn group(&mut self, start: usize, negated: bool) -> Result<Item, HexError> {
        let class = match self.s.get(self.pos..self.pos + 2) {
            Some(b"B)") => Some(CharClass::Boundary),
            Some(b"L)") => Some(CharClass::Line),
            Some(b"W)") => Some(CharClass::NonAlnum),
            _ => None,
        };
        if let Some(class) = class {
            self.pos += 2;
            return Ok(Item::Class { class, negated });
        }
        let (branches, generic) = self.alternatives(start, 1)?;
        if negated && generic {
            return self.err(start, HexErrorKind::NegatedGeneric);
        }
        Ok(Item::Alt { branches, negated })
    }

    /// Branches of a group up to and including its `)`, nested groups expanded.
    /// Returns whether the group is generic (ClamAV's term: not all branches
    /// plain bytes of one length).
    fn alternatives(
        &mut self,
        open: usize,
        depth: usize,
    ) -> Result<(Vec<Vec<ByteMatch>>, bool), HexError> {
        if depth > MAX_GROUP_NESTING {
            return self.err(open, HexErrorKind::TooDeep);
        }
        if self.peek() == Some(b')') {
            return self.err(open, HexErrorKind::EmptyGroup);
        }
        let mut all: Vec<Vec<ByteMatch>> = Vec::new();
        // Count from what earlier groups of the pattern already hold.
        let mut all_bytes = self.alt_bytes;
        let mut generic = false;
        loop {
            // One branch: a list of alternatives-so-far (cross product with nested groups).
            let mut branch: Vec<Vec<ByteMatch>> = vec![Vec::new()];
            loop {
                let at = self.pos;
                let bytes: usize = branch.iter().map(Vec::len).sum();
                if all_bytes.saturating_add(bytes) > MAX_ALT_BYTES {
                    return self.err(open, HexErrorKind::AlternativesTooLarge);
                }
                match self.peek() {
                    None => return self.err(open, HexErrorKind::UnclosedGroup),
                    Some(b'|') | Some(b')') => break,
                    Some(b'(') => {
                        self.pos += 1;
                        if matches!(
                            self.s.get(self.pos..self.pos + 2),
                            Some(b"B)" | b"L)" | b"W)")
                        ) {
                            return self.err(at, HexErrorKind::ClassInAlternative);
                        }
                        let (inner, _) = self.alternatives(at, depth + 1)?;
                        generic = true;
                        // Size of the product before building it.
                        let inner_bytes: usize = inner.iter().map(Vec::len).sum();
                        let product = inner
                            .len()
                            .saturating_mul(bytes)
                            .saturating_add(branch.len().saturating_mul(inner_bytes));
                        if all_bytes.saturating_add(product) > MAX_ALT_BYTES {
                            return self.err(at, HexErrorKind::AlternativesTooLarge);
                        }
                        let mut next = Vec::with_capacity(branch.len() * inner.len());
                        for prefix in &branch {
                            for alt in &inner {
                                if next.len() >= MAX_ALT_BRANCHES {
                                    return self.err(at, HexErrorKind::TooManyBranches);
                                }
                                let mut b = prefix.clone();
                                b.extend_from_slice(alt);
                                next.push(b);
                            }
                        }
                        branch = next;
                    }
                    Some(b'{') => {
                        self.pos += 1;
                        match self.brace(at)? {
                            Item::InlineGap(n) => {
                                generic = true;
                                let grown = (n as usize).saturating_mul(branch.len());
                                if all_bytes.saturating_add(bytes).saturating_add(grown)
                                    > MAX_ALT_BYTES
                                {
                                    return self.err(at, HexErrorKind::AlternativesTooLarge);
                                }
                                for b in &mut branch {
                                    b.extend(std::iter::repeat_n(ByteMatch::ANY, n as usize));
                                }
                            }
                            _ => {
                                return self.err(
                                    at,
                                    HexErrorKind::WildcardInAlternative("a range other than {n}"),
                                );
                            }
                        }
                    }
                    Some(b'*') => return self.err(at, HexErrorKind::WildcardInAlternative("'*'")),
                    Some(b'[') => {
                        return self.err(at, HexErrorKind::WildcardInAlternative("an [x-y] range"));
                    }
                    Some(b'!') => return self.err(at, HexErrorKind::NegatedGeneric),
                    Some(c) if nibble(c).is_some() || c == b'?' => {
                        let b = self.byte()?;
                        if !b.is_exact() {
                            generic = true;
                        }
                        for br in &mut branch {
                            br.push(b);
                        }
                    }
                    Some(c) => return self.err(at, HexErrorKind::UnexpectedChar(char::from(c))),
                }
            }
            // ClamAV rejects an empty first branch and silently drops a trailing
            // one (so `(aa|)` never matches "nothing"); aether rejects them all.
            if branch.iter().any(Vec::is_empty) {
                return self.err(self.pos, HexErrorKind::EmptyAlternative);
            }
            if all.len() + branch.len() > MAX_ALT_BRANCHES {
                return self.err(open, HexErrorKind::TooManyBranches);
            }
            all_bytes += branch.iter().map(Vec::len).sum::<usize>();
            all.extend(branch);
            let sep = self.peek();
            self.pos += 1;
            if sep == Some(b')') {
                break;
            }
        }
        if depth == 1 {
            self.alt_bytes = all_bytes;
        }
        if let Some(first) = all.first()
            && all.iter().any(|b| b.len() != first.len() || b.is_empty())
        {
            generic = true;
        }
        Ok((all, generic))
    }

    fn items(&mut self) -> Result<Vec<(usize, Item)>, HexError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            let at = self.pos;
            let item = match c {
                b'*' => {
                    self.pos += 1;
                    Item::SplitGap { min: 0, max: None }
                }
                b'{' => {
                    self.pos += 1;
                    self.brace(at)?
                }
                b'[' => {
                    self.pos += 1;
                    self.square(at)?
                }
                b'(' => {
                    self.pos += 1;
                    self.group(at, false)?
                }
                b'!' => {
                    if self.s.get(at + 1) != Some(&b'(') {
                        return self.err(at, HexErrorKind::LoneNegation);
                    }
                    self.pos += 2;
                    self.group(at, true)?
                }
                b')' => return self.err(at, HexErrorKind::UnexpectedClose),
                b'|' => return self.err(at, HexErrorKind::BarOutsideGroup),
                c if nibble(c).is_some() || c == b'?' => Item::Byte(self.byte()?),
                c => {
                    // Report the character, not the byte, for non-ASCII input.
                    let ch = std::str::from_utf8(&self.s[at..])
                        .ok()
                        .and_then(|s| s.chars().next())
                        .unwrap_or(char::from(c));
                    return self.err(at, HexErrorKind::UnexpectedChar(ch));
                }
            };
            items.push((at, item));
        }
        Ok(items)
    }
}

/// Characters with a meaning of their own in the pattern language.
fn is_syntax(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'|' | b'!'
    )
}

/// ClamAV's per-sub-signature rules (`cli_ac_addsig`): at most two `[x-y]`
/// ranges with a single byte on their outer side, and, once those single bytes
/// and a leading/trailing character class are set aside, at least two
/// consecutive fixed bytes to put into the Aho-Corasick trie.
fn check_part(part: &[(usize, Item)], part_start: usize) -> Result<(), HexError> {
    let col = |i: usize| part.get(i).map_or(part_start, |(c, _)| *c);
    if part.is_empty() {
        return Err(HexError::new(part_start, HexErrorKind::EmptyPart));
    }
    // Width in "ClamAV hex string" units: `{n}` stands for n `??`.
    let single = |items: &[(usize, Item)]| matches!(items, [(_, Item::Byte(_))]);
    let squares: Vec<usize> = part
        .iter()
        .enumerate()
        .filter(|(_, (_, it))| matches!(it, Item::Square { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut lo = 0;
    let mut hi = part.len();
    match squares.as_slice() {
        [] => {}
        &[a] => {
            if single(&part[..a]) {
                lo = a + 1;
            } else if single(&part[a + 1..]) {
                hi = a;
            } else {
                return Err(HexError::new(col(a), HexErrorKind::SquareRangeSide));
            }
        }
        &[a, b] => {
            if !single(&part[..a]) || single(&part[a + 1..b]) || !single(&part[b + 1..]) {
                return Err(HexError::new(col(a), HexErrorKind::SquareRangeSide));
            }
            lo = a + 1;
            hi = b;
        }
        [_, _, c, ..] => return Err(HexError::new(col(*c), HexErrorKind::TooManySquareRanges)),
    }
    let mut core = &part[lo..hi];
    if let [(_, Item::Class { .. }), rest @ ..] = core {
        core = rest;
    }
    if let [rest @ .., (_, Item::Class { .. })] = core {
        core = rest;
    }
    let mut run = 0;
    let mut indexable = false;
    for (_, it) in core {
        match it {
            Item::Byte(b) if b.is_exact() => {
                run += 1;
                if run >= 2 {
                    indexable = true;
                    break;
                }
            }
            _ => run = 0,
        }
    }
    if !indexable {
        return Err(HexError::new(col(lo), HexErrorKind::NoStaticBytes));
    }
    check_prefilter(core, col(lo))
}

/// ClamAV's prefilter (`filter_add_acpatt`, on by default) reads a
/// sub-signature from its start, passing over leading groups other than
/// single-byte alternatives, and needs two byte positions before the first
/// multi-byte alternative or character class; it refuses the signature otherwise.
fn check_prefilter(core: &[(usize, Item)], col: usize) -> Result<(), HexError> {
    // ClamAV also passes over a nested group of single bytes, `(aa|(bb|cc))`;
    // aether judges by the expanded branches (what `Display` can reproduce),
    // which is stricter there.
    let single_byte_alt = |it: &Item| matches!(it, Item::Alt { branches, .. } if branches.iter().all(|b| b.len() == 1 && b[0].is_exact()));
    let special = |it: &Item| matches!(it, Item::Alt { .. } | Item::Class { .. });
    if !core.iter().any(|(_, it)| special(it)) {
        return Ok(());
    }
    let start = core
        .iter()
        .position(|(_, it)| !special(it) || single_byte_alt(it))
        .unwrap_or(core.len());
    let mut count: u64 = 0;
    for (_, it) in &core[start..] {
        match it {
            Item::InlineGap(n) => count += u64::from(*n),
            it if special(it) && !single_byte_alt(it) => break,
            _ => count += 1,
        }
    }
    if count < 2 {
        return Err(HexError::new(col, HexErrorKind::NoPrefilterStart));
    }
    Ok(())
}

impl HexPattern {
    /// Parses a ClamAV hex signature (the `HexSignature` field of an `.ndb` line)
    /// and checks it as ClamAV does when it loads it.
    pub fn parse(text: &str) -> Result<HexPattern, HexError> {
        let s = text.as_bytes();
        if s.is_empty() {
            return Err(HexError::new(0, HexErrorKind::Empty));
        }
        let mut p = Parser {
            s,
            pos: 0,
            alt_bytes: 0,
        };
        let items = p.items()?;

        // Split into sub-signatures at `*` and `{..}` ranges and check each.
        let mut part_start_item = 0;
        let mut part_start_col = 0;
        for (i, (at, it)) in items.iter().enumerate() {
            if let Item::SplitGap { .. } = it {
                check_part(&items[part_start_item..i], part_start_col)?;
                part_start_item = i + 1;
                part_start_col = *at;
            }
        }
        check_part(&items[part_start_item..], part_start_col)?;

        let tokens = items
            .into_iter()
            .map(|(_, it)| match it {
                Item::Byte(b) => Token::Byte(b),
                Item::InlineGap(n) => Token::Gap {
                    min: n,
                    max: Some(n),
                },
                Item::SplitGap { min, max } => Token::Gap { min, max },
                Item::Square { min, max } => Token::Gap {
                    min,
                    max: Some(max),
                },
                Item::Alt { branches, negated } => Token::Alt { branches, negated },
                Item::Class { class, negated } => Token::Class { class, negated },
            })
            .collect();
        Ok(HexPattern { tokens })
    }

    /// Which gaps to print as `[x-y]`. The tokens do not say whether a gap was
    /// written `{n-m}` (splitting the signature) or `[n-m]` (next to a single
    /// byte at a sub-signature's edge); both mean the same, but ClamAV accepts
    /// each only in some places. Left to right: a gap is a `[x-y]` when a single
    /// byte separates it from the start or from a splitting gap, or else from
    /// the end or a following gap (which must then split); never two in a row.
    fn square_gaps(&self) -> Vec<bool> {
        let toks = &self.tokens;
        let inline = |t: &Token| matches!(t, Token::Gap { min, max: Some(max) } if min == max && (1..FIXED_GAP_INLINE_LIMIT).contains(min));
        let is_byte = |i: usize| matches!(toks.get(i), Some(Token::Byte(_)));
        let is_split_candidate =
            |i: usize| matches!(toks.get(i), Some(t @ Token::Gap { .. }) if !inline(t));
        let mut square = vec![false; toks.len()];
        let mut forced_split = vec![false; toks.len()];
        for (i, t) in toks.iter().enumerate() {
            let Token::Gap { max: Some(max), .. } = t else {
                continue;
            };
            if inline(t) || *max > SQUARE_RANGE_MAX || forced_split[i] {
                continue;
            }
            // `x[..]` needs x to start the text or to follow a splitting gap.
            let prev_gap_square = i >= 2 && square[i - 2];
            if prev_gap_square {
                continue;
            }
            let left = i >= 1 && is_byte(i - 1) && (i == 1 || is_split_candidate(i - 2));
            let right = is_byte(i + 1) && (i + 2 == toks.len() || is_split_candidate(i + 2));
            if left {
                square[i] = true;
            } else if right {
                square[i] = true;
                if i + 2 < toks.len() {
                    forced_split[i + 2] = true;
                }
            }
        }
        square
    }

    /// The indices of the gaps that split the signature into the parts
    /// ClamAV matches one by one (`*` and `{..}` ranges; not `{n}` below 128
    /// nor `[x-y]`), in order. A signature with none is matched whole.
    pub fn part_splits(&self) -> Vec<usize> {
        let square = self.square_gaps();
        self.tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| match t {
                Token::Gap { min, max } => {
                    let inline = *max == Some(*min) && (1..FIXED_GAP_INLINE_LIMIT).contains(min);
                    !inline && !square.get(*i).copied().unwrap_or(false)
                }
                _ => false,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether every token is a plain byte (ClamAV puts such signatures in its
    /// Boyer-Moore matcher, which needs at least three bytes).
    pub fn is_plain(&self) -> bool {
        self.tokens
            .iter()
            .all(|t| matches!(t, Token::Byte(b) if b.is_exact()))
    }
}

impl std::fmt::Display for ByteMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hi = if self.mask & 0xf0 == 0xf0 {
            HEX[usize::from(self.value >> 4)]
        } else {
            b'?'
        };
        let lo = if self.mask & 0x0f == 0x0f {
            HEX[usize::from(self.value & 0xf)]
        } else {
            b'?'
        };
        write!(f, "{}{}", char::from(hi), char::from(lo))
    }
}

impl std::fmt::Display for CharClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CharClass::Boundary => "(B)",
            CharClass::Line => "(L)",
            CharClass::NonAlnum => "(W)",
        })
    }
}

impl std::fmt::Display for HexPattern {
    /// Canonical hex-signature text: lower-case hex, `??`/`a?`/`?a` wildcards,
    /// `{n}` for fixed gaps below 128, `[x-y]` where a gap sits next to a
    /// single byte at a sub-signature's edge (the only place ClamAV allows
    /// such a gap), `*`, `{n-}`, `{-m}`, `{n-m}` otherwise.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let toks = &self.tokens;
        let squares = self.square_gaps();
        let inline = |t: &Token| matches!(t, Token::Gap { min, max: Some(max) } if min == max && (1..FIXED_GAP_INLINE_LIMIT).contains(min));
        for (i, t) in toks.iter().enumerate() {
            match t {
                Token::Byte(b) => write!(f, "{b}")?,
                Token::Gap { min, max } => {
                    let square = squares.get(i).copied().unwrap_or(false);
                    match (min, max) {
                        (n, Some(m)) if inline(t) => write!(f, "{{{n}}}", n = n.min(m))?,
                        (n, Some(m)) if square => write!(f, "[{n}-{m}]")?,
                        (0, None) => f.write_str("*")?,
                        (n, None) => write!(f, "{{{n}-}}")?,
                        (0, Some(m)) => write!(f, "{{-{m}}}")?,
                        (n, Some(m)) if n == m => write!(f, "{{{n}}}")?,
                        (n, Some(m)) => write!(f, "{{{n}-{m}}}")?,
                    }
                }
                Token::Alt { branches, negated } => {
                    if *negated {
                        f.write_str("!")?;
                    }
                    f.write_str("(")?;
                    for (j, br) in branches.iter().enumerate() {
                        if j > 0 {
                            f.write_str("|")?;
                        }
                        for b in br {
                            write!(f, "{b}")?;
                        }
                    }
                    f.write_str(")")?;
                }
                Token::Class { class, negated } => {
                    if *negated {
                        f.write_str("!")?;
                    }
                    write!(f, "{class}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Token> {
        match HexPattern::parse(s) {
            Ok(p) => p.tokens,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn e(s: &str) -> HexError {
        match HexPattern::parse(s) {
            Ok(p) => panic!("{s:?} parsed, into {} tokens", p.tokens.len()),
            Err(e) => e,
        }
    }

    fn b(v: u8) -> Token {
        Token::Byte(ByteMatch::exact(v))
    }

    fn m(value: u8, mask: u8) -> ByteMatch {
        ByteMatch { value, mask }
    }

    fn gap(min: u32, max: Option<u32>) -> Token {
        Token::Gap { min, max }
    }

    #[test]
    fn bytes_and_nibbles() {
        assert_eq!(p("aaBBcc"), vec![b(0xaa), b(0xbb), b(0xcc)]);
        assert_eq!(
            p("aabb??a??b"),
            vec![
                b(0xaa),
                b(0xbb),
                Token::Byte(ByteMatch::ANY),
                Token::Byte(m(0xa0, 0xf0)),
                Token::Byte(m(0x0b, 0x0f))
            ]
        );
    }

    #[test]
    fn gaps() {
        assert_eq!(p("aabb*ccdd")[2], gap(0, None));
        assert_eq!(p("aabb{5}ccdd")[2], gap(5, Some(5)));
        assert_eq!(p("aabb{200}ccdd")[2], gap(200, Some(200)));
        assert_eq!(p("aabb{0}ccdd")[2], gap(0, Some(0)));
        assert_eq!(p("aabb{-5}ccdd")[2], gap(0, Some(5)));
        assert_eq!(p("aabb{5-}ccdd")[2], gap(5, None));
        assert_eq!(p("aabb{5-10}ccdd")[2], gap(5, Some(10)));
        // {n} below 128 does not split: one fixed byte on a side is enough.
        assert_eq!(p("aabb{5}cc")[2], gap(5, Some(5)));
    }

    #[test]
    fn part_splits() {
        let splits = |s: &str| {
            HexPattern::parse(s)
                .map(|p| p.part_splits())
                .unwrap_or_default()
        };
        assert_eq!(splits("aabbccdd"), Vec::<usize>::new());
        assert_eq!(splits("aabb*ccdd"), vec![2]);
        assert_eq!(splits("aabb{5}ccdd"), Vec::<usize>::new());
        assert_eq!(splits("aabb{200}ccdd{2-9}eeff"), vec![2, 5]);
        assert_eq!(splits("aabb{-3}ccdd{4-}eeff"), vec![2, 5]);
        // `[x-y]` next to a single byte is matched inside its part.
        assert_eq!(splits("aa[1-4]bbccdd*eeff"), vec![5]);
    }

    #[test]
    fn square_ranges() {
        assert_eq!(p("aa[1-4]bbccdd")[1], gap(1, Some(4)));
        assert_eq!(p("aabbcc[1-4]dd")[3], gap(1, Some(4)));
        assert_eq!(p("aa[3]bbccdd")[1], gap(3, Some(3)));
        assert_eq!(p("aa[1-4]bbcc[2-3]dd").len(), 6);
        assert_eq!(e("aabb[1-4]ccdd").kind, HexErrorKind::SquareRangeSide);
        assert_eq!(
            e("aa[4-1]bbccdd").kind,
            HexErrorKind::ReversedRange { min: 4, max: 1 }
        );
        assert_eq!(
            e("aa[1-40]bbccdd").kind,
            HexErrorKind::SquareRangeTooLarge(40)
        );
        assert_eq!(e("aa[1-4]bb").kind, HexErrorKind::NoStaticBytes);
        assert_eq!(
            e("aa[1-4]bbcc[2-3]dd[1-2]ee").kind,
            HexErrorKind::TooManySquareRanges
        );
        assert!(matches!(
            e("aa[1-]bbcc").kind,
            HexErrorKind::MalformedRange(_)
        ));
        assert!(matches!(
            e("aa[x]bbcc").kind,
            HexErrorKind::MalformedRange(_)
        ));
    }

    #[test]
    fn alternatives() {
        assert_eq!(
            p("aabb(cc|dd)eeff")[2],
            Token::Alt {
                branches: vec![vec![ByteMatch::exact(0xcc)], vec![ByteMatch::exact(0xdd)]],
                negated: false
            }
        );
        assert_eq!(
            p("aabb!(cccc|ddee)ff00")[2],
            Token::Alt {
                branches: vec![
                    vec![ByteMatch::exact(0xcc), ByteMatch::exact(0xcc)],
                    vec![ByteMatch::exact(0xdd), ByteMatch::exact(0xee)]
                ],
                negated: true
            }
        );
        // Generic: different lengths, nibbles, nested groups, {n}, empty branch.
        let Token::Alt { branches, .. } = &p("aabb(cc|dd(ee|ff))0011")[2] else {
            panic!()
        };
        assert_eq!(branches.len(), 3);
        assert_eq!(
            branches[2],
            vec![ByteMatch::exact(0xdd), ByteMatch::exact(0xff)]
        );
        let Token::Alt { branches, .. } = &p("aabb(c?|ddee)ff00")[2] else {
            panic!()
        };
        assert_eq!(branches[0], vec![m(0xc0, 0xf0)]);
        let Token::Alt { branches, .. } = &p("aabb(cc{3}|dd)eeff")[2] else {
            panic!()
        };
        assert_eq!(branches[0].len(), 4);
        assert_eq!(branches[0][3], ByteMatch::ANY);
    }

    #[test]
    fn alternative_errors() {
        assert_eq!(e("aabb!(cc|ddee)ff00").kind, HexErrorKind::NegatedGeneric);
        assert_eq!(e("aabb!(c?|dd)eeff").kind, HexErrorKind::NegatedGeneric);
        assert_eq!(e("aabb!(cc|)eeff").kind, HexErrorKind::EmptyAlternative);
        assert_eq!(
            e("aabb(cc|)eeff"),
            HexError {
                column: 9,
                kind: HexErrorKind::EmptyAlternative
            }
        );
        assert_eq!(e("aabb(|cc)eeff").kind, HexErrorKind::EmptyAlternative);
        assert_eq!(e("aabb(cc||dd)eeff").kind, HexErrorKind::EmptyAlternative);
        // ClamAV's prefilter wants two byte positions before the first
        // multi-byte alternative or class, leading groups aside.
        assert_eq!(e("aa(L)bbcc").kind, HexErrorKind::NoPrefilterStart);
        assert_eq!(e("bb(cc|ddee)0000").kind, HexErrorKind::NoPrefilterStart);
        assert_eq!(e("aa(aa|bbcc)ddeeff").kind, HexErrorKind::NoPrefilterStart);
        for ok in [
            "aabb(L)cc",
            "(aa|bbcc)ddeeff",
            "(aa|bbcc)(L)ddeeff",
            "aa(bb|cc)(W)ddee",
            "aa{2}(bb|ccdd)eeff",
        ] {
            assert!(HexPattern::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            e("aabb()eeff"),
            HexError {
                column: 5,
                kind: HexErrorKind::EmptyGroup
            }
        );
        assert_eq!(
            e("aabb(cc|ddeeff"),
            HexError {
                column: 5,
                kind: HexErrorKind::UnclosedGroup
            }
        );
        assert_eq!(e("aabbcc|dd)eeff").kind, HexErrorKind::BarOutsideGroup);
        assert_eq!(
            e("aabbccdd)eeff"),
            HexError {
                column: 9,
                kind: HexErrorKind::UnexpectedClose
            }
        );
        assert_eq!(
            e("aabb(cc*|dd)eeff").kind,
            HexErrorKind::WildcardInAlternative("'*'")
        );
        assert!(matches!(
            e("aabb(cc{2-3}|dd)eeff").kind,
            HexErrorKind::WildcardInAlternative(_)
        ));
        assert!(matches!(
            e("aabb(cc{200}|dd)eeff").kind,
            HexErrorKind::WildcardInAlternative(_)
        ));
        assert!(matches!(
            e("aabb(cc[1-2]dd|dd)eeff").kind,
            HexErrorKind::WildcardInAlternative(_)
        ));
        assert_eq!(e("aabb((B)|cc)eeff").kind, HexErrorKind::ClassInAlternative);
        assert_eq!(
            e("aabb(cc|!(dd|ee))eeff").kind,
            HexErrorKind::NegatedGeneric
        );
        let deep = format!("aabb{}cc{}ddee", "(".repeat(16), ")".repeat(16));
        assert_eq!(e(&deep).kind, HexErrorKind::TooDeep);
        let ok = format!("aabb{}cc{}ddee", "(".repeat(15), ")".repeat(15));
        assert!(HexPattern::parse(&ok).is_ok());
        // 2^13 branches from nested pairs: bounded, not exhausted.
        let many = format!("aabb({})ccdd", "(00|01)".repeat(13));
        assert_eq!(e(&many).kind, HexErrorKind::TooManyBranches);
        // Long branches multiplied by nesting: bounded in bytes too.
        let wide = format!("aabb({}{})ccdd", "(00|01)".repeat(11), "{127}".repeat(400));
        assert_eq!(e(&wide).kind, HexErrorKind::AlternativesTooLarge);
        // ... over the whole pattern, not per group.
        let one = format!("({}{})", "(00|01)".repeat(9), "{127}".repeat(4));
        assert!(HexPattern::parse(&format!("aabb{one}ccdd")).is_ok());
        assert_eq!(
            e(&format!("aabb{}ccdd", one.repeat(4))).kind,
            HexErrorKind::AlternativesTooLarge
        );
        // Only a fixed run next to the group makes a sub-signature indexable.
        assert_eq!(e("aa(bb|cc)dd").kind, HexErrorKind::NoStaticBytes);
    }

    #[test]
    fn classes() {
        let c = |class, negated| Token::Class { class, negated };
        assert_eq!(p("(B)aabbcc")[0], c(CharClass::Boundary, false));
        assert_eq!(p("aabbcc(L)")[3], c(CharClass::Line, false));
        assert_eq!(p("aabb(W)ccdd")[2], c(CharClass::NonAlnum, false));
        assert_eq!(p("!(B)aabbcc")[0], c(CharClass::Boundary, true));
        assert_eq!(p("aabb!(L)ccdd")[2], c(CharClass::Line, true));
        // A class at an edge is zero-width: it does not count as a byte.
        assert_eq!(e("(B)aa").kind, HexErrorKind::NoStaticBytes);
        assert_eq!(
            e("aabb(X)ccdd"),
            HexError {
                column: 6,
                kind: HexErrorKind::UnexpectedChar('X')
            }
        );
        assert_eq!(
            e("aabb!ccdd"),
            HexError {
                column: 5,
                kind: HexErrorKind::LoneNegation
            }
        );
    }

    #[test]
    fn sub_signatures() {
        assert_eq!(e("aabb*cc").kind, HexErrorKind::NoStaticBytes);
        assert_eq!(e("aabb{5-10}cc").kind, HexErrorKind::NoStaticBytes);
        assert_eq!(
            e("*aabbcc"),
            HexError {
                column: 1,
                kind: HexErrorKind::EmptyPart
            }
        );
        assert_eq!(
            e("aabbcc*"),
            HexError {
                column: 7,
                kind: HexErrorKind::EmptyPart
            }
        );
        assert_eq!(
            e("aabb**ccdd"),
            HexError {
                column: 5,
                kind: HexErrorKind::EmptyPart
            }
        );
        assert_eq!(e("aa??bb").kind, HexErrorKind::NoStaticBytes);
        assert_eq!(e("??").kind, HexErrorKind::NoStaticBytes);
        assert!(HexPattern::parse("??aabbcc").is_ok());
        assert!(HexPattern::parse("aabb(cc|dd)").is_ok());
        assert!(HexPattern::parse("0000").is_ok());
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            e(""),
            HexError {
                column: 1,
                kind: HexErrorKind::Empty
            }
        );
        assert_eq!(
            e("aabbc"),
            HexError {
                column: 5,
                kind: HexErrorKind::OddNibbles
            }
        );
        assert_eq!(
            e("aabbc*ddee"),
            HexError {
                column: 5,
                kind: HexErrorKind::OddNibbles
            }
        );
        assert_eq!(
            e("aabbcg"),
            HexError {
                column: 6,
                kind: HexErrorKind::UnexpectedChar('g')
            }
        );
        assert_eq!(
            e("aa bbcc"),
            HexError {
                column: 3,
                kind: HexErrorKind::UnexpectedChar(' ')
            }
        );
        assert_eq!(
            e("aabbé"),
            HexError {
                column: 5,
                kind: HexErrorKind::UnexpectedChar('é')
            }
        );
        assert!(matches!(
            e("aabb{}ccdd").kind,
            HexErrorKind::MalformedRange(_)
        ));
        assert!(matches!(
            e("aabb{-}ccdd").kind,
            HexErrorKind::MalformedRange(_)
        ));
        assert!(matches!(
            e("aabb{5ccdd").kind,
            HexErrorKind::MalformedRange(_)
        ));
        assert!(matches!(
            e("aabb{1-2-3}ccdd").kind,
            HexErrorKind::MalformedRange(_)
        ));
        assert_eq!(
            e("aabb{5-3}ccdd").kind,
            HexErrorKind::ReversedRange { min: 5, max: 3 }
        );
        assert_eq!(e("aabb{99999999999}ccdd").kind, HexErrorKind::RangeTooLarge);
        assert_eq!(
            e("aabbc").to_string(),
            "odd number of hex digits at column 5"
        );
    }

    #[test]
    fn display_is_canonical() {
        for (input, canon) in [
            ("AABBCC", "aabbcc"),
            ("aabb??A??B", "aabb??a??b"),
            ("aabb*ccdd", "aabb*ccdd"),
            ("aabb{0-}ccdd", "aabb*ccdd"),
            ("aabb{5}cc", "aabb{5}cc"),
            ("aabb{200}ccdd", "aabb{200}ccdd"),
            ("aabb{0-5}ccdd", "aabb{-5}ccdd"),
            ("aabb{5-}ccdd", "aabb{5-}ccdd"),
            ("aa[1-4]bbcc[2-3]dd", "aa[1-4]bbcc[2-3]dd"),
            ("aa[3]bbcc", "aa{3}bbcc"),
            ("aabb!(CC|dd)eeff", "aabb!(cc|dd)eeff"),
            ("aabb(cc|dd(ee|ff))0011", "aabb(cc|ddee|ddff)0011"),
            ("aabb(cc{2}|dd)eeff", "aabb(cc????|dd)eeff"),
            ("!(B)aabb(W)cc(L)", "!(B)aabb(W)cc(L)"),
        ] {
            let pat = HexPattern::parse(input).unwrap();
            assert_eq!(pat.to_string(), canon, "{input}");
            assert_eq!(HexPattern::parse(canon).unwrap(), pat, "{input}");
        }
    }

    #[test]
    fn fuzz_regressions() {
        // A split gap, a single byte, then an [x-y]: the byte belongs to the
        // second gap; printing both as [x-y] made text ClamAV would reject.
        for s in [
            "aaccaabb{-5}ccddedbb{-5}ca[2-4]abbbaf1b*ca[2-4]daaaaf1b",
            "aabb[1-2]cc{3-4}ddee",
            "aabb{1-2}cc[3-4]ddee",
        ] {
            let pat = HexPattern::parse(s).unwrap();
            let shown = pat.to_string();
            assert_eq!(
                HexPattern::parse(&shown).as_ref(),
                Ok(&pat),
                "{s} -> {shown}"
            );
        }
    }

    /// A small deterministic generator of hex-signature text from the grammar's
    /// pieces; whatever parses must survive display and re-parse unchanged.
    #[test]
    fn round_trip_property() {
        // Plain bytes weigh more: most corners need a couple of them around.
        let pieces = [
            "aa",
            "bb",
            "0f",
            "00",
            "aa",
            "bb",
            "cc",
            "dd",
            "??",
            "a?",
            "?b",
            "*",
            "{3}",
            "{0}",
            "{130}",
            "{-4}",
            "{2-}",
            "{2-9}",
            "[1-3]",
            "[2]",
            "(cc|dd)",
            "!(cc|dd)",
            "(cc|ddee)",
            "(c?|{2}ee)",
            "(B)",
            "!(L)",
            "(W)",
            "(aa|(bb|cc))",
            "(|aa)",
            "00",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..50_000 {
            let n = 1 + (next() % 8) as usize;
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if let Ok(pat) = HexPattern::parse(&s) {
                parsed += 1;
                let shown = pat.to_string();
                match HexPattern::parse(&shown) {
                    Ok(again) => assert_eq!(again, pat, "{s} -> {shown}"),
                    Err(e) => panic!("{s} -> {shown}: {e}"),
                }
            }
        }
        assert!(parsed > 1000, "only {parsed} generated patterns parsed");
    }
}
