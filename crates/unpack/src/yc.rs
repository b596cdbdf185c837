//! yoda's Crypter (yC) 1.x: every byte of the program's sections is run
//! through a small polymorphic decryptor (SUB/ADD/XOR/ROL/ROR on AL), which
//! ClamAV's `yc.c` emulates; first the second-stage decryptor itself is
//! decrypted the same way. The image is the file with its sections
//! decrypted, the yC section cut off, and the header pointing to the
//! original entry point.

use crate::pe::{PeHeader, u16_at, u32_at};
use crate::{Packer, Step, UnpackError, UnpackLimits};

/// ClamAV's bound on the decryptor's jumps per emulated buffer.
const MAX_JUMPS: u32 = 100_000_000;

/// Why the emulator stopped.
enum Emu {
    /// A read past the file (ClamAV's "Heuristics.BoundsCheck").
    Bounds,
    /// An instruction the emulator does not know.
    Opcode(u8),
}

/// ClamAV's bounds check: `start + bound` may be the file's size itself
/// (one past the end), not more. 32-bit arithmetic, as there.
fn bounded(filesize: u32, start: u32, bound: u32) -> Result<usize, Emu> {
    let at = start.wrapping_add(bound);
    if at > filesize {
        Err(Emu::Bounds)
    } else {
        Ok(at as usize)
    }
}

/// Decrypts `len` (at most `max`) bytes at `code` with the decryptor at
/// `dec`. `buf` has one byte more than `filesize`, for the byte ClamAV may
/// touch just past the end.
fn emulate(
    buf: &mut [u8],
    filesize: u32,
    dec: u32,
    code: u32,
    len: u32,
    max: u32,
) -> Result<(), Emu> {
    let mut cl = len as u8;
    let mut jumps = MAX_JUMPS;
    let byte = |buf: &[u8], at: usize| buf.get(at).copied().ok_or(Emu::Bounds);
    let mut i = 0u32;
    while i < len && i < max {
        let at = bounded(filesize, code, i)?;
        let mut al = byte(buf, at)?;
        let mut j: u32 = 0;
        // The decryptor's jumps do not depend on the data: more than one
        // per instruction slot for a byte means it loops for ever, which
        // ClamAV finds out only after its 100,000,000 jumps. Same result,
        // sooner.
        let mut byte_jumps = 0u32;
        while j < 0x30 {
            let op = byte(buf, bounded(filesize, dec, j)?)?;
            let operand = |j: &mut u32| -> Result<u8, Emu> {
                *j = j.wrapping_add(1);
                byte(buf, bounded(filesize, dec, *j)?)
            };
            match op {
                0xeb => {
                    let d = operand(&mut j)?;
                    if jumps == 0 || byte_jumps > 0x30 {
                        return Err(Emu::Bounds);
                    }
                    jumps -= 1;
                    byte_jumps += 1;
                    j = j.wrapping_add(d as i8 as u32);
                }
                0xfe => {
                    al = al.wrapping_sub(1);
                    j = j.wrapping_add(1);
                }
                0x2a => {
                    al = al.wrapping_sub(cl);
                    j = j.wrapping_add(1);
                }
                0x02 => {
                    al = al.wrapping_add(cl);
                    j = j.wrapping_add(1);
                }
                0x32 => {
                    al ^= cl;
                    j = j.wrapping_add(1);
                }
                0x04 => al = al.wrapping_add(operand(&mut j)?),
                0x34 => al ^= operand(&mut j)?,
                0x2c => al = al.wrapping_sub(operand(&mut j)?),
                0xc0 => {
                    let rol = operand(&mut j)? == 0xc0;
                    let n = u32::from(operand(&mut j)? & 7);
                    al = if rol {
                        al.rotate_left(n)
                    } else {
                        al.rotate_right(n)
                    };
                }
                0xd2 => {
                    let ror = operand(&mut j)? == 0xc8;
                    j = j.wrapping_add(1);
                    let n = u32::from(cl & 7);
                    al = if ror {
                        al.rotate_right(n)
                    } else {
                        al.rotate_left(n)
                    };
                }
                0x90 | 0xf8 | 0xf9 => {}
                other => return Err(Emu::Opcode(other)),
            }
            j = j.wrapping_add(1);
        }
        cl = cl.wrapping_sub(1);
        let at = bounded(filesize, code, i)?;
        *buf.get_mut(at).ok_or(Emu::Bounds)? = al;
        i += 1;
    }
    Ok(())
}

