/*!
File formats for the scanner: what a file is, and what is inside it.

Two jobs, kept apart from signature matching so that each can be tested and
fuzzed on its own:

- [`filetype`] names a file as ClamAV does (`CL_TYPE_*`) from its first bytes.
  The rules are data, a table in the syntax of ClamAV's `daily.ftm` magic lines
  ([`filetype::TABLE`]), so a new type is a new line, not new code.
- [`walk`] lists the members of a container (zip, 7z, RAR, Microsoft
  cabinets, tar, cpio, ar, and the single-member compressed streams gzip,
  bzip2, xz and zstd) and hands each one to a [`Visitor`] with a way to
  decompress it into a writer.
  Email (single messages and mbox files) gives its decoded MIME parts and
  uuencoded blocks, walking into attached messages.
  OLE2 compound documents (Office 97-2003, MSI) give their streams and what
  ClamAV derives from them: embedded objects, and VBA and Word 6 macros
  ([`vba`]), which a [`Content`] other than `File` marks.
  RTF embedded objects, TNEF attachments, ARJ, SZDD, BinHex, CHM and
  Symbian SIS files give their members as ClamAV extracts them, quirks
  included (zip's implode method too).
  PDF documents give the objects ClamAV scans: streams decoded through
  their filters (Flate, LZW, ASCIIHex, ASCII85, RunLength), object streams
  opened, JavaScript strings and page text, encrypted documents decrypted
  with the empty password.

Everything here reads untrusted bytes. Nothing panics on them, nothing is
written to disk, and no length taken from a header is trusted for an
allocation: members are decompressed into a writer the caller bounds, and
headers are read through positioned reads checked against the input's size.
Problems a scanner may want to report (encrypted members, overlapping zip
entries, broken archives, names that climb out with `../`) are reported to the
visitor by name while the walk goes on.
*/

mod ar;
mod arj;
mod autoit;
mod binhex;
mod cab;
mod chm;
mod cpio;
mod datauri;
mod embedded;
pub mod filetype;
mod implode;
mod ishield;
mod mail;
pub mod normalize;
mod nsis;
mod ole2;
mod pdf;
mod rar;
mod rtf;
mod sevenz;
mod sis;
mod source;
mod streams;
mod szdd;
mod tarball;
mod tnef;
pub mod vba;
mod walk;
mod zip;

pub use filetype::{FileType, detect};
pub use source::{ReadAt, SourceReader};
pub use walk::{Content, Flow, FormatError, Member, Problem, Visitor, is_container, walk};
pub use zip::Packed;
