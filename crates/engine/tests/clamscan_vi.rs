//! `VI` offsets: a signature matches only where one of a PE file's
//! version-information strings begins. The engine must report what Debian's
//! clamscan 1.4.6 reports with `--allmatch` on PE files built with version
//! resources (string tables after and before `VarFileInfo`, unset values,
//! damaged keys) and on clam.exe, which has none, for body and logical
//! signatures with `VI`, plus `*` controls that match the same bytes
//! anywhere.

mod common;
mod exe_common;

use std::fmt::Write as _;

use common::{compare, hex};
use exe_common::{pe_with_version_info, utf16z, version_info};

/// UTF-16LE without the terminator.
fn utf16(s: &str) -> Vec<u8> {
    let mut u = utf16z(s);
    u.truncate(u.len() - 2);
    u
}

#[test]
fn vi_signatures_match_where_clamscan_matches_them() {
    let mut company_acme = utf16z("CompanyName");
    company_acme.extend_from_slice(&[0, 0]);
    company_acme.extend(utf16("ACME"));
    let ndb = [
        ("VI.Company", "VI", utf16("CompanyName")),
        ("VI.CompanyAcme", "VI", company_acme),
        ("VI.Product", "VI", utf16("ProductName")),
        ("VI.Comments", "VI", utf16("Comments")),
        ("VI.Mid", "VI", utf16("ompanyName")),
        ("Any.Mid", "*", utf16("ompanyName")),
        ("Any.Comments", "*", utf16("Comments")),
    ]
    .iter()
    .fold(String::new(), |mut s, (name, offset, bytes)| {
        let _ = writeln!(s, "{name}:1:{offset}:{}", hex(bytes));
        s
    });
    let ldb = format!(
        "VI.Ldb.Both;Engine:51-255,Target:1;0&1;VI:{};VI:{}\n\
         VI.Ldb.Count;Engine:51-255,Target:1;0>1;VI:{}\n\
         VI.Ldb.One;Engine:51-255,Target:1;0=1;VI:{}\n",
        hex(&utf16("CompanyName")),
        hex(&utf16("ProductName")),
        hex(&utf16("Co")),
        hex(&utf16("Co")),
    );
    let mut bad_key = version_info(&[("CompanyName", "ACME")], false);
    bad_key[6] = b'X';
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "strings.exe",
            pe_with_version_info(
                &version_info(
                    &[
                        ("CompanyName", "ACME"),
                        ("Comments", ""),
                        ("ProductName", "X"),
                    ],
                    false,
                ),
                1,
            ),
        ),
        (
            "var-first.exe",
            pe_with_version_info(
                &version_info(
                    &[
                        ("ProductName", "Y"),
                        ("Comments", "set"),
                        ("CompanyName", "ACME"),
                    ],
                    true,
                ),
                2,
            ),
        ),
        ("bad-key.exe", pe_with_version_info(&bad_key, 3)),
        (
            "clam.exe",
            std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clamav-testfiles"),
        ),
    ];
    let (want, got) = compare(
        &[("vi.ndb", ndb.as_str()), ("vi.ldb", ldb.as_str())],
        &files,
    );
    assert_eq!(got, want, "aether (left) vs clamscan (right)");
    // The files hold what they were built with: VI matches and misses both.
    let has = |f: &str, n: &str| {
        want.get(f)
            .is_some_and(|s| s.iter().any(|d| d.starts_with(n)))
    };
    assert!(has("strings.exe", "VI.CompanyAcme"));
    assert!(has("strings.exe", "Any.Mid") && !has("strings.exe", "VI.Mid"));
    assert!(has("strings.exe", "Any.Comments") && !has("strings.exe", "VI.Comments"));
    assert!(has("var-first.exe", "VI.Comments"));
    assert!(has("var-first.exe", "VI.Ldb.Count") && has("strings.exe", "VI.Ldb.One"));
    assert!(!has("bad-key.exe", "VI.Company") && has("bad-key.exe", "Any.Mid"));
}
