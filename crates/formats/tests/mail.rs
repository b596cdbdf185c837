//! Email messages and mbox files: Debian's three mail test files, mails
//! written here (base64 and quoted-printable parts, multipart/alternative,
//! attached messages, uuencoded blocks, mbox files of several messages), and
//! garbage, cut and deeply nested mails that must neither panic nor run away.

use aether_formats::{FileType, Problem, detect, walk};
use legacy_common::{Walked, clam_exe, testfile, walked_ok};
use mail_common::base64;

mod legacy_common;
mod mail_common;

/// The walk of a mail, every member extracted.
fn members(data: &[u8]) -> Walked {
    walked_ok(FileType::Mail, data).extracted()
}

fn find<'a>(c: &'a Walked, data: &[u8]) -> Option<&'a str> {
    c.members
        .iter()
        .find(|(_, d)| d == data)
        .map(|(n, _)| n.as_str())
}

#[test]
fn debian_test_mails_give_clam_exe() {
    let exe = clam_exe();
    for f in ["clam.mail", "clam.exe.mbox.base64", "clam.exe.mbox.uu"] {
        let data = testfile(f);
        assert_eq!(detect(&data), FileType::Mail, "{f}");
        let c = members(&data);
        assert!(find(&c, &exe).is_some(), "{f}: {:?}", c.members);
        assert!(c.problems.is_empty(), "{f}: {:?}", c.problems);
    }
    // The text body as ClamAV writes it, final newline included (a hash
    // signature of those 50 bytes matches in clamscan).
    let mail = testfile("clam.mail");
    let c = members(&mail);
    assert!(find(&c, b"This is a ClamAV test file with embedded clam.exe\n").is_some());
}

#[test]
fn base64_attachment_and_text_body() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mail = format!(
        "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"BB\"\n\n\
         --BB\nContent-Type: text/plain\n\nhello body\n\
         --BB\nContent-Type: application/octet-stream; name=\"p.bin\"\n\
         Content-Transfer-Encoding: base64\n\n{}--BB--\n",
        base64(&payload)
    );
    let c = members(mail.as_bytes());
    assert_eq!(find(&c, &payload), Some("p.bin"));
    assert!(c.members.iter().any(|(_, d)| d.starts_with(b"hello body")));
}

#[test]
fn quoted_printable_text_is_decoded_without_charset_conversion() {
    // Latin-1 bytes stay as sent: signatures are written on bytes.
    let mail = b"From: a\nContent-Type: text/plain; charset=iso-8859-1\n\
        Content-Transfer-Encoding: quoted-printable\n\n\
        caf=E9 mark=\ner=3Dhere\n";
    let c = members(mail);
    assert_eq!(c.members.len(), 1, "{:?}", c.members);
    assert!(
        c.members[0].1.starts_with(b"caf\xe9 marker=here"),
        "{:?}",
        String::from_utf8_lossy(&c.members[0].1)
    );
}

#[test]
fn alternative_nested_message_and_uuencode() {
    let inner_payload = b"inner attachment bytes \x00\x01\x02".repeat(20);
    let inner = format!(
        "From: b\nSubject: inner\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"IN\"\n\n\
         --IN\nContent-Type: application/octet-stream; name=\"in.bin\"\n\
         Content-Transfer-Encoding: base64\n\n{}--IN--\n",
        base64(&inner_payload)
    );
    let mail = format!(
        "From: a\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"OUT\"\n\n\
         --OUT\nContent-Type: multipart/alternative; boundary=\"ALT\"\n\n\
         --ALT\nContent-Type: text/plain\n\nplain version\n\
         begin 644 cat.txt\n#0V%T\n`\nend\n\
         --ALT\nContent-Type: text/html\n\n<p>html version</p>\n--ALT--\n\
         --OUT\nContent-Type: message/rfc822\n\n{inner}\n--OUT--\n"
    );
    let c = members(mail.as_bytes());
    let name = find(&c, &inner_payload).expect("inner attachment");
    assert!(name.ends_with("in.bin"), "{name}");
    assert_eq!(find(&c, b"Cat"), Some("cat.txt"));
    assert!(
        c.members
            .iter()
            .any(|(_, d)| d.starts_with(b"plain version"))
    );
    assert!(
        c.members
            .iter()
            .any(|(_, d)| d.starts_with(b"<p>html version</p>"))
    );
}

