#![no_main]
//! Text normalization on any bytes: no panic, outputs within their bounds,
//! the same output however the input is split (the HTML tag probe's answer
//! too), and the ASCII classes hold.
use aether_formats::normalize::ascii::{self, AsciiNormalizer};
use aether_formats::normalize::{
    HtmlLimits, HtmlNormalizer, HtmlOutput, HtmlTagProbe, LimitHit, has_html_tag, normalize_html,
};
use libfuzzer_sys::fuzz_target;

const CAP: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let limits = HtmlLimits {
        max_output: CAP,
        ..HtmlLimits::default()
    };
    let whole = normalize_html(input, limits);
    assert!(whole.nocomment.len() as u64 <= CAP);
    assert!(whole.notags.len() as u64 <= CAP);
    assert!(whole.javascript.len() as u64 <= CAP);
    // Inputs this small are within ClamAV's limits: only aether's own guards
    // (the output cap, which also stops the packer decoder short of it, and
    // the decoders' work limit) can be reported.
    assert!(matches!(
        whole.limit,
        None | Some(LimitHit::HtmlOutput | LimitHit::ScriptDecode)
    ));

    // Fed in pieces of `split` bytes (1 to 256), the outputs are the same.
    let step = usize::from(split) + 1;
    let mut pieces = HtmlOutput::default();
    let mut n = HtmlNormalizer::new(limits);
    for part in input.chunks(step) {
        n.feed(part, &mut pieces);
    }
    pieces.limit = n.finish(&mut pieces);
    assert_eq!(pieces, whole);

    let (out, cut) = ascii::normalize(input, usize::MAX);
    assert!(!cut);
    assert!(out.len() <= input.len());
    assert!(out.iter().all(|&b| (0x20..=0x7f).contains(&b) && !b.is_ascii_uppercase()));
    assert!(!out.windows(2).any(|w| w == b"  "));
    let mut n = AsciiNormalizer::new();
    let mut again = Vec::new();
    for part in input.chunks(step) {
        n.feed(part, &mut again, usize::MAX);
    }
    assert_eq!(again, out);

    // The tag probe, fed the same pieces, answers as the whole-input check.
    let mut probe = HtmlTagProbe::new();
    let mut found = false;
    for part in input.chunks(step) {
        if probe.feed(part) {
            found = true;
            break;
        }
    }
    assert_eq!(found || probe.finish(), has_html_tag(input));
});
