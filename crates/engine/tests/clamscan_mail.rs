//! Email scanned part by part: the engine must report what Debian's clamscan
//! 1.4.6 reports with `--allmatch`, file by file, on Debian's three mail test
//! files and on mails written here (a base64 attachment, a quoted-printable
//! body, an attached message, multipart/alternative, an mbox of three
//! messages, a uuencoded block in a text body, a zip attached), with `.ndb`
//! markers that only show once a part is decoded and `.hdb` hashes of the
//! decoded attachments.

mod common;
#[path = "../../formats/tests/mail_common/mod.rs"]
mod mail_common;

use std::fmt::Write as _;
use std::path::Path;

use common::{aether, clamscan, engine};
use mail_common::base64;
use md5::{Digest, Md5};

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// `begin 644 name` ... `end`, with the backquote for zero.
fn uuencode(name: &str, data: &[u8]) -> String {
    let ch = |v: u32| -> char {
        let v = (v & 63) as u8;
        if v == 0 { '`' } else { (v + b' ') as char }
    };
    let mut s = format!("begin 644 {name}\n");
    for line in data.chunks(45) {
        s.push(ch(line.len() as u32));
        for c in line.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                s.push(ch(v >> (18 - 6 * k)));
            }
        }
        s.push('\n');
    }
    s.push_str("`\nend\n");
    s
}

/// A zip of one stored member.
fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let header = |sig: u32, central: bool| {
        let mut h = sig.to_le_bytes().to_vec();
        if central {
            h.extend_from_slice(&20u16.to_le_bytes());
        }
        for v in [20u16, 0, 0, 0, 0] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc.sum(), data.len() as u32, data.len() as u32] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h
    };
    let mut out = header(0x0403_4b50, false);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    let mut central = header(0x0201_4b50, true);
    central.extend_from_slice(&[0; 8]);
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(name.as_bytes());
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn marker(tag: &str) -> String {
    format!("<<aether-mail-marker-{tag}>>")
}

/// Bytes around a marker, binary enough that nothing treats them as text.
fn payload(tag: &str) -> Vec<u8> {
    let mut p: Vec<u8> = (0..400u32).map(|i| (i * 37 % 256) as u8).collect();
    p.extend_from_slice(marker(tag).as_bytes());
    p.extend((0..400u32).map(|i| (i * 11 % 256) as u8));
    p
}

fn attachment(boundary: &str, name: &str, data: &[u8]) -> String {
    format!(
        "--{boundary}\nContent-Type: application/octet-stream; name=\"{name}\"\n\
         Content-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"{name}\"\n\n{}",
        base64(data)
    )
}

fn mixed(subject: &str, parts: &str) -> String {
    format!(
        "From: sender@example.com\nTo: rcpt@example.com\nSubject: {subject}\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"MIX\"\n\n\
         This is a multi-part message in MIME format.\n\n{parts}--MIX--\n"
    )
}

const TEXT: &str = "--MIX\nContent-Type: text/plain; charset=us-ascii\n\nHello, see attached.\n";