#[test]
fn mbox_messages_are_all_walked() {
    let mut mbox = Vec::new();
    for i in 0..3 {
        let payload = format!("payload number {i} ").repeat(30);
        mbox.extend_from_slice(
            format!(
                "From sender@example.com Thu Jul 31 13:49:50 2008\n\
                 From: sender@example.com\nSubject: {i}\nMIME-Version: 1.0\n\
                 Content-Type: application/octet-stream; name=\"m{i}.bin\"\n\
                 Content-Transfer-Encoding: base64\n\n{}\n",
                base64(payload.as_bytes())
            )
            .as_bytes(),
        );
    }
    assert_eq!(detect(&mbox), FileType::Mail);
    let c = members(&mbox);
    for i in 0..3 {
        let payload = format!("payload number {i} ").repeat(30);
        assert_eq!(
            find(&c, payload.as_bytes()),
            Some(format!("message{}/m{i}.bin", i + 1).as_str()),
            "{:?}",
            c.members.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
    }
}

#[test]
fn climbing_attachment_names_are_reported() {
    let mail = format!(
        "From: a\nContent-Type: application/octet-stream; name=\"../../evil\"\n\
         Content-Transfer-Encoding: base64\n\n{}",
        base64(b"evil bytes")
    );
    let c = members(mail.as_bytes());
    assert_eq!(find(&c, b"evil bytes"), Some("../../evil"));
    assert_eq!(
        c.problems,
        [Problem::PathTraversal {
            member: "../../evil".into()
        }]
    );
}

#[test]
fn deep_nesting_and_garbage_do_not_run_away() {
    // Messages attached in messages, far deeper than the cap.
    let mut m = "From: x\n\nbottom\n".to_string();
    for _ in 0..200 {
        m = format!("From: x\nContent-Type: message/rfc822\n\n{m}");
    }
    let c = members(m.as_bytes());
    assert!(c.members.is_empty(), "{:?}", c.members);
    assert!(
        matches!(&c.problems[..], [Problem::Broken { detail, .. }] if detail.contains("nested")),
        "{:?}",
        c.problems
    );

    // Many parts: bounded by the member cap.
    let mut many = String::from("From: a\nContent-Type: multipart/mixed; boundary=\"B\"\n\n");
    for _ in 0..20_000 {
        many.push_str("--B\nContent-Type: text/plain\n\nx\n");
    }
    many.push_str("--B--\n");
    let c = members(many.as_bytes());
    assert_eq!(c.members.len(), 10_000);
    assert!(matches!(c.problems.last(), Some(Problem::Broken { .. })));

    // Found by fuzzing: broken nesting that mail-parser recovers from after
    // a `debug_assert!(false, ..)`, which the dev profile turns off.
    let fuzzed = b"\
        F\xff\xff\xffh a@example.com\nMIME-Version~~~~~~~\x00\x00\x00\x00\x00\x00\x00\x04~~~~~~~~~~~~~\
        ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\
        ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00M``\
        `0```0~~~: 1.0\nContent-Type: multipart/mixed; boundary=\"OUT\"\
        \n\n--OUT\nContent-Type: multipart/alternative; boundaryt=utf-8\
        \n\n<p>html</p>\n--LT-\n-A--OUT\nContent-Type: message/rfc822\n\nFr\
        om: b\nContent-Type: application/octet-stream; name=\"x.bin\"\nC\
        onV%T\n`\nend\n--ALT\nContent-Type: : b\nCont0ent-Type: applicati\
        on/octet-stream; na-OUT\nContent-Type: message/rfc822\n\nFrom: \
        b\nCont0ent-Type: application/octet-stream; name=\"x.bin\"\nCont\
        ent-Transfer-En-oding: base28\n\nSGVsbG8gd29ybGQ=\n--OUT--\n\
        ";
    members(fuzzed);

    // Garbage and cuts of a real mail.
    let real = testfile("clam.mail");
    for cut in 0..real.len() {
        members(&real[..cut]);
    }
    let mut x = 0x1234_5678u32;
    for _ in 0..200 {
        let mut g = real.clone();
        for _ in 0..20 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = x as usize % g.len();
            g[i] = (x >> 24) as u8;
        }
        members(&g);
    }
}

/// Claims a size and reads as spaces, without holding them.
struct Huge(u64);

impl aether_formats::ReadAt for Huge {
    fn size(&self) -> u64 {
        self.0
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = (self.0.saturating_sub(offset)).min(buf.len() as u64) as usize;
        buf[..n].fill(b' ');
        Ok(n)
    }
}

#[test]
fn mails_over_64_mib_are_reported_not_read() {
    let mut c = Walked::default();
    walk(FileType::Mail, &Huge((64 << 20) + 1), &mut c).expect("walk");
    assert!(c.members.is_empty());
    assert!(
        matches!(&c.problems[..], [Problem::Broken { member: None, detail }] if detail.contains("larger")),
        "{:?}",
        c.problems
    );
}
