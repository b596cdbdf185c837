//! InstallShield setups: Debian's test files, an MSI based setup (data
//! after `InstallShield\0`, found by the embedded-file search) and older
//! ones (files in the executable's overlay, InstallShield cabinets).

use aether_formats::{FileType, detect, is_container};

mod legacy_common;

use legacy_common::{testfile, walked_ok as collect};

/// Every file below `data` (itself first) as (type of its container, name, bytes).
fn tree(data: &[u8], depth: u32, out: &mut Vec<(FileType, String, Vec<u8>)>) {
    let ty = detect(data);
    if depth == 0 || !is_container(ty) {
        return;
    }
    for (name, m) in collect(ty, data).members {
        out.push((ty, name, m.clone()));
        tree(&m, depth - 1, out);
    }
}

#[test]
fn msi_setups_hold_clam_exe() {
    let clam = testfile("clam.exe");
    for name in ["clam_ISmsi_int.exe", "clam_ISmsi_ext.exe"] {
        let mut all = Vec::new();
        tree(&testfile(name), 5, &mut all);
        // The MSI package comes out of the InstallShield data...
        assert!(
            all.iter()
                .any(|(ty, n, _)| *ty == FileType::IshieldMsi && n == "clam.msi"),
            "{name}"
        );
        // ...and clam.exe out of it or next to it.
        assert!(all.iter().any(|(_, _, d)| *d == clam), "{name}");
    }
}

#[test]
fn overlay_setups_hold_clam_exe() {
    let clam = testfile("clam.exe");
    for name in ["clam_IScab_int.exe", "clam_IScab_ext.exe"] {
        let exe = testfile(name);
        let c = collect(FileType::Pe, &exe);
        assert!(c.members.iter().any(|(_, d)| *d == clam), "{name}");
        // Every file of the cabinets was extracted, so data1.hdr and the
        // cabinets themselves are not handed over.
        assert!(!c.members.iter().any(|(n, _)| n == "data1.hdr"), "{name}");
    }
}

#[test]
fn cut_and_flipped_setups_do_not_panic() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for name in ["clam_ISmsi_int.exe", "clam_IScab_int.exe"] {
        let exe = testfile(name);
        for _ in 0..6 {
            let cut = (next() % exe.len() as u64) as usize;
            let mut all = Vec::new();
            tree(&exe[..cut], 3, &mut all);
            let mut f = exe.clone();
            for _ in 0..40 {
                let at = (next() % f.len() as u64) as usize;
                f[at] ^= 1 << (next() % 8);
            }
            tree(&f, 3, &mut all);
        }
    }
}
