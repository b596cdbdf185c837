//! Builders of PDF test files shared by aether-formats' reader tests and the
//! engine's clamscan differential test (included there by path): objects,
//! streams with their dictionaries, a document around them, and encoders for
//! the filters ClamAV decodes.

#![allow(dead_code)]

use std::io::Write;

/// `N 0 obj` ... `endobj` around `body`.
pub fn obj(num: u32, body: &[u8]) -> Vec<u8> {
    let mut o = format!("{num} 0 obj\n").into_bytes();
    o.extend_from_slice(body);
    o.extend_from_slice(b"\nendobj\n");
    o
}

/// A stream object: `<< /Length len dict >>` then the data. `length` is the
/// `/Length` value written (`None`: the data's true length).
pub fn stream_obj(num: u32, dict: &str, data: &[u8], length: Option<&str>) -> Vec<u8> {
    let len = length.map_or_else(|| data.len().to_string(), str::to_string);
    let mut body = format!("<< /Length {len} {dict} >>\nstream\n").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    obj(num, &body)
}

/// A document: header, the objects, a cross-reference table (offsets of
/// `N 0 obj` lines found in the objects) and a trailer naming object 1.
pub fn document(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut d = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for o in objects {
        offsets.push(d.len());
        d.extend_from_slice(o);
    }
    let xref = d.len();
    let _ = writeln!(d, "xref\n0 {}\n0000000000 65535 f ", offsets.len() + 1);
    for off in &offsets {
        let _ = writeln!(d, "{off:010} 00000 n ");
    }
    let _ = write!(
        d,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    );
    d
}

/// A catalog, a page and the page's content stream (objects 1 to 3), the
/// usual frame around test objects numbered from 4.
pub fn frame() -> Vec<Vec<u8>> {
    vec![
        obj(1, b"<< /Type /Catalog /Pages 2 0 R >>"),
        obj(2, b"<< /Type /Pages /Kids [] /Count 0 >>"),
    ]
}

pub fn flate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

pub fn ascii_hex(data: &[u8]) -> Vec<u8> {
    let mut s = String::new();
    for b in data {
        s.push_str(&format!("{b:02X}"));
    }
    s.push('>');
    s.into_bytes()
}

pub fn ascii85(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from_be_bytes(word);
        if v == 0 && chunk.len() == 4 {
            out.push(b'z');
            continue;
        }
        let mut digits = [0u8; 5];
        let mut x = v;
        for d in digits.iter_mut().rev() {
            *d = (x % 85) as u8 + b'!';
            x /= 85;
        }
        out.extend_from_slice(&digits[..chunk.len() + 1]);
    }
    out.extend_from_slice(b"~>");
    out
}

/// RunLength: runs of a repeated byte, literal runs otherwise.
pub fn run_length(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        let mut run = 1;
        while i + run < data.len() && data[i + run] == b && run < 128 {
            run += 1;
        }
        if run >= 3 {
            out.push((257 - run) as u8);
            out.push(b);
            i += run;
        } else {
            let n = (data.len() - i).min(128);
            out.push((n - 1) as u8);
            out.extend_from_slice(&data[i..i + n]);
            i += n;
        }
    }
    out.push(128);
    out
}

