//! One `.ldb` line: the parser and the loader never panic; a parsed signature
//! has one subsignature per index its expression names; its expression prints
//! back to the same tree; and evaluating it on counts taken from the input
//! never panics and agrees with its own detailed form.
#![no_main]

use aether_sigs::logical::{MAX_SUBSIGS, parse_logical_line};
use aether_sigs::{
    BodySig, DbFormat, HashSig, LoadOptions, Loader, LogicExpr, LogicalSig, Parsed,
    SignatureSink, Unsupported,
};
use libfuzzer_sys::fuzz_target;

struct Sink;

impl SignatureSink for Sink {
    fn hash(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn body(&mut self, _: BodySig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn allow(&mut self, _: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
    fn logical(&mut self, s: LogicalSig<'_>) -> Result<(), Unsupported> {
        assert!(!s.name.is_empty());
        Ok(())
    }
}

fn check_expr(e: &LogicExpr, counts: &[u32]) {
    let again = LogicExpr::parse(&e.to_string());
    assert_eq!(again.as_ref(), Ok(e), "{e}");
    let detail = e.evaluate(counts);
    assert_eq!(detail.matched, e.eval(counts));
    if !detail.matched {
        assert_eq!((detail.count, detail.ids), (0, 0));
    }
    // Nothing matched: only `=0`/`<n` forms can hold, never a bare index.
    if let LogicExpr::Sub { count: None, .. } = e {
        assert!(!e.eval(&[]));
    }
}

fuzz_target!(|data: &[u8]| {
    // The first bytes give match counts, the rest is the line.
    let split = data.len().min(8);
    let counts: Vec<u32> = data[..split].iter().map(|&b| u32::from(b % 6)).collect();
    let rest = &data[split..];
    if let Ok(line) = std::str::from_utf8(rest) {
        if let Ok(e) = LogicExpr::parse(line) {
            check_expr(&e, &counts);
        }
        if let Ok(Parsed::Record(sig)) = parse_logical_line(line) {
            assert_eq!(sig.subsigs.len(), usize::from(sig.expr.max_id()) + 1);
            assert!(sig.subsigs.len() <= MAX_SUBSIGS);
            check_expr(&sig.expr, &counts);
        }
    }
    let mut loader = Loader::new(LoadOptions::default());
    let _ = loader.load_bytes("fuzz.ldb", DbFormat::Ldb, rest, &mut Sink);
});
