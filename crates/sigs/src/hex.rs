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
    Alt { branches: Vec<Vec<ByteMatch>>, negated: bool },
    /// `(B)`, `(L)`, `(W)`, or their negation `!(B)` etc.
    Class { class: CharClass, negated: bool },
}

/// A parsed hex signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HexPattern {
    pub tokens: Vec<Token>,
}