/// LZW as PDF writes it (9 to 12 bit codes, clear first, end code last);
/// `early_change` as `/EarlyChange` (1 is the default).
pub fn lzw(data: &[u8], early_change: bool) -> Vec<u8> {
    use std::collections::HashMap;
    struct Out {
        bytes: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Out {
        fn put(&mut self, code: u32, width: u32) {
            self.acc = self.acc << width | u64::from(code);
            self.n += width;
            while self.n >= 8 {
                self.bytes.push((self.acc >> (self.n - 8)) as u8);
                self.n -= 8;
            }
        }
    }
    let mut out = Out {
        bytes: Vec::new(),
        acc: 0,
        n: 0,
    };
    let mut dict: HashMap<(u32, u8), u32> = HashMap::new();
    let mut next = 258u32;
    let mut width = 9u32;
    let limit = |w: u32| {
        if early_change {
            (1u32 << w) - 1
        } else {
            1u32 << w
        }
    };
    out.put(256, width);
    let mut w: Option<u32> = None;
    let added =
        |out: &mut Out, dict: &mut HashMap<(u32, u8), u32>, next: &mut u32, width: &mut u32| {
            *next += 1;
            if *next >= 4094 {
                out.put(256, *width);
                dict.clear();
                *next = 258;
                *width = 9;
            } else if *next > limit(*width) && *width < 12 {
                *width += 1;
            }
        };
    for &c in data {
        match w {
            None => w = Some(u32::from(c)),
            Some(code) => match dict.get(&(code, c)) {
                Some(&k) => w = Some(k),
                None => {
                    out.put(code, width);
                    dict.insert((code, c), next);
                    added(&mut out, &mut dict, &mut next, &mut width);
                    w = Some(u32::from(c));
                }
            },
        }
    }
    if let Some(code) = w {
        out.put(code, width);
        added(&mut out, &mut dict, &mut next, &mut width);
    }
    out.put(257, width);
    if out.n > 0 {
        let pad = 8 - out.n;
        out.put(0, pad);
    }
    out.bytes
}

/// An object stream holding `objects` (number, text), as `/Type /ObjStm`
/// data: the number-offset pairs, then the objects.
pub fn objstm_data(objects: &[(u32, &[u8])]) -> (Vec<u8>, usize) {
    let mut header = String::new();
    let mut body = Vec::new();
    for (num, text) in objects {
        header.push_str(&format!("{num} {} ", body.len()));
        body.extend_from_slice(text);
        body.push(b'\n');
    }
    let mut data = header.into_bytes();
    let first = data.len();
    data.extend_from_slice(&body);
    (data, first)
}

/// A document with these objects and `extra` in its trailer dictionary.
pub fn document_with(objects: &[Vec<u8>], extra: &str) -> Vec<u8> {
    let d = document(objects);
    let at = d
        .windows(8)
        .rposition(|w| w == b"trailer\n")
        .expect("document() writes a trailer");
    let mut out = d[..at].to_vec();
    let rest = String::from_utf8_lossy(&d[at..])
        .replace(" /Root 1 0 R >>", &format!(" /Root 1 0 R {extra} >>"));
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The standard security handler, with an empty user password, as writers
/// encrypt a document for anyone to open: RC4 (revisions 2 and 3), AES-128
/// (revision 4), AES-256 (revisions 5 and 6). The owner password is not
/// made (its `/O` is filler): only the user password is checked here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Rc4R2,
    Rc4R3,
    AesR4,
    AesR5,
    AesR6,
}

pub struct Encryption {
    pub security: Security,
    key: Vec<u8>,
    /// The `/Encrypt` dictionary.
    pub dict: String,
    file_id: Vec<u8>,
}

const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4e, 0x56, 0xff, 0xfa, 0x01, 0x08,
    0x2e, 0x2e, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn rc4(key: &[u8], data: &mut [u8]) {
    let mut s: Vec<u8> = (0..=255).collect();
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    for b in data {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[i as usize]);
        s.swap(i as usize, j as usize);
        *b ^= s[s[i as usize].wrapping_add(s[j as usize]) as usize];
    }
}

fn aes_cbc(key: &[u8], iv: [u8; 16], data: &[u8], pad: bool) -> Vec<u8> {
    use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
    let mut plain = data.to_vec();
    if pad {
        let n = 16 - plain.len() % 16;
        plain.extend(std::iter::repeat_n(n as u8, n));
    }
    let mut out = Vec::new();
    let mut prev = iv;
    for chunk in plain.chunks(16) {
        let mut block = [0u8; 16];
        for (k, b) in block.iter_mut().enumerate() {
            *b = chunk[k] ^ prev[k];
        }
        let mut a = Array::from(block);
        match key.len() {
            16 => aes::Aes128::new_from_slice(key)
                .expect("16")
                .encrypt_block(&mut a),
            _ => aes::Aes256::new_from_slice(key)
                .expect("32")
                .encrypt_block(&mut a),
        }
        prev = a.into();
        out.extend_from_slice(&prev);
    }
    out
}

/// ISO 32000-2 algorithm 2.B with the empty password (no `/U` part: the
/// user password).
fn hash_2b(salt: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256, Sha384, Sha512};
    let mut k = Sha256::digest(salt).to_vec();
    let mut round = 0u32;
    loop {
        let k1 = k.repeat(64);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&k[16..32]);
        let e = aes_cbc(&k[..16], iv, &k1, false);
        let m: u32 = e[..16].iter().map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = match m {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        round += 1;
        if round >= 64 && u32::from(*e.last().expect("not empty")) + 32 <= round {
            break;
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&k[..32]);
    out
}

