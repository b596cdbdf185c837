//! Encrypted PDFs, opened as ClamAV opens them: with the empty user
//! password (or, for revision 6, the empty owner password), through the
//! standard security handler, revisions 2 to 6 (RC4 40 to 128 bits, AES-128,
//! AES-256). A document that needs a password is left encrypted
//! (`Heuristics.Encrypted.PDF` in ClamAV, with `--alert-encrypted-doc`).
//!
//! ClamAV's quirks are kept: an AES string or stream shorter than two blocks,
//! or an AES key that is not 16, 24 or 32 bytes, "decrypts" to as many zero
//! bytes; padding is removed only when it checks out; a password check that
//! fails for revisions 2 to 4 still leaves the key, which a `/Crypt` filter
//! uses.

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use md5::{Digest, Md5};
use sha2::{Sha256, Sha384, Sha512};

use super::syntax::{get_dict, read_int, read_string};

/// How strings or streams are encrypted (ClamAV's `enum enc_method`, in its
/// order: `Unknown` and `None` decrypt to nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Method {
    Unknown,
    None,
    Identity,
    V2,
    AesV2,
    AesV3,
}

/// What the standard security handler gave.
pub(super) struct Security {
    pub(super) key: Option<Vec<u8>>,
    /// The empty password opened the document.
    pub(super) decryptable: bool,
    pub(super) stream: Method,
    pub(super) string: Method,
    pub(super) embedded: Method,
    /// The `/CF` dictionary's text, from its value on.
    cf: Vec<u8>,
}

const PADDING: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4e, 0x56, 0xff, 0xfa, 0x01, 0x08,
    0x2e, 0x2e, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

/// `pdf_readval`: a name value of `key`, without its slash.
fn read_name(b: &[u8], at: usize, len: usize, key: &[u8]) -> Option<Vec<u8>> {
    let (mut q, mut left) = get_dict(b, at, len, key)?;
    let orig = left;
    while left > 0 && b.get(q) == Some(&b' ') {
        q += 1;
        left -= 1;
    }
    if b.get(q) != Some(&b'/') {
        return None;
    }
    q += 1;
    left = left.checked_sub(1)?;
    let mut end = q;
    while left > 0 {
        match b.get(end) {
            None | Some(0) | Some(b'/') => break,
            Some(b'>') if left > 1 && b.get(end + 1) == Some(&b'>') => break,
            _ => {}
        }
        end += 1;
        left -= 1;
    }
    while left < orig && end > q && super::syntax::c_space(b[end - 1]) {
        end -= 1;
        left += 1;
    }
    b.get(q..end).map(<[u8]>::to_vec)
}

/// `pdf_readbool`.
fn read_bool(b: &[u8], at: usize, len: usize, key: &[u8], default: bool) -> bool {
    match get_dict(b, at, len, key) {
        Some((q, left)) if left >= 5 => {
            let v = &b[q..];
            if v.starts_with(b"true") {
                true
            } else if v.starts_with(b"false") {
                false
            } else {
                default
            }
        }
        _ => default,
    }
}

/// The method of the crypt filter named `name` in `/CF` (`parse_enc_method`).
pub(super) fn method_of(cf: &[u8], name: Option<&[u8]>, default: Method) -> Method {
    let Some(name) = name else {
        return default;
    };
    if name == b"Identity" {
        return Method::Identity;
    }
    let Some((q, left)) = get_dict(cf, 0, cf.len(), name) else {
        return default;
    };
    match read_name(cf, q, left, b"/CFM") {
        Some(v) if v.starts_with(b"V2") => Method::V2,
        Some(v) if v.starts_with(b"AESV2") => Method::AesV2,
        Some(v) if v.starts_with(b"AESV3") => Method::AesV3,
        Some(v) if v.starts_with(b"None") => Method::None,
        _ => Method::Unknown,
    }
}

impl Security {
    /// Reads the `/Encrypt` dictionary `dict` (the object's text) with the
    /// document's first `/ID` string (`pdf_handle_enc`).
    pub(super) fn open(dict: &[u8], file_id: &[u8]) -> Security {
        let mut s = Security {
            key: None,
            decryptable: false,
            stream: Method::Unknown,
            string: Method::Unknown,
            embedded: Method::Unknown,
            cf: Vec::new(),
        };
        s.read(dict, file_id);
        s
    }

