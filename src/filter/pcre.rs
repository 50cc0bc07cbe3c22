//! A small safe layer over PCRE2 (JIT-compiled, UTF mode) for Python-style
//! regexes: compile once, match many times through a caller-owned [`Scratch`]
//! so that matching allocates nothing, with match and depth limits so that a
//! pathological pattern against a long line stops at a bounded cost.

use pcre2_sys::*;
use std::ptr;
use std::sync::{Arc, OnceLock};

/// Compile-time flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub caseless: bool,
    pub multiline: bool,
    pub dotall: bool,
    /// Unicode properties for `\w`, `\d`, `\s`, `\b` (Python's str semantics).
    pub ucp: bool,
    /// In multi-line mode `^` also matches after a final newline, as in Python.
    pub alt_circumflex: bool,
    /// Also JIT-compile for [`Regex::settles`].
    pub partial: bool,
}

/// Why a pattern did not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    /// Byte offset in the pattern where PCRE2 stopped.
    pub offset: usize,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for CompileError {}

/// Why a match attempt gave up (the line is then treated as not matching).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchError {
    /// The match or depth limit was hit: the pattern backtracks too much on this input.
    Limit,
    /// Any other PCRE2 error code.
    Other(i32),
}

/// A compiled pattern, JIT-compiled when first matched (a filter's many
/// regexes and the date templates are mostly never tried on a given log).
struct Code {
    ptr: *mut pcre2_code_8,
    /// Also JIT-compile for hard partial matching.
    partial: bool,
    /// (JIT-compiled, JIT-compiled for partial matching too), set once.
    jit: OnceLock<(bool, bool)>,
}

// SAFETY: a compiled pcre2_code is immutable once JIT-compiled, and documented
// as safe to share between threads; the JIT compilation happens once, inside
// `jit.get_or_init`, before any match (every match goes through `jitted`).
// All mutable match state lives in Scratch.
unsafe impl Send for Code {}
unsafe impl Sync for Code {}

impl Code {
    fn jitted(&self) -> (bool, bool) {
        *self.jit.get_or_init(|| {
            let jit = unsafe { pcre2_jit_compile_8(self.ptr, PCRE2_JIT_COMPLETE) } == 0;
            let partial = jit
                && self.partial
                && unsafe { pcre2_jit_compile_8(self.ptr, PCRE2_JIT_PARTIAL_HARD) } == 0;
            (jit, partial)
        })
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        unsafe { pcre2_code_free_8(self.ptr) }
    }
}

/// A compiled pattern. Cheap to clone.
#[derive(Clone)]
pub struct Regex {
    code: Arc<Code>,
    pattern: Arc<str>,
    captures: usize,
    /// (group index, name), sorted by index.
    names: Arc<[(usize, Box<str>)]>,
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Regex").field(&&*self.pattern).finish()
    }
}

fn error_message(code: i32) -> String {
    let mut buf = [0u8; 256];
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return format!("PCRE2 error {code}");
    }
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

