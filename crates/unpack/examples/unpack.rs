//! Unpacks each file given and writes `<file>.unpacked` next to a copy in
//! the current directory: `cargo run -p aether-unpack --example unpack FILE...`.
fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match aether_unpack::unpack(&data, &aether_unpack::UnpackLimits::default()) {
            Ok(Some(u)) => {
                let name = std::path::Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let out = format!("{name}.unpacked");
                println!("{path}: {} {} bytes -> {out}", u.packer, u.image.len());
                if let Err(e) = std::fs::write(&out, &u.image) {
                    eprintln!("{out}: {e}");
                }
            }
            Ok(None) => println!("{path}: not packed"),
            Err(e) => println!("{path}: {e}"),
        }
    }
}
