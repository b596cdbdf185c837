//! Packed executables: the image ClamAV's unpackers rebuild from a packed PE
//! (UPX and its kind, see `aether-unpack`) is scanned as a member without a
//! name, one level down, after the PE's embedded files, as `cli_scanpe`
//! scans its rebuilt file after the raw scan.

use aether_formats::{FileType, ReadAt};
use aether_unpack::{UnpackError, UnpackLimits, Unpacked};

/// Whether ClamAV tries its unpackers on files of this type.
pub(crate) fn has_unpacked(ty: FileType) -> bool {
    ty == FileType::Pe
}

/// Why there is no image.
pub(crate) enum NoImage {
    /// Not packed, or not by a packer ClamAV undoes.
    NotPacked,
    /// Unpacking would need more than `max_size`: a limit, as ClamAV's
    /// `cli_checklimits` judges it.
    Limit,
    /// Recognised but broken (a note, not a failure of the scan).
    Broken(String),
}

/// Unpacks the PE in `src`, needing at most `max_size` bytes (0: no
/// limit). The file is read whole only when its headers look packed, and
/// only up to `max_file` bytes (`MaxFileSize`; 0: no limit).
pub(crate) fn unpack(src: &dyn ReadAt, max_file: u64, max_size: u64) -> Result<Unpacked, NoImage> {
    let size = src.size();
    let mut head = vec![0u8; (size.min(aether_unpack::PROBE_LEN as u64)) as usize];
    if src.read_exact_at(&mut head, 0).is_err() || !aether_unpack::probe(&head, size) {
        return Err(NoImage::NotPacked);
    }
    // A PE is unpacked only if it may itself be scanned whole.
    if max_file != 0 && size > max_file {
        return Err(NoImage::Limit);
    }
    let Ok(len) = usize::try_from(size) else {
        return Err(NoImage::Limit);
    };
    let mut file = head;
    if len > file.len() {
        let at = file.len();
        file.resize(len, 0);
        if let Err(e) = src.read_exact_at(&mut file[at..], at as u64) {
            return Err(NoImage::Broken(format!(
                "reading the packed executable: {e}"
            )));
        }
    }
    let limits = UnpackLimits {
        max_size,
        ..UnpackLimits::default()
    };
    match aether_unpack::unpack(&file, &limits) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(NoImage::NotPacked),
        Err(UnpackError::TooLarge { allowed, .. }) if allowed == max_size => Err(NoImage::Limit),
        Err(e) => Err(NoImage::Broken(e.to_string())),
    }
}
