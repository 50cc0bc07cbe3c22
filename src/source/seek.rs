//! Skipping old lines at start: a binary search over a file for the first
//! line dated at or after a time, like Fail2ban's `seekToTime`, with the
//! date parser supplied by the caller (the jail's date detector).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::cursor::MAX_LINE_LEN;

/// Lines looked at after a probe point for one that has a date.
const DATE_WINDOW: usize = 5;

/// Returns the offset of the first line in `[from, to)` whose date (per
/// `date`) is at or after `since`, assuming dates grow through the file;
/// `to` when every dated line is older. `from` must be a line start. Lines
/// without a date take the date of the next dated line within a few lines;
/// a stretch without any is treated as old. Lines longer than MAX_LINE_LEN
/// are parsed on their first MAX_LINE_LEN bytes.
pub fn seek_to_time(
    file: &File,
    from: u64,
    to: u64,
    since: f64,
    date: &mut dyn FnMut(&str) -> Option<f64>,
) -> io::Result<u64> {
    let mut r = LineAt {
        file,
        to,
        buf: Vec::new(),
    };
    let (mut lo, mut hi) = (from, to);
    // Invariant: every line starting before `lo` is older than `since`; the
    // answer is a line start in [lo, hi].
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = if mid == lo {
            lo
        } else {
            r.next_start(mid - 1)?
        };
        if start >= hi {
            hi = mid;
            continue;
        }
        let mut at = start;
        let mut found = None;
        for _ in 0..DATE_WINDOW {
            let Some((text, next)) = r.line(at)? else {
                break;
            };
            let t = date(&String::from_utf8_lossy(text));
            at = next;
            if let Some(t) = t {
                found = Some(t);
                break;
            }
        }
        match found {
            Some(t) if t >= since => hi = start,
            // Older, or no date near here: the answer is after what we read.
            _ => lo = at,
        }
    }
    Ok(lo)
}

/// Bounded line reads at arbitrary offsets.
struct LineAt<'a> {
    file: &'a File,
    to: u64,
    buf: Vec<u8>,
}

impl LineAt<'_> {
    /// The first line start after offset `at` (the byte after the next newline
    /// at or after `at`), or `to`.
    fn next_start(&mut self, mut at: u64) -> io::Result<u64> {
        let mut chunk = [0u8; 4096];
        while at < self.to {
            let want = ((self.to - at) as usize).min(chunk.len());
            let n = self.file.read_at(&mut chunk[..want], at)?;
            if n == 0 {
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
                return Ok(at + i as u64 + 1);
            }
            at += n as u64;
        }
        Ok(self.to)
    }

    /// The line starting at `at` (cut at MAX_LINE_LEN) and the next line's
    /// start; None at `to`.
    fn line(&mut self, at: u64) -> io::Result<Option<(&[u8], u64)>> {
        if at >= self.to {
            return Ok(None);
        }
        let want = ((self.to - at) as usize).min(MAX_LINE_LEN);
        self.buf.resize(want, 0);
        let n = self.file.read_at(&mut self.buf, at)?;
        match memchr::memchr(b'\n', &self.buf[..n]) {
            Some(i) => Ok(Some((&self.buf[..i], at + i as u64 + 1))),
            None => {
                let next = self.next_start(at + n as u64)?;
                Ok(Some((&self.buf[..n], next)))
            }
        }
    }
}
