//! Loads databases and prints how long each stage took.
//!
//! usage: cargo run --release -p aether-engine --example load_db -- PATH... [--scan DIR] [--cache DIR]
//!
//! With `--scan DIR`, also scans every regular file under DIR on one thread
//! and prints the throughput: a quick check of the engine alone, without the
//! CLI's walking and printing.

use std::path::PathBuf;
use std::time::Instant;

use aether_engine::EngineBuilder;
use aether_sigs::{LoadOptions, Loader};

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" peak ")
}

fn main() {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let scan_dir = match args.iter().position(|a| a.as_os_str() == "--scan") {
        Some(i) if i + 1 < args.len() => {
            let dir = args.remove(i + 1);
            args.remove(i);
            Some(dir)
        }
        _ => None,
    };
    let cache_dir = match args.iter().position(|a| a.as_os_str() == "--cache") {
        Some(i) if i + 1 < args.len() => {
            let dir = args.remove(i + 1);
            args.remove(i);
            Some(dir)
        }
        _ => None,
    };
    let paths = args;
    if let Some(dir) = cache_dir {
        let sources = aether_engine::DbSources {
            builtin: false,
            paths: paths.clone(),
        };
        match aether_engine::load_cached(&sources, LoadOptions::default(), Some(&dir)) {
            Ok(l) => println!(
                "cached load: from_cache {} in {:?}, {} signatures, problem {:?}",
                l.from_cache,
                l.elapsed,
                l.engine.signature_count(),
                l.cache_problem
            ),
            Err(e) => eprintln!("error: {e}"),
        }
        eprintln!("rss {}", rss());
        return;
    }
    let t0 = Instant::now();
    let mut loader = Loader::new(LoadOptions::default());
    let mut builder = EngineBuilder::new();
    for p in &paths {
        if let Err(e) = loader.load_path(p, &mut builder) {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let t1 = Instant::now();
    eprintln!("after parse: rss {}", rss());
    let engine = match builder.build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let t2 = Instant::now();
    eprintln!("after compile: rss {}", rss());
    println!(
        "signatures {}  parse {:?}  compile {:?}  total {:?}",
        engine.signature_count(),
        t1 - t0,
        t2 - t1,
        t2 - t0
    );
    if let Some(dir) = scan_dir {
        let limits = aether_engine::Limits::default();
        let mut scanner = engine.scanner();
        let (mut files, mut bytes, mut found) = (0u64, 0u64, 0u64);
        let t = Instant::now();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(e.path());
                } else if ft.is_file() {
                    let Ok(f) = std::fs::File::open(e.path()) else {
                        continue;
                    };
                    if let Ok(o) = scanner.scan_file(&f, &limits) {
                        files += 1;
                        bytes += o.bytes_scanned;
                        found += !o.detections.is_empty() as u64;
                    }
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "scanned {files} files, {:.1} MB in {secs:.2} s: {:.1} MB/s, {found} infected",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
    }
}
