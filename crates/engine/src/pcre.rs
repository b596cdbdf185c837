//! PCRE subsignatures run on the PCRE2 library, as in ClamAV, so that every
//! regex means what it means to clamscan (lookaround, backreferences,
//! possessive quantifiers, PCRE's own escapes and quirks).
//!
//! The `pcre2` crate exposes neither match limits nor the `ANCHORED`,
//! `DOLLAR_ENDONLY` and `UNGREEDY` options that ClamAV's flags set, so this
//! module binds the C API through `pcre2-sys` (the crate `pcre2` is built on)
//! with the few calls it needs, each behind a safe method.

use std::ptr::NonNull;

use pcre2_sys::{
    PCRE2_ANCHORED, PCRE2_CASELESS, PCRE2_DOLLAR_ENDONLY, PCRE2_DOTALL, PCRE2_ERROR_DEPTHLIMIT,
    PCRE2_ERROR_HEAPLIMIT, PCRE2_ERROR_MATCHLIMIT, PCRE2_ERROR_NOMATCH, PCRE2_EXTENDED,
    PCRE2_MULTILINE, PCRE2_UNGREEDY, pcre2_code_8, pcre2_code_free_8, pcre2_compile_8,
    pcre2_get_error_message_8, pcre2_get_ovector_pointer_8, pcre2_match_8, pcre2_match_context_8,
    pcre2_match_context_create_8, pcre2_match_context_free_8,
    pcre2_match_data_create_from_pattern_8, pcre2_match_data_free_8, pcre2_set_depth_limit_8,
    pcre2_set_match_limit_8,
};

use aether_sigs::PcreFlags;

/// ClamAV's default `--pcre-match-limit`.
pub(crate) const MATCH_LIMIT: u32 = 100_000;
/// ClamAV's default `--pcre-recmatch-limit` (PCRE2's depth limit).
pub(crate) const DEPTH_LIMIT: u32 = 2_000;

/// The match-time option that anchors a match at its start offset.
pub(crate) const ANCHORED: u32 = PCRE2_ANCHORED;

/// The compile options of ClamAV's regex flags (`i s m x A E U`).
pub(crate) fn compile_options(f: &PcreFlags) -> u32 {
    let mut o = 0;
    for (set, bit) in [
        (f.caseless, PCRE2_CASELESS),
        (f.dotall, PCRE2_DOTALL),
        (f.multiline, PCRE2_MULTILINE),
        (f.extended, PCRE2_EXTENDED),
        (f.anchored, PCRE2_ANCHORED),
        (f.dollar_endonly, PCRE2_DOLLAR_ENDONLY),
        (f.ungreedy, PCRE2_UNGREEDY),
    ] {
        if set {
            o |= bit;
        }
    }
    o
}

/// A compiled regex with its match limits.
pub(crate) struct Regex {
    code: NonNull<pcre2_code_8>,
    context: NonNull<pcre2_match_context_8>,
}

// SAFETY: PCRE2 documents compiled patterns and match contexts as read-only
// during matching and safe to share between threads; every match gets its own
// match data.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

/// Why a match attempt gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchError {
    /// PCRE2's match, depth or heap limit was reached.
    Limit,
    /// Another PCRE2 error code.
    Other(i32),
}

