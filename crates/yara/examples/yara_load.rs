//! Times loading a rule set (compiled, then from the cache), making scanners
//! and scanning files with them.
//!
//! usage: cargo run --release -p aether-yara --example yara_load -- RULES CACHE_DIR [FILE...]

use std::path::PathBuf;
use std::time::Instant;

use aether_yara::YaraRules;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(rules), Some(cache)) = (args.next(), args.next()) else {
        eprintln!("usage: yara_load RULES CACHE_DIR [FILE...]");
        std::process::exit(2);
    };
    let paths = [PathBuf::from(rules)];
    let cache = PathBuf::from(cache);
    let t = Instant::now();
    let (compiled, _) = YaraRules::load(&paths, &[], None)?;
    println!(
        "compile: {} rules in {:.3} s",
        compiled.rule_count(),
        t.elapsed().as_secs_f64()
    );
    drop(compiled);
    for _ in 0..2 {
        let t = Instant::now();
        let (_, used) = YaraRules::load(&paths, &[], Some(&cache))?;
        println!(
            "load with cache: {used:?} in {:.3} s",
            t.elapsed().as_secs_f64()
        );
    }
    let (rules, _) = YaraRules::load(&paths, &[], Some(&cache))?;
    let t = Instant::now();
    let n = 20;
    for _ in 0..n {
        let mut s = rules.scanner();
        s.scan(b"x")?;
    }
    println!(
        "new scanner + first scan: {:.2} ms each",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    let mut scanner = rules.scanner();
    let t = Instant::now();
    for _ in 0..n {
        scanner.scan(b"x")?;
    }
    println!(
        "scan of 1 byte with one scanner: {:.2} ms each",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    let (mut bytes, t) = (0usize, Instant::now());
    for file in args {
        let data = std::fs::read(&file)?;
        bytes += data.len();
        scanner.scan(&data)?;
    }
    if bytes > 0 {
        let s = t.elapsed().as_secs_f64();
        println!(
            "scanned {bytes} bytes in {s:.3} s ({:.1} MB/s)",
            bytes as f64 / 1e6 / s
        );
    }
    Ok(())
}
