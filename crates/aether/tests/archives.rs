//! `aether scan` on archives: the member chain in `--json`, and
//! `--alert-encrypted`, the latter compared with clamscan when it is installed.

mod util;

use util::*;

/// CRC-32 (IEEE), as zip stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of stored members; `encrypted` members get general-purpose flag bit 0
/// (their bytes are then not what a reader could decrypt, which is the point:
/// a scanner must not read them as plain data).
fn stored_zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, encrypted) in members {
        let offset = out.len() as u32;
        let flags: u16 = if *encrypted { 1 } else { 0 };
        let crc = crc32(data);
        let mut header = Vec::new();
        header.extend_from_slice(&10u16.to_le_bytes()); // version needed
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // stored
        header.extend_from_slice(&0u32.to_le_bytes()); // time, date
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // extra
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&header);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&header);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&0u32.to_le_bytes()); // disk numbers
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn json_names_the_member_chain_and_text_names_the_top_file() {
    let dir = Dir::new();
    let eicar = eicar();
    let inner = stored_zip(&[
        ("readme.txt", b"nothing here\n", false),
        ("dir/evil.com", &eicar, false),
    ]);
    dir.write(
        "outer.zip",
        &stored_zip(&[("a.txt", b"clean\n", false), ("inner.zip", &inner, false)]),
    );
    dir.write("plain.com", &eicar);

    let run = dir.run(&["scan", "--no-summary", "--json", "outer.zip", "plain.com"]);
    assert_eq!(run.code(), 1, "{}", run.debug());
    let objects = json_lines(&run);
    assert_eq!(objects.len(), 2, "{}", run.debug());
    let outer = &objects[0];
    assert_eq!(outer["path"], "outer.zip");
    assert_eq!(outer["verdict"], "infected");
    let m = &outer["matches"][0];
    assert_eq!(m["signature"], outer["signatures"][0]);
    assert_eq!(m["chain"], serde_json::json!(["inner.zip", "dir/evil.com"]));
    assert_eq!(m["location"], "outer.zip!inner.zip!dir/evil.com");
    let plain = &objects[1];
    assert_eq!(plain["matches"][0]["chain"], serde_json::json!([]));
    assert_eq!(plain["matches"][0]["location"], "plain.com");

    // Text output reports the top-level file, as clamscan does.
    let text = dir.run(&["scan", "--no-summary", "outer.zip"]);
    let lines = text.lines();
    assert_eq!(lines.len(), 1, "{}", text.debug());
    assert!(
        lines[0].starts_with("outer.zip: ") && lines[0].ends_with(" FOUND"),
        "{}",
        text.debug()
    );
}

#[test]
fn alert_encrypted_names_an_encrypted_member_as_clamscan_does() {
    let dir = Dir::new();
    dir.write(
        "enc.zip",
        &stored_zip(&[
            ("clean.txt", b"clean\n", false),
            (
                "secret.bin",
                b"\x12\x34\x56\x78 not really ciphertext",
                true,
            ),
        ]),
    );
    let quiet = dir.run(&["scan", "--no-summary", "enc.zip"]);
    assert_eq!(quiet.code(), 0, "{}", quiet.debug());
    assert_eq!(quiet.lines(), vec!["enc.zip: OK"]);

    for flag in [
        "--alert-encrypted",
        "--alert-encrypted=yes",
        "--alert-encrypted-archive",
    ] {
        let run = dir.run(&["scan", "--no-summary", flag, "enc.zip"]);
        assert_eq!(run.code(), 1, "{flag}: {}", run.debug());
        assert_eq!(
            run.lines(),
            vec!["enc.zip: Heuristics.Encrypted.Zip FOUND"],
            "{flag}"
        );
    }
    let off = dir.run(&["scan", "--no-summary", "--alert-encrypted=no", "enc.zip"]);
    assert_eq!(off.lines(), vec!["enc.zip: OK"]);

    // The same file and flags through Debian's clamscan, when it is here.
    if let Some(clamscan) = which("clamscan") {
        let db = dir.hdb();
        for (flag, want) in [
            (
                "--alert-encrypted=yes",
                "enc.zip: Heuristics.Encrypted.Zip FOUND",
            ),
            ("--alert-encrypted=no", "enc.zip: OK"),
        ] {
            let mut cmd = std::process::Command::new(&clamscan);
            cmd.current_dir(dir.path()).args([
                "--no-summary",
                "-d",
                db.to_str().unwrap(),
                flag,
                "enc.zip",
            ]);
            let c = run_cmd(&mut cmd, None);
            assert_eq!(c.lines(), vec![want], "clamscan {flag}: {}", c.debug());
            let a = dir.run(&[
                "scan",
                "--no-summary",
                "-d",
                db.to_str().unwrap(),
                flag,
                "enc.zip",
            ]);
            assert_eq!(a.lines(), c.lines(), "aether vs clamscan {flag}");
        }
    }
}
