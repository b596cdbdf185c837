/*!
Unpacks packed Windows executables into the image ClamAV 1.4 would scan.

A packer (UPX and its kind) compresses a program and prepends a small stub
that decompresses it in memory at run time; on disk, none of the original
program's bytes are visible, so no signature for it can match. ClamAV
recognises the common packers from the PE's sections and the code at its
entry point, decompresses the program, rebuilds a PE around it, and scans that
rebuilt file as a file of its own. For a signature (an `.hdb` hash of the
rebuilt file, a body signature with `EP+n` or `Sx+n` offsets) to match here as
it matches in ClamAV, the rebuilt file must be the same bytes, so this crate
reproduces ClamAV's recognition, its order and its rebuild, quirks included
(each module says which).

Supported, in ClamAV's order: MEW 11 (not its LZMA variant), Upack 0.39
(three sections; not the two-section layouts), FSG 2.0, 1.33 and 1.31, UPX
(NRV2B, NRV2D, NRV2E and LZMA), Petite 2.x, PESpin 1.1, yC 1.x, WWPack32 and
ASPack 2.12-2.42; not yet: NsPack. [`unpack`] returns
`Ok(None)` for a file that is not a PE32, or whose packer is not recognised;
an error when a packer was recognised but its data is broken (and no later
packer succeeded), or when unpacking would pass [`UnpackLimits`]. The image
of one packer may itself be packed (yC holds UPX): the caller unpacks again,
one level down, as ClamAV scans each rebuilt file as a file of its own.

Everything is bounded: the output by ClamAV's own size limit (what it checks
before unpacking: `MaxFileSize`, what is left of `MaxScanSize`), by an
optional ratio to the input's size, and by 1 GiB (ClamAV's largest
allocation); every loop by the input or the output, and the emulated
decryptors by ClamAV's jump limit (a decryptor that loops is stopped at
once). Corrupt input gives an error or a different image, never a panic.

The formats were learnt from ClamAV's `libclamav` (`pe.c`, `upx.c`, `fsg.c`,
`packlibs.c`, `mew.c`, `upack.c`, `petite.c`, `spin.c`, `yc.c`,
`wwunpack.c`, `aspack.c`, `rebuildpe.c`); the code is written anew.
*/

mod aspack;
mod fsg;
mod mew;
mod pe;
mod petite;
mod rebuild;
mod spin;
mod upack;
mod upx;
mod wwpack;
mod yc;

use std::fmt;

/// ClamAV never allocates more than this (`CLI_MAX_ALLOCATION`).
pub const MAX_ALLOCATION: u32 = 1 << 30;

/// A packer this crate can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Packer {
    Upx,
    Aspack,
    Fsg,
    Mew,
    Petite,
    PeSpin,
    Upack,
    WwPack,
    Yc,
}

impl fmt::Display for Packer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Packer::Upx => "UPX",
            Packer::Aspack => "ASPack",
            Packer::Fsg => "FSG",
            Packer::Mew => "MEW",
            Packer::Petite => "Petite",
            Packer::PeSpin => "PESpin",
            Packer::Upack => "Upack",
            Packer::WwPack => "WWPack",
            Packer::Yc => "yC",
        })
    }
}

/// An unpacked executable: the bytes ClamAV scans in place of the packed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub packer: Packer,
    pub image: Vec<u8>,
}

/// Bounds on what unpacking may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// The most bytes an unpacker may need, as ClamAV's `cli_checklimits`
    /// judges it before unpacking (the larger of the packed data and the
    /// declared unpacked size); 0 for no limit. ClamAV gives up on the file
    /// when it is passed.
    pub max_size: u64,
    /// The most the declared unpacked size may be, as a multiple of the
    /// input file's size; 0 for no limit. ClamAV has no such limit: it is
    /// a bound on what a small file can make this crate allocate.
    pub max_ratio: u64,
}

impl Default for UnpackLimits {
    /// ClamAV's default `MaxFileSize` (100 MB) and a ratio of 1000.
    fn default() -> Self {
        UnpackLimits {
            max_size: 100 << 20,
            max_ratio: 1000,
        }
    }
}

impl UnpackLimits {
    /// The most bytes of section data a rebuilt PE may hold.
    pub(crate) fn output_cap(&self) -> u64 {
        if self.max_size == 0 {
            u64::from(MAX_ALLOCATION)
        } else {
            self.max_size
        }
    }

    pub(crate) fn check(&self, packer: Packer, needed: u64, input: u64) -> Result<(), UnpackError> {
        if self.max_size != 0 && needed > self.max_size {
            return Err(UnpackError::TooLarge {
                packer,
                needed,
                allowed: self.max_size,
            });
        }
        let by_ratio = input.saturating_mul(self.max_ratio).max(1 << 20);
        if self.max_ratio != 0 && needed > by_ratio {
            return Err(UnpackError::TooLarge {
                packer,
                needed,
                allowed: by_ratio,
            });
        }
        Ok(())
    }
}