impl Regex {
    /// Compiles `pattern` in UTF mode and JIT-compiles it when the platform allows.
    pub fn new(pattern: &str, flags: Flags) -> Result<Regex, CompileError> {
        let mut options = PCRE2_UTF;
        if flags.caseless {
            options |= PCRE2_CASELESS;
        }
        if flags.multiline {
            options |= PCRE2_MULTILINE;
        }
        if flags.dotall {
            options |= PCRE2_DOTALL;
        }
        if flags.ucp {
            options |= PCRE2_UCP;
        }
        if flags.alt_circumflex {
            options |= PCRE2_ALT_CIRCUMFLEX;
        }
        let mut errcode: i32 = 0;
        let mut erroffset: usize = 0;
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                options,
                &mut errcode,
                &mut erroffset,
                ptr::null_mut(),
            )
        };
        if code.is_null() {
            return Err(CompileError {
                message: error_message(errcode),
                offset: erroffset,
            });
        }
        let code = Code {
            ptr: code,
            partial: flags.partial,
            jit: OnceLock::new(),
        };
        let mut captures: u32 = 0;
        unsafe {
            pcre2_pattern_info_8(
                code.ptr,
                PCRE2_INFO_CAPTURECOUNT,
                &mut captures as *mut u32 as *mut _,
            )
        };
        let names = unsafe { read_name_table(code.ptr) };
        Ok(Regex {
            code: Arc::new(code),
            pattern: pattern.into(),
            captures: captures as usize,
            names: names.into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Number of capturing groups (group 0, the whole match, not counted).
    pub fn captures_len(&self) -> usize {
        self.captures
    }

    /// Named groups as (index, name), sorted by index.
    pub fn names(&self) -> &[(usize, Box<str>)] {
        &self.names
    }

    /// Index of the named group `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .find(|(_, n)| &**n == name)
            .map(|(i, _)| *i)
    }

    pub fn is_jit(&self) -> bool {
        self.code.jitted().0
    }

    /// Searches `subject` from byte `start`. On a match the spans are in
    /// `scratch` until the next call. `Ok(false)` is no match.
    pub fn find_at(
        &self,
        subject: &str,
        start: usize,
        scratch: &mut Scratch,
    ) -> Result<bool, MatchError> {
        scratch.fit(self.captures + 1);
        // The JIT entry point skips the argument checks: do the one that
        // matters here.
        if start > subject.len() {
            return Err(MatchError::Other(PCRE2_ERROR_BADOFFSET));
        }
        let (jit, _) = self.code.jitted();
        let rc = unsafe {
            let run = if jit {
                pcre2_jit_match_8
            } else {
                pcre2_match_8
            };
            run(
                self.code.ptr,
                subject.as_ptr(),
                subject.len(),
                start,
                PCRE2_NO_UTF_CHECK,
                scratch.data,
                scratch.ctx,
            )
        };
        scratch.groups = self.captures + 1;
        if rc >= 0 {
            Ok(true)
        } else if rc == PCRE2_ERROR_NOMATCH {
            Ok(false)
        } else if rc == PCRE2_ERROR_MATCHLIMIT
            || rc == PCRE2_ERROR_DEPTHLIMIT
            || rc == PCRE2_ERROR_JIT_STACKLIMIT
        {
            Err(MatchError::Limit)
        } else {
            Err(MatchError::Other(rc))
        }
    }

    /// Whether this regex (built with [`Flags::partial`]) finds a complete
    /// match in `subject` without ever needing what would follow its end
    /// (PCRE2's hard partial matching). Then it finds the same match, with
    /// the same groups (left in `scratch`), in every subject that starts
    /// with `subject`. False when it cannot tell.
    pub fn settles(&self, subject: &str, scratch: &mut Scratch) -> bool {
        if !self.code.jitted().1 {
            return false;
        }
        scratch.fit(self.captures + 1);
        let rc = unsafe {
            pcre2_jit_match_8(
                self.code.ptr,
                subject.as_ptr(),
                subject.len(),
                0,
                PCRE2_NO_UTF_CHECK | PCRE2_PARTIAL_HARD,
                scratch.data,
                scratch.ctx,
            )
        };
        scratch.groups = self.captures + 1;
        rc >= 0
    }

    /// `find_at` from the start of `subject`.
    pub fn find(&self, subject: &str, scratch: &mut Scratch) -> Result<bool, MatchError> {
        self.find_at(subject, 0, scratch)
    }

    /// Whether `subject` matches at all; a limit error counts as no match.
    pub fn is_match(&self, subject: &str, scratch: &mut Scratch) -> bool {
        matches!(self.find(subject, scratch), Ok(true))
    }
}

unsafe fn read_name_table(code: *const pcre2_code_8) -> Vec<(usize, Box<str>)> {
    let mut count: u32 = 0;
    let mut entry_size: u32 = 0;
    let mut table: *const u8 = ptr::null();
    pcre2_pattern_info_8(code, PCRE2_INFO_NAMECOUNT, &mut count as *mut u32 as *mut _);
    pcre2_pattern_info_8(
        code,
        PCRE2_INFO_NAMEENTRYSIZE,
        &mut entry_size as *mut u32 as *mut _,
    );
    pcre2_pattern_info_8(
        code,
        PCRE2_INFO_NAMETABLE,
        &mut table as *mut *const u8 as *mut _,
    );
    let mut names = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        // Each entry: a 2-byte big-endian group number, then the NUL-terminated name.
        let entry =
            std::slice::from_raw_parts(table.add(i * entry_size as usize), entry_size as usize);
        let index = ((entry[0] as usize) << 8) | entry[1] as usize;
        let name = &entry[2..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        names.push((index, String::from_utf8_lossy(&name[..end]).into()));
    }
    names.sort_by_key(|(i, _)| *i);
    names
}

/// Default limits: generous for every stock filter on ordinary lines, small
/// enough that catastrophic backtracking on a 10 MB line ends in milliseconds.
pub const DEFAULT_MATCH_LIMIT: u32 = 1_000_000;
pub const DEFAULT_DEPTH_LIMIT: u32 = 10_000;
const JIT_STACK_MAX: usize = 1 << 20;

/// Per-thread match state: match context with limits, JIT stack and the match
/// data (ovector) reused by every match. Not shared between threads.
pub struct Scratch {
    ctx: *mut pcre2_match_context_8,
    stack: *mut pcre2_jit_stack_8,
    data: *mut pcre2_match_data_8,
    /// The ovector of `data` (`pairs` pairs of offsets).
    ovector: *mut usize,
    pairs: usize,
    groups: usize,
}