impl Regex {
    /// Compiles `pattern` with PCRE2 compile `options` (bytes, not UTF).
    pub(crate) fn new(pattern: &str, options: u32) -> Result<Regex, String> {
        let mut code_err = 0i32;
        let mut offset = 0usize;
        // SAFETY: the pattern pointer and length describe a live byte slice;
        // the error outputs point at locals; a null compile context means defaults.
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                options,
                &mut code_err,
                &mut offset,
                std::ptr::null_mut(),
            )
        };
        let Some(code) = NonNull::new(code) else {
            return Err(format!(
                "PCRE2 compilation failed at offset {offset}: {}",
                error_message(code_err)
            ));
        };
        // SAFETY: a null general context means the default allocator.
        let context = unsafe { pcre2_match_context_create_8(std::ptr::null_mut()) };
        let Some(context) = NonNull::new(context) else {
            // SAFETY: `code` came from pcre2_compile_8 and is freed once.
            unsafe { pcre2_code_free_8(code.as_ptr()) };
            return Err("out of memory for a PCRE2 match context".into());
        };
        // SAFETY: `context` is a valid match context owned here.
        unsafe {
            pcre2_set_match_limit_8(context.as_ptr(), MATCH_LIMIT);
            pcre2_set_depth_limit_8(context.as_ptr(), DEPTH_LIMIT);
        }
        Ok(Regex { code, context })
    }

    /// The first match in `subject` at or after `start`, as (start, end).
    pub(crate) fn find_at(
        &self,
        subject: &[u8],
        start: usize,
        options: u32,
    ) -> Result<Option<(usize, usize)>, MatchError> {
        // SAFETY: `code` is a valid compiled pattern; a null general context
        // means the default allocator.
        let md = unsafe {
            pcre2_match_data_create_from_pattern_8(self.code.as_ptr(), std::ptr::null_mut())
        };
        let Some(md) = NonNull::new(md) else {
            return Err(MatchError::Other(pcre2_sys::PCRE2_ERROR_NOMEMORY));
        };
        // SAFETY: subject pointer and length describe a live slice (PCRE2
        // accepts any pointer with length 0); `md` was made for this pattern
        // and has room for its captures; the ovector has at least one pair
        // when the match succeeded (rc > 0).
        unsafe {
            let rc = pcre2_match_8(
                self.code.as_ptr(),
                subject.as_ptr(),
                subject.len(),
                start,
                options,
                md.as_ptr(),
                self.context.as_ptr(),
            );
            let r = if rc > 0 {
                let ov = pcre2_get_ovector_pointer_8(md.as_ptr());
                Ok(Some((*ov, *ov.add(1))))
            } else if rc == PCRE2_ERROR_NOMATCH || rc == 0 {
                Ok(None)
            } else if rc == PCRE2_ERROR_MATCHLIMIT
                || rc == PCRE2_ERROR_DEPTHLIMIT
                || rc == PCRE2_ERROR_HEAPLIMIT
            {
                Err(MatchError::Limit)
            } else {
                Err(MatchError::Other(rc))
            };
            pcre2_match_data_free_8(md.as_ptr());
            r
        }
    }
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: both were created in `new`, are owned by this value and
        // freed exactly once.
        unsafe {
            pcre2_match_context_free_8(self.context.as_ptr());
            pcre2_code_free_8(self.code.as_ptr());
        }
    }
}

fn error_message(code: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid; PCRE2 writes at most that
    // many code units and returns their count or a negative error.
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) => String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned(),
        Err(_) => format!("PCRE2 error {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_limits() {
        let re = Regex::new("b+c", 0).expect("compiles");
        assert_eq!(re.find_at(b"aabbbcd", 0, 0), Ok(Some((2, 6))));
        assert_eq!(re.find_at(b"aabbbcd", 0, ANCHORED), Ok(None));
        assert_eq!(re.find_at(b"aabbbcd", 3, 0), Ok(Some((3, 6))));
        assert!(Regex::new("(unclosed", 0).is_err());
        // Exponential backtracking stops at the match limit.
        let re = Regex::new("(a|aa)+$", 0).expect("compiles");
        let mut hay = vec![b'a'; 64];
        hay.push(b'b');
        assert_eq!(re.find_at(&hay, 0, 0), Err(MatchError::Limit));
        let re = Regex::new(
            "ABC",
            compile_options(&PcreFlags {
                caseless: true,
                ..PcreFlags::default()
            }),
        )
        .expect("compiles");
        assert_eq!(re.find_at(b"xabc", 0, 0), Ok(Some((1, 4))));
    }
}
