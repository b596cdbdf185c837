//! Walking the members of a container.

use std::io::{self, Read, Write};

use crate::arj;
use crate::autoit;
use crate::binhex;
use crate::cab;
use crate::chm;
use crate::datauri;
use crate::embedded;
use crate::filetype::FileType;
use crate::ishield;
use crate::mail;
use crate::nsis;
use crate::ole2;
use crate::pdf;
use crate::rar;
use crate::rtf;
use crate::sis;
use crate::source::ReadAt;
use crate::szdd;
use crate::tnef;
use crate::{ar, cpio, sevenz, streams, tarball, zip};

/// Whether a visitor wants more members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Something wrong with a container or one of its members. The walk goes on
/// after each, except where noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The member is encrypted and was not extracted (ClamAV:
    /// `Heuristics.Encrypted.Zip` with `--alert-encrypted`).
    Encrypted { member: String },
    /// Zip entries overlap each other, the trick of non-recursive zip bombs
    /// (ClamAV: `Heuristics.Zip.OverlappingFiles`). The archive's members are
    /// not extracted.
    Overlapping { entries: u64 },
    /// The member's name leaves its directory (`../`, or absolute). It is
    /// still scanned: nothing is ever written under its name.
    PathTraversal { member: String },
    /// The archive is truncated or corrupt at this point; members after it
    /// may be missing.
    Broken {
        member: Option<String>,
        detail: String,
    },
    /// The member uses a compression method aether cannot decode.
    Unsupported { member: String, detail: String },
    /// The member's data decoded to a different size than its header says.
    SizeMismatch {
        member: String,
        declared: u64,
        actual: u64,
    },
    /// The container trips one of ClamAV's heuristics, named as ClamAV
    /// reports it (`Heuristics.PDF.ObfuscatedNameObject`), which clamscan
    /// reports as a detection with its heuristic alerts on (the default).
    Heuristic { name: &'static str },
}

/// Why a container could not be walked at all.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    #[error("{0:?} is not a container aether opens")]
    NotAContainer(FileType),
}

/// A decoder that writes its output rather than being read (lzma-rs).
pub(crate) type PushDecoder<'a> = Box<dyn FnMut(&mut dyn Write) -> io::Result<()> + 'a>;

/// How a member's bytes are produced.
pub(crate) enum Body<'a> {
    Read(Box<dyn Read + 'a>),
    Push(PushDecoder<'a>),
}

/// What a member's bytes are. ClamAV scans what it makes of a document
/// itself (macro source) differently from the files stored in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Content {
    /// A stored file: typed from its bytes, scanned whole, opened if it is a
    /// container.
    #[default]
    File,
    /// A VBA project as the text ClamAV writes of it (its `dir` records and
    /// modules' normalized source): ClamAV matches it as `CL_TYPE_SCRIPT`,
    /// with generic (target 0) body, hash and logical signatures, without
    /// typing or opening it.
    MacroProject,
    /// The decompressed source of a VBA module listed by an Office 97-2003
    /// `_VBA_PROJECT` stream: ClamAV matches it as a buffer of
    /// `CL_TYPE_MSOLE2`, with generic and OLE2 (target 2) body and logical
    /// signatures, without hashes, typing or opening it.
    MacroSource,
    /// Bytes ClamAV scans as they are, with generic (target 0) body, hash
    /// and logical signatures, without typing or opening them (an NSIS
    /// installer's script header).
    Raw,
}

/// One member of a container, not yet extracted.
pub struct Member<'a> {
    /// The name stored in the archive (lossy UTF-8), or empty for the
    /// content of a compressed stream without a stored name.
    pub name: String,
    /// The decompressed size the archive declares, when it declares one.
    /// Untrusted: never use it to size a buffer.
    pub declared_size: Option<u64>,
    /// The size of the member's data inside the container, when known.
    pub packed_size: Option<u64>,
    /// True for the content of a compressed stream (gzip, bzip2, xz, zstd),
    /// which ClamAV counts as a level of recursion but not as a named file.
    pub stream: bool,
    /// What the bytes are; [`Content::File`] but for what ClamAV derives.
    pub content: Content,
    pub(crate) body: Body<'a>,
    pub(crate) packed: Option<crate::zip::Packed>,
    pub(crate) produced: u64,
    pub(crate) finished: bool,
}