// SAFETY: the pointers are owned exclusively by this value; moving it to
// another thread moves that ownership (it is not Sync).
unsafe impl Send for Scratch {}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::with_limits(DEFAULT_MATCH_LIMIT, DEFAULT_DEPTH_LIMIT)
    }
}

impl Scratch {
    pub fn with_limits(match_limit: u32, depth_limit: u32) -> Scratch {
        unsafe {
            let ctx = pcre2_match_context_create_8(ptr::null_mut());
            assert!(
                !ctx.is_null(),
                "out of memory creating a PCRE2 match context"
            );
            pcre2_set_match_limit_8(ctx, match_limit);
            pcre2_set_depth_limit_8(ctx, depth_limit);
            let stack = pcre2_jit_stack_create_8(32 * 1024, JIT_STACK_MAX, ptr::null_mut());
            if !stack.is_null() {
                pcre2_jit_stack_assign_8(ctx, None, stack as *mut _);
            }
            let pairs = 16;
            let data = pcre2_match_data_create_8(pairs as u32, ptr::null_mut());
            assert!(!data.is_null(), "out of memory creating PCRE2 match data");
            Scratch {
                ctx,
                stack,
                data,
                ovector: pcre2_get_ovector_pointer_8(data),
                pairs,
                groups: 0,
            }
        }
    }

    fn fit(&mut self, pairs: usize) {
        if pairs > self.pairs {
            unsafe {
                pcre2_match_data_free_8(self.data);
                self.data = pcre2_match_data_create_8(pairs as u32, ptr::null_mut());
                assert!(
                    !self.data.is_null(),
                    "out of memory creating PCRE2 match data"
                );
                self.ovector = pcre2_get_ovector_pointer_8(self.data);
            }
            self.pairs = pairs;
        }
    }

    /// The raw spans of the last match (PCRE2's ovector, unset groups as
    /// `usize::MAX`), to [`Scratch::restore`] later.
    pub fn raw(&self) -> &[usize] {
        // SAFETY: see `get`.
        unsafe { std::slice::from_raw_parts(self.ovector, 2 * self.groups) }
    }

    /// Puts back spans taken with [`Scratch::raw`], as if that match had
    /// just been made.
    pub fn restore(&mut self, raw: &[usize]) {
        let groups = raw.len() / 2;
        self.fit(groups);
        // SAFETY: `fit` made room for `groups` pairs; the ovector is ours.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), self.ovector, raw.len()) };
        self.groups = groups;
    }

    /// Span of group `i` (0 is the whole match) of the last successful match,
    /// None when the group did not take part.
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.groups {
            return None;
        }
        // SAFETY: `groups <= pairs` (fit before each match), and the ovector
        // holds `pairs` pairs while `data` lives.
        let (s, e) = unsafe { (*self.ovector.add(2 * i), *self.ovector.add(2 * i + 1)) };
        if s == usize::MAX {
            None
        } else {
            Some((s, e))
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unsafe {
            pcre2_match_data_free_8(self.data);
            if !self.stack.is_null() {
                pcre2_jit_stack_free_8(self.stack);
            }
            pcre2_match_context_free_8(self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_syntax_named_groups_backrefs_conditionals() {
        let re = Regex::new(
            r"^(?P<q>['x])?user (?P<u>\w+)(?(q)(?P=q)|)$",
            Flags::default(),
        )
        .unwrap();
        let mut s = Scratch::default();
        assert!(re.find("user bob", &mut s).unwrap());
        assert_eq!(s.get(re.group_index("u").unwrap()), Some((5, 8)));
        assert_eq!(s.get(re.group_index("q").unwrap()), None);
        assert!(re.find("'user bob'", &mut s).unwrap());
        assert!(!re.find("'user bob", &mut s).unwrap());
        assert_eq!(
            re.names().iter().map(|(_, n)| &**n).collect::<Vec<_>>(),
            ["q", "u"]
        );
    }

    #[test]
    fn mid_pattern_inline_flag_is_scoped_to_its_group() {
        let re = Regex::new(r"SASL ((?i)login|plain) failed", Flags::default()).unwrap();
        let mut s = Scratch::default();
        assert!(re.is_match("SASL LOGIN failed", &mut s));
        assert!(!re.is_match("SASL LOGIN FAILED", &mut s));
    }

    #[test]
    fn catastrophic_backtracking_stops_at_the_limit() {
        let re = Regex::new(r"^(a+)+$", Flags::default()).unwrap();
        let mut s = Scratch::default();
        let line = "a".repeat(5000) + "b";
        assert_eq!(re.find(&line, &mut s), Err(MatchError::Limit));
    }

    #[test]
    fn compile_error_names_the_offset() {
        let err = Regex::new(r"abc(", Flags::default()).unwrap_err();
        assert_eq!(err.offset, 4);
        assert!(err.message.contains("missing"), "{}", err.message);
    }
}