/// Which yC stub is at the entry point: the length of the first layer and
/// where the stub starts relative to the usual one.
fn recognise(epbuff: &[u8]) -> Option<(u32, i32)> {
    let at = |o: usize, s: &[u8]| epbuff.get(o..o + s.len()) == Some(s);
    let rd = |o: usize| u32_at(epbuff, o).unwrap_or(0);
    let b = |o: usize| epbuff.get(o).copied().unwrap_or(0);
    let mut ecx = 0u32;
    let mut offset = 0i32;
    if at(
        0,
        b"\x55\x8B\xEC\x53\x56\x57\x60\xE8\x00\x00\x00\x00\x5D\x81\xED",
    ) && at(
        0x26,
        b"\x8D\x3A\x8B\xF7\x33\xC0\xEB\x04\x90\xEB\x01\xC2\xAC",
    ) && b(0x13) == 0xb9
        && u16_at(epbuff, 0x18) == Some(0xe981)
        && at(0x1e, b"\x8B\xD5\x81\xC2")
    {
        offset = 0;
        if 0x6cu32.wrapping_sub(rd(0xf)).wrapping_add(rd(0x22)) == 0xc6 {
            ecx = rd(0x14).wrapping_sub(rd(0x1a));
        }
    }
    if ecx == 0
        && at(0, b"\x55\x8B\xEC\x83\xEC\x40\x53\x56\x57")
        && at(0x17, b"\xe8\x00\x00\x00\x00\x5d\x81\xed")
        && b(0x23) == 0xb9
    {
        offset = 0x10;
        if 0x6cu32.wrapping_sub(rd(0x1f)).wrapping_add(rd(0x32)) == 0xc6 {
            ecx = rd(0x24).wrapping_sub(rd(0x2a));
        }
    }
    if ecx == 0
        && at(0, b"\x60\xe8\x00\x00\x00\x00\x5d\x81\xed")
        && b(0xd) == 0xb9
        && u16_at(epbuff, 0x12) == Some(0xbd8d)
        && at(0x18, b"\x8b\xf7\xac")
    {
        offset = -0x18;
        if 0x66u32.wrapping_sub(rd(0x9)).wrapping_add(rd(0x14)) == 0xae {
            ecx = rd(0xe);
        }
    }
    let mark = usize::try_from(0x63 + offset).ok()?;
    (ecx > 0x800 && ecx < 0x2000 && at(mark, b"\xaa\xe2\xcc")).then_some((ecx, offset))
}

