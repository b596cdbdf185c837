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
    let _ = write!(d, "xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for off in &offsets {
        let _ = write!(d, "{off:010} 00000 n \n");
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
