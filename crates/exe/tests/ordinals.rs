//! Ordinal imports from `oleaut32.dll`, `ws2_32.dll` and `wsock32.dll` are
//! named from tables in ClamAV's import hash; aether's tables (see
//! src/ordinals.rs) must give clamscan's hash for every ordinal. One PE per
//! ordinal imports just that ordinal; clamscan must report the `.imp`
//! signature written from aether's hash of each.

mod common;

use std::fmt::Write as _;

use aether_exe::{ExeInfo, ImportTable};

#[test]
fn ordinal_names_match_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let mut imp = String::new();
    let mut files = Vec::new();
    let mut expected = Vec::new();
    let mut names: std::collections::HashMap<(String, u32), String> = Default::default();
    let ordinals: Vec<u16> = (1..=520).chain((521..=65535).step_by(997)).collect();
    // The case of the DLL name does not matter; a name that only starts
    // with the DLL's does not use the table... unless ClamAV's prefix test
    // says so: "ws2_32.dllx" starts with "ws2_32.dll".
    let dlls = [
        "OLEAUT32.dll",
        "ws2_32.DLL",
        "wsock32.dll",
        "ws2_32.dllx",
        "kernel32.dll",
    ];
    for (d, dll) in dlls.iter().enumerate() {
        for &ord in &ordinals {
            // Away from the tables' entries, a few ordinals suffice.
            if d >= 3 && ord > 40 {
                continue;
            }
            let data = common::build_pe(&common::PeSpec {
                plus: false,
                section_alignment: 0x1000,
                file_alignment: 0x200,
                size_of_headers: 0x400,
                entry_rva: 0x1010,
                sections: vec![
                    (".text", 0x1000, 0x180, 0x400, 0x200),
                    (".rdata", 0x2000, 0x200, 0x600, 0x200),
                ],
                file_len: 0x900,
                imports_at: Some((0x2000, 0x600)),
                imports: vec![(dll.to_string(), vec![format!("#{ord}")])],
                seed: u64::from(ord) + 100_000 * d as u64,
            });
            let info = ExeInfo::parse(&data).unwrap();
            let h = ImportTable::read(&data[..], &info).unwrap().hash().unwrap();
            let hex: String = h.md5.iter().map(|b| format!("{b:02x}")).collect();
            // Files with the same import text share one signature (ClamAV
            // keeps one name per hash): "ws2_32.dllx" hashes as "ws2_32".
            let name = match names.get(&(hex.clone(), h.size)) {
                Some(n) => String::clone(n),
                None => {
                    let n = format!("O{d}_{ord}");
                    let _ = writeln!(imp, "{hex}:{}:{n}", h.size);
                    names.insert((hex, h.size), n.clone());
                    n
                }
            };
            let file = format!("o{d}_{ord}.exe");
            std::fs::write(dir.path().join(&file), &data).unwrap();
            files.push(dir.path().join(&file));
            expected.push((file, name));
        }
    }
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("ordinals.imp"), &imp).unwrap();
    let out = std::process::Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "--stdout", "-d"])
        .arg(&db)
        .args(&files)
        .output()
        .expect("clamscan from Debian's clamav package");
    let text = String::from_utf8_lossy(&out.stdout);
    let found: std::collections::BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_suffix(".UNOFFICIAL FOUND"))
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(p, n)| {
            let f = std::path::Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (f, n.to_string())
        })
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|e| !found.contains(*e))
        .map(|(f, n)| format!("{f}: {n}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} import hashes not reported by clamscan:\n{}",
        missing.len(),
        expected.len(),
        missing.join("\n")
    );
}