    fn read(&mut self, q: &[u8], file_id: &[u8]) -> Option<()> {
        let len = q.len();
        let std_at = memchr::memmem::find(q, b"/Standard")?;
        // ClamAV reads these as C `int`s compared with `unsigned`s.
        let as_u32 = |v: i64| v as u32;
        let mut length = as_u32(read_int(q, std_at, len - std_at, b"/Length"));
        if length == u32::MAX {
            length = as_u32(read_int(q, 0, len, b"/Length"));
        }
        if length < 40 {
            length = 40;
        }
        let r = as_u32(read_int(q, 0, len, b"/R"));
        if r == u32::MAX || !(2..=6).contains(&r) {
            return None;
        }
        let p = read_int(q, 0, len, b"/P");
        if r < 6 && p == -1 {
            return None;
        }
        let oulen = if r < 5 { 32 } else { 48 };
        let mut em = true;
        let (mut ue, mut oe) = (None, None);
        if r <= 3 {
            self.stream = Method::V2;
            self.string = Method::V2;
            self.embedded = Method::V2;
        } else {
            em = read_bool(q, 0, len, b"/EncryptMetadata", true);
            let stmf = read_name(q, 0, len, b"/StmF");
            let strf = read_name(q, 0, len, b"/StrF");
            let eff = read_name(q, 0, len, b"/EFF");
            if let Some((at, left)) = get_dict(q, 0, len, b"/CF") {
                self.cf = q[at..at + left].to_vec();
            }
            self.stream = method_of(&self.cf, stmf.as_deref(), Method::Identity);
            self.string = method_of(&self.cf, strf.as_deref(), Method::Identity);
            self.embedded = method_of(&self.cf, eff.as_deref(), self.stream);
            if r == 4 {
                length = 128;
            } else {
                length = 256;
                ue = read_string(q, 0, len, b"/UE", false).map(|(s, _)| s);
                oe = read_string(q, 0, len, b"/OE", false).map(|(s, _)| s);
            }
        }
        if length == u32::MAX {
            length = 40;
        }
        let o = read_string(q, 0, len, b"/O", false)?.0;
        let u = read_string(q, 0, len, b"/U", false)?.0;
        for v in [&o, &u] {
            if v.len() < oulen || v[oulen..].iter().any(|&c| c != 0) {
                return None;
            }
        }
        if !length.is_multiple_of(8) {
            return None;
        }
        if r == 6
            && let Some(oe) = &oe
        {
            let check = hash_r6(&o[32..40], Some(&u[..48]));
            if check == o[..32] {
                let k = hash_r6(&o[40..48], Some(&u[..48]));
                if oe.len() == 32 {
                    self.key = Some(aes_decrypt_no_iv(oe, &k));
                    self.decryptable = true;
                    return Some(());
                }
            }
        }
        self.user(r, &o, &u, p as i32, em, ue.as_deref(), length, file_id);
        Some(())
    }

    /// The empty user password (`check_user_password`).
    #[allow(clippy::too_many_arguments)]
    fn user(
        &mut self,
        r: u32,
        o: &[u8],
        u: &[u8],
        p: i32,
        em: bool,
        ue: Option<&[u8]>,
        mut length: u32,
        file_id: &[u8],
    ) {
        match r {
            2..=4 => {
                let mut h = Md5::new();
                h.update(PADDING);
                h.update(&o[..32]);
                h.update(p.to_le_bytes());
                h.update(file_id);
                if r >= 4 && !em {
                    h.update([0xff; 4]);
                }
                let mut result: [u8; 16] = h.finalize().into();
                length = length.min(128);
                if r >= 3 {
                    for _ in 0..50 {
                        result = Md5::digest(&result[..length as usize / 8]).into();
                    }
                }
                if r == 2 {
                    length = 40;
                }
                let key = result[..length as usize / 8].to_vec();
                let ok = if r == 2 {
                    let mut data = PADDING;
                    rc4(&key, &mut data);
                    data[..] == u[..32]
                } else {
                    let mut h = Md5::new();
                    h.update(PADDING);
                    h.update(file_id);
                    let mut result: [u8; 16] = h.finalize().into();
                    rc4(&key, &mut result);
                    for i in 1..=19u8 {
                        let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
                        rc4(&k, &mut result);
                    }
                    result[..] == u[..16]
                };
                self.key = Some(key);
                self.decryptable = ok;
            }
            5 => {
                let check: [u8; 32] = Sha256::digest(&u[32..40]).into();
                if check[..] == u[..32] {
                    let k: [u8; 32] = Sha256::digest(&u[40..48]).into();
                    if let Some(ue) = ue.filter(|ue| ue.len() == 32) {
                        self.key = Some(aes_decrypt_no_iv(ue, &k));
                        self.decryptable = true;
                    }
                }
            }
            6 => {
                let Some(ue) = ue else { return };
                let check = hash_r6(&u[32..40], None);
                if check[..] != u[..32] {
                    return;
                }
                let k = hash_r6(&u[40..48], None);
                if ue.len() == 32 {
                    self.key = Some(aes_decrypt_no_iv(ue, &k));
                    self.decryptable = true;
                }
            }
            _ => {}
        }
    }

    /// Decrypts `data` of object `id` (`decrypt_any`); `None` where ClamAV
    /// gets nothing (no key, methods `None` and `Unknown`).
    pub(super) fn decrypt(&self, id: u32, data: &[u8], method: Method) -> Option<Vec<u8>> {
        let key = self.key.as_ref().filter(|k| !k.is_empty())?;
        if data.is_empty() {
            return None;
        }
        let mut h = Md5::new();
        h.update(key);
        h.update([
            (id >> 8) as u8,
            (id >> 16) as u8,
            (id >> 24) as u8,
            id as u8,
            0,
        ]);
        if method == Method::AesV2 {
            h.update(b"sAlT");
        }
        let object_key: [u8; 16] = h.finalize().into();
        let n = (key.len() + 5).min(16);
        match method {
            Method::V2 => {
                let mut v = data.to_vec();
                rc4(&object_key[..n], &mut v);
                Some(v)
            }
            Method::AesV2 => Some(aes_decrypt(data, &object_key[..n])),
            Method::AesV3 => Some(aes_decrypt(data, key)),
            Method::Identity => Some(data.to_vec()),
            Method::None | Method::Unknown => None,
        }
    }

