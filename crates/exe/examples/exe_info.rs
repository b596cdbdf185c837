//! Prints what aether-exe reads from executables: `exe_info FILE...`.

use aether_exe::{ExeInfo, ImportTable, fat_arches};

fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match ExeInfo::parse(&data) {
            Ok(info) => {
                println!(
                    "{path}: {:?} EP offset {} (address {:#x}), {} sections",
                    info.kind,
                    info.entry_point,
                    info.entry_address,
                    info.number_of_sections()
                );
                for (i, s) in info.sections.iter().enumerate() {
                    println!(
                        "  S{i} {:<16} raw {:#x} size {:#x} rva {:#x} vsize {:#x}",
                        s.name, s.raw, s.raw_size, s.rva, s.virtual_size
                    );
                }
                if info.pe.is_some() {
                    match ImportTable::read(&data[..], &info).and_then(|t| t.hash()) {
                        Ok(h) => {
                            let hex: String = h.md5.iter().map(|b| format!("{b:02x}")).collect();
                            println!("  imphash {hex}:{}", h.size);
                        }
                        Err(e) => println!("  imphash: {e}"),
                    }
                }
            }
            Err(aether_exe::ExeError::Universal) => match fat_arches(&data) {
                Ok(f) => println!("{path}: universal binary, {:?}", f),
                Err(e) => println!("{path}: {e}"),
            },
            Err(e) => println!("{path}: {e}"),
        }
    }
}