impl Encryption {
    /// `decryptable`: false makes `/U` wrong, as for a document with a user
    /// password.
    pub fn new(security: Security, decryptable: bool) -> Encryption {
        use md5::{Digest, Md5};
        use sha2::Sha256;
        let file_id: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let o = [0x4fu8; 32];
        let p: i32 = -4;
        let cf = |cfm: &str, len: u32| {
            format!(
                "/CF << /StdCF << /AuthEvent /DocOpen /CFM /{cfm} /Length {len} >> >> /StmF /StdCF /StrF /StdCF"
            )
        };
        match security {
            Security::Rc4R2 | Security::Rc4R3 | Security::AesR4 => {
                let r = match security {
                    Security::Rc4R2 => 2,
                    Security::Rc4R3 => 3,
                    _ => 4,
                };
                let n = if r == 2 { 5 } else { 16 };
                let mut h = Md5::new();
                h.update(PAD);
                h.update(o);
                h.update(p.to_le_bytes());
                h.update(&file_id);
                let mut key: [u8; 16] = h.finalize().into();
                if r >= 3 {
                    for _ in 0..50 {
                        key = Md5::digest(&key[..n]).into();
                    }
                }
                let key = key[..n].to_vec();
                let mut u = if r == 2 {
                    let mut u = PAD;
                    rc4(&key, &mut u);
                    u.to_vec()
                } else {
                    let mut h = Md5::new();
                    h.update(PAD);
                    h.update(&file_id);
                    let mut x: [u8; 16] = h.finalize().into();
                    for i in 0..20u8 {
                        let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
                        rc4(&k, &mut x);
                    }
                    let mut u = x.to_vec();
                    u.extend_from_slice(&[0x11; 16]);
                    u
                };
                if !decryptable {
                    u[0] ^= 0xff;
                }
                // Revision 2 without `/Length`, as writers leave it out (40
                // bits is the default).
                let dict = match r {
                    2 => format!(
                        "<< /Filter /Standard /V 1 /R 2 /O <{}> /U <{}> /P {p} >>",
                        hexs(&o),
                        hexs(&u)
                    ),
                    3 => format!(
                        "<< /Filter /Standard /V 2 /R 3 /Length 128 /O <{}> /U <{}> /P {p} >>",
                        hexs(&o),
                        hexs(&u)
                    ),
                    _ => format!(
                        "<< /Filter /Standard /V 4 /R 4 /Length 128 {} /O <{}> /U <{}> /P {p} >>",
                        cf("AESV2", 16),
                        hexs(&o),
                        hexs(&u)
                    ),
                };
                Encryption {
                    security,
                    key,
                    dict,
                    file_id,
                }
            }
            Security::AesR5 | Security::AesR6 => {
                let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(91) ^ 0xa5).collect();
                let vsalt = [1u8, 2, 3, 4, 5, 6, 7, 8];
                let ksalt = [9u8, 10, 11, 12, 13, 14, 15, 16];
                let (check, kk) = if security == Security::AesR5 {
                    let c: [u8; 32] = Sha256::digest(vsalt).into();
                    let k: [u8; 32] = Sha256::digest(ksalt).into();
                    (c, k)
                } else {
                    (hash_2b(&vsalt), hash_2b(&ksalt))
                };
                let mut u = check.to_vec();
                u.extend_from_slice(&vsalt);
                u.extend_from_slice(&ksalt);
                if !decryptable {
                    u[0] ^= 0xff;
                }
                let ue = aes_cbc(&kk, [0; 16], &key, false);
                let r = if security == Security::AesR5 { 5 } else { 6 };
                let dict = format!(
                    "<< /Filter /Standard /V 5 /R {r} /Length 256 {} /O <{}> /U <{}> /OE <{}> /UE <{}> /P {p} >>",
                    cf("AESV3", 32),
                    hexs(&[0x4f; 48]),
                    hexs(&u),
                    hexs(&[0x0e; 32]),
                    hexs(&ue)
                );
                Encryption {
                    security,
                    key,
                    dict,
                    file_id,
                }
            }
        }
    }

    /// What goes in the trailer: the `/Encrypt` reference and the `/ID`.
    pub fn trailer(&self, encrypt_obj: u32) -> String {
        format!(
            "/Encrypt {encrypt_obj} 0 R /ID [<{}> <{}>]",
            hexs(&self.file_id),
            hexs(&self.file_id)
        )
    }

    /// `data` encrypted for object `num` (generation 0).
    pub fn encrypt(&self, num: u32, data: &[u8]) -> Vec<u8> {
        use md5::{Digest, Md5};
        let iv: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ num as u8);
        match self.security {
            Security::AesR5 | Security::AesR6 => {
                let mut out = iv.to_vec();
                out.extend(aes_cbc(&self.key, iv, data, true));
                out
            }
            s => {
                let mut h = Md5::new();
                h.update(&self.key);
                h.update([num as u8, (num >> 8) as u8, (num >> 16) as u8, 0, 0]);
                if s == Security::AesR4 {
                    h.update(b"sAlT");
                }
                let k: [u8; 16] = h.finalize().into();
                let k = &k[..(self.key.len() + 5).min(16)];
                if s == Security::AesR4 {
                    let mut out = iv.to_vec();
                    out.extend(aes_cbc(k, iv, data, true));
                    out
                } else {
                    let mut v = data.to_vec();
                    rc4(k, &mut v);
                    v
                }
            }
        }
    }
}