/// A packer was recognised but could not be undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    /// The packed data or the headers describing it are broken.
    #[error("{packer}: {detail}")]
    Failed { packer: Packer, detail: String },
    /// Unpacking would pass [`UnpackLimits`].
    #[error("{packer}: unpacking needs {needed} bytes, more than the {allowed} allowed")]
    TooLarge {
        packer: Packer,
        needed: u64,
        allowed: u64,
    },
}

impl UnpackError {
    /// The packer the error is about.
    pub fn packer(&self) -> Packer {
        match self {
            UnpackError::Failed { packer, .. } | UnpackError::TooLarge { packer, .. } => *packer,
        }
    }
}

/// What one unpacker made of the file.
pub(crate) enum Step {
    /// Not this packer: try the next.
    Next,
    /// Recognised, but it failed: remember why and try the next, as ClamAV
    /// does.
    Failed(UnpackError),
    /// ClamAV gives up on the file here (no later packer is tried).
    Stop,
    /// The image to scan.
    Done(Packer, Vec<u8>),
}

/// How many bytes of a file [`probe`] wants: enough for the headers of
/// nearly every PE.
pub const PROBE_LEN: usize = 64 << 10;

/// Whether a file of `file_size` bytes whose first bytes are `head` (up to
/// [`PROBE_LEN`]) may be one that [`unpack`] unpacks: a cheap look at the
/// headers and the entry point, so that a caller need not read every
/// executable whole. `true` when unsure (headers or entry point past
/// `head`); never `false` for a file [`unpack`] would unpack.
pub fn probe(head: &[u8], file_size: u64) -> bool {
    pe::probe(head, file_size)
}

/// How many bytes at the entry point ClamAV reads for its checks.
const EP_BUFFER: usize = 4096;
/// ClamAV's packer checks after MEW need this many of them.
const MIN_EP_BYTES: usize = 168;

/// Unpacks `file` if it is a PE packed by a supported packer, into the image
/// ClamAV scans in its place. `Ok(None)`: not a PE ClamAV would unpack.
pub fn unpack(file: &[u8], limits: &UnpackLimits) -> Result<Option<Unpacked>, UnpackError> {
    let Some(pe) = pe::parse(file) else {
        return Ok(None);
    };
    if pe.pe32plus {
        return Ok(None);
    }
    // ClamAV reads up to 4 KiB from the entry point into a stack buffer; the
    // part past the end of the file is left as it was (zeros here).
    let mut epbuff = vec![0u8; EP_BUFFER];
    let Some(avail) = file.get(pe.ep as usize..) else {
        return Ok(None);
    };
    let epsize = avail.len().min(EP_BUFFER);
    epbuff[..epsize].copy_from_slice(&avail[..epsize]);
    // UPX, FSG and MEW leave an empty section followed by one with data.
    let empty = pe
        .sections
        .windows(2)
        .position(|w| w[0].rsz == 0 && w[0].vsz != 0 && w[1].rsz != 0 && w[1].vsz != 0);
    let mut failure = None;
    let mut step = |s: Step| -> Option<Result<Option<Unpacked>, UnpackError>> {
        match s {
            Step::Next => None,
            Step::Failed(e) => {
                failure.get_or_insert(e);
                None
            }
            Step::Stop => Some(failure.take().map_or(Ok(None), Err)),
            Step::Done(packer, image) => Some(Ok(Some(Unpacked { packer, image }))),
        }
    };
    if let Some(i) = empty
        && epsize >= 16
        && let Some(r) = step(mew::unpack(file, &pe, &epbuff, i, limits)?)
    {
        return r;
    }
    // ClamAV tries nothing else when fewer than 168 bytes follow the entry
    // point.
    if epsize < MIN_EP_BYTES {
        return failure.map_or(Ok(None), Err);
    }
    if let Some(r) = step(upack::unpack(file, &pe, &epbuff, limits)?) {
        return r;
    }
    if let Some(i) = empty
        && let Some(r) = step(fsg::unpack_v200(file, &pe, &epbuff, i, limits)?)
    {
        return r;
    }
    if let Some(i) = empty
        && let Some(r) = step(fsg::unpack_v133(file, &pe, &epbuff, i, limits)?)
    {
        return r;
    }
    if let Some(i) = empty
        && let Some(r) = step(fsg::unpack_v131(file, &pe, &epbuff, i, limits)?)
    {
        return r;
    }
    if let Some(i) = empty
        && let Some(r) = step(upx::unpack(file, &pe, &epbuff, i, limits)?)
    {
        return r;
    }
    // Nor any of the rest when fewer than 200 bytes do.
    if epsize < 200 {
        return failure.map_or(Ok(None), Err);
    }
    if let Some(r) = step(petite::unpack(file, &pe, &epbuff, limits)?) {
        return r;
    }
    if let Some(r) = step(spin::unpack(file, &pe, &epbuff, limits)?) {
        return r;
    }
    if let Some(r) = step(yc::unpack(file, &pe, &epbuff, limits)?) {
        return r;
    }
    if let Some(r) = step(wwpack::unpack(file, &pe, &epbuff, limits)?) {
        return r;
    }
    if let Some(r) = step(aspack::unpack(file, &pe, &epbuff, epsize, limits)?) {
        return r;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(None),
    }
}