#[test]
fn mails_match_clamscan() {
    let testfiles = Path::new("/usr/share/clamav-testfiles");
    let clam_exe = std::fs::read(testfiles.join("clam.exe")).expect("Debian's clamav-testfiles");

    let b64 = mixed(
        "base64",
        &format!("{TEXT}{}", attachment("MIX", "a.bin", &payload("b64"))),
    );
    // The marker is cut by a soft line break and its `=` and `<` are
    // escaped: only the decoded body holds it.
    let qp_marker = marker("qp").replace('<', "=3C");
    let (qa, qb) = qp_marker.split_at(12);
    let qp = format!(
        "From: sender@example.com\nSubject: qp\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: quoted-printable\n\n\
         Some text before=20it {qa}=\n{qb} and after.\n"
    );
    let inner = mixed(
        "inner",
        &format!("{TEXT}{}", attachment("MIX", "in.bin", &payload("nested"))),
    )
    .replace("MIX", "INNER");
    let nested = mixed(
        "nested",
        &format!("{TEXT}--MIX\nContent-Type: message/rfc822\n\n{inner}\n"),
    );
    let alternative = format!(
        "From: sender@example.com\nSubject: alt\nMIME-Version: 1.0\n\
         Content-Type: multipart/alternative; boundary=\"ALT\"\n\n\
         --ALT\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{}\
         --ALT\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n{}--ALT--\n",
        base64(format!("plain text {}\n", marker("alt-plain")).as_bytes()),
        base64(format!("<html><body>{}</body></html>\n", marker("alt-html")).as_bytes()),
    );
    let mut mbox = String::new();
    for i in 1..=3 {
        let m = mixed(
            &format!("message {i}"),
            &format!(
                "{TEXT}{}",
                attachment("MIX", &format!("m{i}.bin"), &payload(&format!("mbox{i}")))
            ),
        );
        let _ = write!(
            mbox,
            "From sender@example.com Thu Jul 31 13:49:50 2008\n{m}\n"
        );
    }
    let uu = format!(
        "From: sender@example.com\nSubject: uu\n\nHere it is:\n\n{}\nBye.\n",
        uuencode("u.bin", &payload("uu"))
    );
    let zip = stored_zip("z.txt", &payload("zipped"));
    let zipped = mixed(
        "zip",
        &format!("{TEXT}{}", attachment("MIX", "z.zip", &zip)),
    );
    let exe_mail = mixed(
        "exe",
        &format!("{TEXT}{}", attachment("MIX", "clam.exe", &clam_exe)),
    );
    // Text bodies as ClamAV writes them: line by line, CRLF made LF, the
    // line break before the boundary kept.
    let text_plain = "First line of the body\r\nsecond line, no marker";
    let text_qp = "caf=E9 and a soft=\r\n break, then =3D\r\nlast line";
    let text = format!(
        "From: sender@example.com\r\nSubject: text\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"TXT\"\r\n\r\n\
         --TXT\r\nContent-Type: text/plain\r\n\r\n{text_plain}\r\n\
         --TXT\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n{text_qp}\r\n--TXT--\r\n"
    );
    let text_plain_out = b"First line of the body\nsecond line, no marker\n".to_vec();
    let text_qp_out = b"caf\xe9 and a soft break, then =\nlast line\n".to_vec();
    let clam_mail_text = b"This is a ClamAV test file with embedded clam.exe\n".to_vec();
    let clean = mixed(
        "clean",
        &format!(
            "{TEXT}{}",
            attachment("MIX", "c.bin", b"nothing to see here")
        ),
    );

    let mut ndb = String::new();
    for tag in [
        "b64",
        "qp",
        "nested",
        "alt-plain",
        "alt-html",
        "mbox1",
        "mbox2",
        "mbox3",
        "uu",
        "zipped",
    ] {
        let _ = writeln!(ndb, "Mail.Marker.{tag}:0:*:{}", hex(marker(tag).as_bytes()));
    }
    let mut hdb = String::new();
    for (name, data) in [
        ("ClamExe", clam_exe.clone()),
        ("B64", payload("b64")),
        ("Nested", payload("nested")),
        ("Mbox2", payload("mbox2")),
        ("Uu", payload("uu")),
        ("Zip", zip.clone()),
        ("TextPlain", text_plain_out),
        ("TextQp", text_qp_out),
        ("ClamMailText", clam_mail_text),
    ] {
        let _ = writeln!(
            hdb,
            "{}:{}:Mail.Hash.{name}",
            hex(&Md5::digest(&data)),
            data.len()
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(db.join("markers.ndb"), ndb).expect("ndb");
    std::fs::write(db.join("members.hdb"), hdb).expect("hdb");
    let mut files = Vec::new();
    for f in ["clam.mail", "clam.exe.mbox.base64", "clam.exe.mbox.uu"] {
        let p = dir.path().join(f);
        std::fs::copy(testfiles.join(f), &p).expect("copy test file");
        files.push(p);
    }
    for (name, data) in [
        ("b64.eml", b64),
        ("qp.eml", qp),
        ("nested.eml", nested),
        ("alternative.eml", alternative),
        ("three.mbox", mbox),
        ("uu.eml", uu),
        ("zip.eml", zipped),
        ("exe.eml", exe_mail),
        ("text.eml", text),
        ("clean.eml", clean),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).expect("file");
        files.push(p);
    }

    let want = clamscan(&db, &files);
    let got = aether(&engine(&db), &files);
    // clamscan must find what the files were built to hold, or the
    // comparison proves nothing.
    let names = |f: &str| -> Vec<&str> {
        want.get(f)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        names("clam.mail"),
        [
            "Mail.Hash.ClamExe.UNOFFICIAL",
            "Mail.Hash.ClamMailText.UNOFFICIAL"
        ]
    );
    for f in ["clam.exe.mbox.base64", "clam.exe.mbox.uu"] {
        assert_eq!(names(f), ["Mail.Hash.ClamExe.UNOFFICIAL"], "{f}");
    }
    assert_eq!(
        names("text.eml"),
        [
            "Mail.Hash.TextPlain.UNOFFICIAL",
            "Mail.Hash.TextQp.UNOFFICIAL"
        ]
    );
    assert_eq!(
        names("b64.eml"),
        ["Mail.Hash.B64.UNOFFICIAL", "Mail.Marker.b64.UNOFFICIAL"]
    );
    assert_eq!(names("qp.eml"), ["Mail.Marker.qp.UNOFFICIAL"]);
    assert_eq!(
        names("nested.eml"),
        [
            "Mail.Hash.Nested.UNOFFICIAL",
            "Mail.Marker.nested.UNOFFICIAL"
        ]
    );
    assert_eq!(
        names("alternative.eml"),
        [
            "Mail.Marker.alt-html.UNOFFICIAL",
            "Mail.Marker.alt-plain.UNOFFICIAL"
        ]
    );
    assert_eq!(
        names("three.mbox"),
        [
            "Mail.Hash.Mbox2.UNOFFICIAL",
            "Mail.Marker.mbox1.UNOFFICIAL",
            "Mail.Marker.mbox2.UNOFFICIAL",
            "Mail.Marker.mbox3.UNOFFICIAL"
        ]
    );
    assert_eq!(
        names("uu.eml"),
        ["Mail.Hash.Uu.UNOFFICIAL", "Mail.Marker.uu.UNOFFICIAL"]
    );
    assert_eq!(
        names("zip.eml"),
        ["Mail.Hash.Zip.UNOFFICIAL", "Mail.Marker.zipped.UNOFFICIAL"]
    );
    assert_eq!(names("exe.eml"), ["Mail.Hash.ClamExe.UNOFFICIAL"]);
    assert!(names("clean.eml").is_empty());
    assert_eq!(got, want);
}