    /// The method a `/Crypt` filter names in its `/DecodeParms`.
    pub(super) fn crypt_filter(&self, name: Option<&[u8]>) -> Method {
        method_of(&self.cf, name, Method::Identity)
    }
}

/// RC4 in place.
pub(super) fn rc4(key: &[u8], data: &mut [u8]) {
    if key.is_empty() {
        return;
    }
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    for b in data {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[usize::from(i)]);
        s.swap(usize::from(i), usize::from(j));
        *b ^= s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))];
    }
}

enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Option<Aes> {
        Some(match key.len() {
            16 => Aes::A128(aes::Aes128::new_from_slice(key).ok()?),
            24 => Aes::A192(aes::Aes192::new_from_slice(key).ok()?),
            32 => Aes::A256(aes::Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }
    fn decrypt(&self, block: &mut [u8; 16]) {
        let mut b = Array::from(*block);
        match self {
            Aes::A128(c) => c.decrypt_block(&mut b),
            Aes::A192(c) => c.decrypt_block(&mut b),
            Aes::A256(c) => c.decrypt_block(&mut b),
        }
        *block = b.into();
    }
}

/// AES-CBC with the IV in the first block, as ClamAV's `aes_256cbc_decrypt`
/// with `has_iv`: the output has the input's length less the IV, less a
/// trailing partial block, less the padding when all its bytes agree.
fn aes_decrypt(input: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; input.len()];
    let Some(aes) = Aes::new(key) else {
        return out;
    };
    if input.len() < 32 {
        return out;
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&input[..16]);
    let body = &input[16..];
    let blocks = body.len() / 16;
    for k in 0..blocks {
        let mut block = [0u8; 16];
        block.copy_from_slice(&body[k * 16..k * 16 + 16]);
        aes.decrypt(&mut block);
        for (i, b) in block.iter_mut().enumerate() {
            *b ^= iv[i];
        }
        iv.copy_from_slice(&body[k * 16..k * 16 + 16]);
        out[k * 16..k * 16 + 16].copy_from_slice(&block);
    }
    let tail = body.len() % 16 + 16;
    let end = blocks * 16;
    let pad = usize::from(out[end - 1]);
    let keep = if pad > 16 || (1..pad).any(|i| out[end - pad + i] != pad as u8) {
        input.len() - tail
    } else {
        input.len() - tail - pad
    };
    out.truncate(keep);
    out
}

/// Two blocks decrypted with a zero IV (the `/UE` and `/OE` keys).
fn aes_decrypt_no_iv(input: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let Some(aes) = Aes::new(key) else {
        return vec![0; input.len()];
    };
    let mut iv = [0u8; 16];
    for chunk in out.chunks_exact_mut(16) {
        let mut block = [0u8; 16];
        block.copy_from_slice(chunk);
        let cipher = block;
        aes.decrypt(&mut block);
        for (i, b) in block.iter_mut().enumerate() {
            *b ^= iv[i];
        }
        iv = cipher;
        chunk.copy_from_slice(&block);
    }
    out
}

/// ISO 32000-2's hash for revision 6 with the empty password
/// (`compute_hash_r6`): `salt` is 8 bytes, `u` the 48-byte `/U` for the
/// owner password.
pub(super) fn hash_r6(salt: &[u8], u: Option<&[u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    if let Some(u) = u {
        h.update(u);
    }
    let mut k: Vec<u8> = h.finalize().to_vec();
    let mut i = 0u32;
    let mut last = 0u8;
    while i < 64 || i < u32::from(last) + 32 {
        let mut k1 = k.clone();
        if let Some(u) = u {
            k1.extend_from_slice(u);
        }
        let data = k1.repeat(64);
        let mut e = Vec::with_capacity(data.len());
        if let Ok(aes) = aes::Aes128::new_from_slice(&k[..16]) {
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&k[16..32]);
            for chunk in data.chunks_exact(16) {
                let mut block = [0u8; 16];
                for (j, b) in block.iter_mut().enumerate() {
                    *b = chunk[j] ^ iv[j];
                }
                let mut a = Array::from(block);
                aes.encrypt_block(&mut a);
                block = a.into();
                iv = block;
                e.extend_from_slice(&block);
            }
        }
        let sum: u32 = e.iter().take(16).map(|&b| u32::from(b)).sum();
        k = match sum % 3 {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        last = e.last().copied().unwrap_or(0);
        i += 1;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&k[..32]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_known_answer() {
        let mut d = *b"Plaintext";
        rc4(b"Key", &mut d);
        assert_eq!(d, [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
    }
}
