/*!
Parses ClamAV signature databases into typed signatures.

This crate knows the *text* of ClamAV's databases and nothing of matching, the way
yara-x's parser knows nothing of scanning. The [`Loader`] reads database files,
directories and `.cvd`/`.cld` containers, parses each line into a typed record
([`HashSig`], [`BodySig`], [`LogicalSig`]) and pushes it into a [`SignatureSink`], which is
usually the engine's compiler.

Brief overview:
- [`hex`]: the hex-signature pattern language (`aa??{2-4}(bb|cc)*dd`).
- [`offset`]: the `Offset` field (`*`, `n`, `n,m`, `EOF-n`, `EP+n`, `Sx+n`, `SL+n`).
- [`cvd`]: the `.cvd`/`.cld` container: header, tar, MD5 and digital-signature check.
- [`line`]: one line of `.hdb`/`.hsb`/`.fp`/`.sfp`, `.ndb` and `.ign`/`.ign2` files.
- [`logical`]: `.ldb` logical signatures: target description, expression (with
  its evaluator), hex, PCRE, byte-compare and macro subsignatures.
- [`pehash`]: one line of `.mdb`/`.msb` (PE section hash) and `.imp` (PE import hash) files.
- [`load`]: file and directory loading, ignore lists, per-file reports.

A line that cannot be parsed stops the load with a [`LoadError`] naming the file,
the line and what is wrong. A record the sink cannot use yet is counted per file
and reason in the [`LoadReport`], never dropped silently.
*/

pub mod cvd;
pub mod error;
pub mod hex;
pub mod line;
pub mod load;
pub mod logical;
pub mod offset;
pub mod pehash;
pub mod record;
pub mod sink;

pub use cvd::{CvdError, CvdHeader, RsaKey};
pub use error::{LoadError, LoadErrorKind};
pub use hex::{ByteMatch, CharClass, HexError, HexErrorKind, HexPattern, Token};
pub use line::{LineError, Parsed};
pub use load::{DbFormat, FileReport, LoadOptions, LoadReport, Loader};
pub use logical::{
    ByteCompare, ByteFormat, Count, CountCmp, Endian, Evaluation, ExprError, ExprErrorKind,
    HexSubSig, LdbError, LogicExpr, LogicOp, LogicalSig, Modifiers, PcreFlags, PcreSubSig, Range,
    SubSig, SubsigError, TargetDescription,
};
pub use offset::{Offset, OffsetError};
pub use pehash::{PeHashKind, parse_pe_hash_line};
pub use record::{BodySig, Digest, FUNCTIONALITY_LEVEL, HashKind, HashSig, TargetType};
pub use sink::{SignatureSink, Unsupported};
