//! The PDF heuristics clamscan raises, through `aether scan`'s flags:
//! `Heuristics.PDF.ObfuscatedNameObject` by default, and
//! `Heuristics.Encrypted.PDF` for a document the empty password does not
//! open, with `--alert-encrypted` or `--alert-encrypted-doc` but not
//! `--alert-encrypted-archive`. Compared with Debian's clamscan line by line.

mod util;

use util::*;

/// A PDF of `objects` (each `N 0 obj ... endobj`) and a trailer.
fn pdf(objects: &[String], trailer: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    for o in objects {
        out.extend_from_slice(o.as_bytes());
    }
    // ClamAV reads the trailer's `/Encrypt` only when `startxref` is there.
    out.extend_from_slice(
        format!("trailer\n<< /Size 10 /Root 1 0 R {trailer} >>\nstartxref\n0\n%%EOF\n").as_bytes(),
    );
    out
}

fn frame() -> Vec<String> {
    vec![
        "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".into(),
        "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n".into(),
        "3 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n".into(),
    ]
}

#[test]
fn pdf_heuristics_and_their_flags_as_clamscan() {
    let dir = Dir::new();
    // An action name written with an escape: ClamAV flags the obfuscation.
    let mut objects = frame();
    objects.push("4 0 obj\n<< /S /J#61vaScript /JS (app.alert\\(1\\)) >>\nendobj\n".into());
    dir.write("obfuscated.pdf", &pdf(&objects, ""));
    // Encrypted with a user password: /U does not match the empty one.
    let mut objects = frame();
    objects.push(
        "4 0 obj\n<< /Length 8 >>\nstream\n\x01\x02\x03\x04\x05\x06\x07\x08\nendstream\nendobj\n"
            .into(),
    );
    let o = "4f".repeat(32);
    let u = "a7".repeat(32);
    objects.push(format!(
        "9 0 obj\n<< /Filter /Standard /V 1 /R 2 /O <{o}> /U <{u}> /P -4 >>\nendobj\n"
    ));
    let id = "5a".repeat(16);
    dir.write(
        "locked.pdf",
        &pdf(&objects, &format!("/Encrypt 9 0 R /ID [<{id}> <{id}>]")),
    );
    let db = dir.hdb();
    let db = db.to_str().unwrap_or_default();
    let runs: &[&[&str]] = &[
        &[],
        &["--alert-encrypted"],
        &["--alert-encrypted-doc"],
        &["--alert-encrypted-archive"],
    ];
    let mut seen = Vec::new();
    for flags in runs {
        let mut args = vec!["scan", "--no-summary", "-d", db];
        args.extend_from_slice(flags);
        args.extend(["obfuscated.pdf", "locked.pdf"]);
        let a = dir.run(&args);
        let mut got = a.lines();
        got.sort();
        seen.push(got.clone());
        if let Some(clamscan) = which("clamscan") {
            let mut cmd = std::process::Command::new(&clamscan);
            cmd.current_dir(dir.path()).args(&args[1..]);
            let c = run_cmd(&mut cmd, None);
            let mut want = c.lines();
            want.sort();
            assert_eq!(got, want, "flags {flags:?}: aether {}", a.debug());
        }
    }
    // What the flags are for, whatever clamscan says.
    let found = |i: usize, line: &str| seen[i].iter().any(|l| l == line);
    let obf = "obfuscated.pdf: Heuristics.PDF.ObfuscatedNameObject FOUND";
    let enc = "locked.pdf: Heuristics.Encrypted.PDF FOUND";
    assert!(found(0, obf) && !found(0, enc), "{:?}", seen[0]);
    assert!(found(1, enc) && found(2, enc) && !found(3, enc), "{seen:?}");
}
