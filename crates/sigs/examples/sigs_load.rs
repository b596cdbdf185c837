//! Loads databases into a counting sink and prints the report and the time taken:
//! `cargo run --release -p aether-sigs --example sigs_load -- [--no-verify] PATH...`

use std::path::Path;
use std::time::Instant;

use aether_sigs::{BodySig, HashSig, LoadOptions, Loader, SignatureSink, Unsupported};

#[derive(Default)]
struct Count {
    hashes: u64,
    bodies: u64,
    allows: u64,
}

impl SignatureSink for Count {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        self.hashes += 1;
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        self.bodies += 1;
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        self.allows += 1;
        Ok(())
    }
}

fn main() {
    let mut opts = LoadOptions::default();
    let mut paths = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--no-verify" {
            opts.verify = false;
        } else {
            paths.push(a);
        }
    }
    let mut loader = Loader::new(opts);
    let mut sink = Count::default();
    let start = Instant::now();
    for p in &paths {
        if let Err(e) = loader.load_path(Path::new(p), &mut sink) {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let took = start.elapsed();
    let report = loader.finish();
    for f in &report.files {
        println!("{} ({})", f.name, f.format);
        if let Some(h) = &f.cvd {
            println!(
                "  version {} built {} by {}, {} signatures, flevel {}",
                h.version, h.build_time, h.builder, h.sigs, h.flevel
            );
        }
        for (k, n) in &f.by_kind {
            println!("  {k}: {n}");
        }
        for (r, n) in &f.unsupported {
            println!("  unsupported, {r}: {n}");
        }
        if f.skipped_flevel > 0 {
            println!("  skipped (functionality level): {}", f.skipped_flevel);
        }
        if f.ignored > 0 {
            println!("  ignored: {}", f.ignored);
        }
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    println!(
        "hashes {} bodies {} allow {} in {:.3} s",
        sink.hashes,
        sink.bodies,
        sink.allows,
        took.as_secs_f64()
    );
}