pub(crate) fn unpack(
    file: &[u8],
    pe: &PeHeader,
    epbuff: &[u8],
    limits: &UnpackLimits,
) -> Result<Step, UnpackError> {
    let fail = |detail: String| {
        Ok(Step::Failed(UnpackError::Failed {
            packer: Packer::Yc,
            detail,
        }))
    };
    let n = pe.sections.len();
    let Some(last) = pe.sections.last() else {
        return Ok(Step::Next);
    };
    if n < 2 || pe.vep != last.rva.wrapping_add(0x60) {
        return Ok(Step::Next);
    }
    let Some((ecx, offset)) = recognise(epbuff) else {
        return Ok(Step::Next);
    };
    let need = last
        .raw
        .wrapping_add(0xc6)
        .wrapping_add(ecx)
        .wrapping_add(offset as u32);
    if (file.len() as u64) < u64::from(need) {
        return Ok(Step::Next);
    }
    let Ok(fsize) = u32::try_from(file.len()) else {
        return Ok(Step::Next);
    };
    limits.check(Packer::Yc, u64::from(fsize), file.len() as u64)?;
    let mut buf = Vec::with_capacity(file.len() + 1);
    buf.extend_from_slice(file);
    buf.push(0);
    let ycsect = last.raw.wrapping_add(offset as u32);
    if let Err(e) = emulate(
        &mut buf,
        fsize,
        ycsect.wrapping_add(0x93),
        ycsect.wrapping_add(0xc6),
        ecx,
        ecx,
    ) {
        return fail(emu_error("the first layer", e));
    }
    let filesize = fsize.wrapping_sub(last.ursz);
    let peoff = pe.e_lfanew as usize;
    let table = peoff + 0x18 + usize::from(pe.opt_hdr_size);
    let second = ycsect.wrapping_add(if offset == -0x18 { 0x3ea } else { 0x457 });
    for (i, s) in pe.sections[..n - 1].iter().enumerate() {
        let name = u32_at(&buf, table + i * 0x28).unwrap_or(0);
        let skipped = [
            0x6372_7372, // rsrc
            0x7273_722e, // .rsr
            0x6f6c_6572, // relo
            0x6c65_722e, // .rel
            0x6164_652e, // .eda
            0x6164_722e, // .rda
            0x6164_692e, // .ida
            0x736c_742e, // .tls
        ];
        if s.raw == 0 || s.rsz == 0 || skipped.contains(&name) || name & 0xffff == 0x4379 {
            continue;
        }
        let max = filesize.wrapping_sub(s.raw);
        if max > filesize {
            return fail(format!("section {i} starts past the decrypted data"));
        }
        if let Err(e) = emulate(&mut buf, fsize, second, s.raw, s.ursz, max) {
            return fail(emu_error(&format!("section {i}"), e));
        }
    }
    let put = |buf: &mut Vec<u8>, at: usize, v: &[u8]| {
        if let Some(d) = buf.get_mut(at..at + v.len()) {
            d.copy_from_slice(v);
        }
    };
    put(&mut buf, peoff + 6, &((n - 1) as u16).to_le_bytes());
    put(&mut buf, peoff + 24 + 0x68, &[0; 8]);
    let oep = u32_at(&buf, ycsect.wrapping_add(0xa0f) as usize).unwrap_or(0);
    put(&mut buf, peoff + 24 + 16, &oep.to_le_bytes());
    let image = u32_at(&buf, peoff + 24 + 0x38)
        .unwrap_or(0)
        .wrapping_sub(last.vsz);
    put(&mut buf, peoff + 24 + 0x38, &image.to_le_bytes());
    buf.truncate(filesize as usize);
    Ok(Step::Done(Packer::Yc, buf))
}

fn emu_error(what: &str, e: Emu) -> String {
    match e {
        Emu::Bounds => format!("decrypting {what} runs past the end of the file"),
        Emu::Opcode(op) => format!("decrypting {what}: unknown decryptor instruction {op:#04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decryptor_ops() {
        // sub al, 5; xor al, cl; rol al, 1; nop to the end of the slots.
        let mut buf = vec![0x90u8; 0x40];
        buf[..7].copy_from_slice(&[0x2c, 0x05, 0x32, 0xc1, 0xc0, 0xc0, 0x01]);
        buf[0x30] = 0x10;
        assert!(emulate(&mut buf, 0x40, 0, 0x30, 1, 1).is_ok());
        // cl is the length (1): ((0x10 - 5) ^ 1).rotate_left(1)
        assert_eq!(buf[0x30], ((0x10u8 - 5) ^ 1).rotate_left(1));
    }

    #[test]
    fn a_decryptor_that_jumps_in_place_fails() {
        // jmp $ (EB FE): ClamAV gives up after 100,000,000 jumps.
        let mut buf = vec![0x90u8; 0x40];
        buf[..2].copy_from_slice(&[0xeb, 0xfe]);
        assert!(matches!(
            emulate(&mut buf, 0x40, 0, 0x30, 4, 4),
            Err(Emu::Bounds)
        ));
    }

    #[test]
    fn unknown_instruction() {
        let mut buf = vec![0x90u8; 0x40];
        buf[3] = 0xcc;
        assert!(matches!(
            emulate(&mut buf, 0x40, 0, 0x30, 1, 1),
            Err(Emu::Opcode(0xcc))
        ));
    }
}