impl<'a> Member<'a> {
    pub(crate) fn new(name: String, body: Body<'a>) -> Member<'a> {
        Member {
            name,
            declared_size: None,
            packed_size: None,
            stream: false,
            content: Content::File,
            body,
            packed: None,
            produced: 0,
            finished: false,
        }
    }

    /// For a zip member, where its data is, so that it can be decoded later
    /// with [`Packed::decode`](crate::Packed::decode) (on another thread)
    /// instead of through [`Member::extract`].
    pub fn packed(&self) -> Option<crate::zip::Packed> {
        self.packed
    }

    /// Decompresses the member into `out` and returns the bytes written. A
    /// writer that refuses more (returns an error) stops the decoder at once:
    /// that is how callers bound the output. Call at most once.
    pub fn extract(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        let mut counted = Counting { inner: out, n: 0 };
        let result = match &mut self.body {
            Body::Read(r) => io::copy(r, &mut counted).map(|_| ()),
            Body::Push(f) => f(&mut counted),
        };
        self.produced = counted.n;
        if result.is_ok() {
            self.finished = true;
        }
        result.map(|()| counted.n)
    }
}

struct Counting<'w> {
    inner: &'w mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Receives the members of a container and its problems.
pub trait Visitor {
    /// One member; call [`Member::extract`] to read it, or skip it.
    fn member(&mut self, member: &mut Member<'_>) -> Flow;
    /// A problem with the container; the walk goes on unless told to stop.
    fn problem(&mut self, problem: Problem) -> Flow;
}

/// Whether [`walk`] opens this type.
pub fn is_container(ty: FileType) -> bool {
    matches!(
        ty,
        FileType::Zip
            | FileType::SevenZip
            | FileType::Gz
            | FileType::Bz
            | FileType::Xz
            | FileType::Zstd
            | FileType::PosixTar
            | FileType::OldTar
            | FileType::CpioOld
            | FileType::CpioOdc
            | FileType::CpioNewc
            | FileType::CpioCrc
            | FileType::Ar
            | FileType::Rar
            | FileType::MsCab
            | FileType::Ole2
            | FileType::Mail
            | FileType::MsChm
            | FileType::Sis
            | FileType::BinHex
            | FileType::MsSzdd
            | FileType::Arj
            | FileType::Tnef
            | FileType::Pdf
            | FileType::Rtf
            | FileType::Html
            | FileType::HtmlUtf16
            | FileType::Text
            | FileType::TextUtf8
            | FileType::Gif
            | FileType::Nulsft
            | FileType::IshieldMsi
            | FileType::AutoIt
    ) || embedded::searched(ty)
}

/// Walks the members of `src`, a container of type `ty`, in archive order.
pub fn walk(ty: FileType, src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let walked = walk_own(ty, src, visitor);
    // Files inside files (self-extracting archives, installers), after the
    // members proper, as ClamAV's raw scan finds them after its parsers.
    if embedded::searched(ty) {
        return walked.and(embedded::walk(ty, src, visitor));
    }
    walked
}

/// The members of a container of its own format.
fn walk_own(ty: FileType, src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    match ty {
        FileType::Zip => zip::walk(src, visitor),
        FileType::SevenZip => sevenz::walk(src, visitor),
        FileType::Gz | FileType::Bz | FileType::Xz | FileType::Zstd => {
            streams::walk(ty, src, visitor)
        }
        FileType::PosixTar | FileType::OldTar => tarball::walk(src, visitor),
        FileType::CpioOld | FileType::CpioOdc | FileType::CpioNewc | FileType::CpioCrc => {
            cpio::walk(src, visitor)
        }
        FileType::Ar => ar::walk(src, visitor),
        FileType::Rar => rar::walk(src, visitor),
        FileType::MsCab => cab::walk(src, visitor),
        FileType::Ole2 => ole2::walk(src, visitor),
        FileType::Mail => mail::walk(src, visitor),
        FileType::MsChm => chm::walk(src, visitor),
        FileType::Sis => sis::walk(src, visitor),
        FileType::BinHex => binhex::walk(src, visitor),
        FileType::MsSzdd => szdd::walk(src, visitor),
        FileType::Arj => arj::walk(src, visitor),
        FileType::Tnef => tnef::walk(src, visitor),
        FileType::Pdf => pdf::walk(src, visitor),
        FileType::Rtf => rtf::walk(src, visitor),
        FileType::Html => datauri::walk(src, true, visitor),
        FileType::HtmlUtf16 => datauri::walk_utf16(src, visitor),
        FileType::Text | FileType::TextUtf8 | FileType::Gif => datauri::walk(src, false, visitor),
        FileType::Nulsft => nsis::walk(src, visitor),
        FileType::IshieldMsi => ishield::walk_msi(src, visitor),
        FileType::AutoIt => autoit::walk(src, visitor),
        // InstallShield files in an executable's overlay (ClamAV's scanpe).
        FileType::Pe => ishield::walk_overlay(src, visitor),
        other if embedded::searched(other) => Ok(()),
        other => Err(FormatError::NotAContainer(other)),
    }
}

/// Hands `member` to the visitor and reports a size that differs from the
/// declared one once the member was read to its end.
pub(crate) fn visit(visitor: &mut dyn Visitor, member: &mut Member<'_>) -> Flow {
    if visitor.member(member) == Flow::Stop {
        return Flow::Stop;
    }
    if let Some(declared) = member.declared_size
        && member.finished
        && member.produced != declared
    {
        return visitor.problem(Problem::SizeMismatch {
            member: member.name.clone(),
            declared,
            actual: member.produced,
        });
    }
    Flow::Continue
}

/// True when a stored name climbs out of the extraction directory.
pub(crate) fn escapes(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.split(['/', '\\']).any(|part| part == "..")
}

/// Reports a path traversal name; the caller then visits the member as usual.
pub(crate) fn check_name(visitor: &mut dyn Visitor, name: &str) -> Flow {
    if escapes(name) {
        visitor.problem(Problem::PathTraversal {
            member: name.to_string(),
        })
    } else {
        Flow::Continue
    }
}
