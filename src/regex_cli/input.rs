//! The LOG argument: a file read in one piece and cut at `\n` (an unfinished
//! last line is left out, as Fail2ban waits for its end), or lines given on
//! the command line; each line decoded as Fail2ban decodes it.

use std::borrow::Cow;
use std::io::{self, Read};

/// The log encodings understood (`-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    /// Reads an encoding name as Python normalises it (`UTF-8`, `utf8`,
    /// `latin-1`, `ISO-8859-1`, `ascii`, ...).
    pub fn parse(name: &str) -> Option<Encoding> {
        let n: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c == '-' || c == ' ' { '_' } else { c })
            .collect();
        Some(match n.as_str() {
            "utf_8" | "utf8" | "u8" | "utf" | "cp65001" => Encoding::Utf8,
            "latin_1" | "latin1" | "latin" | "l1" | "iso_8859_1" | "iso8859_1" | "8859"
            | "cp819" | "iso_ir_100" => Encoding::Latin1,
            "ascii" | "us_ascii" | "646" => Encoding::Ascii,
            _ => return None,
        })
    }

    /// Decodes one line; bytes the encoding cannot read become U+FFFD, as
    /// with Python's `errors='replace'`.
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Cow<'a, str> {
        match self {
            Encoding::Utf8 => crate::filter::decode_line(bytes),
            Encoding::Latin1 if bytes.is_ascii() => Cow::Borrowed(ascii(bytes)),
            Encoding::Latin1 => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
            Encoding::Ascii if bytes.is_ascii() => Cow::Borrowed(ascii(bytes)),
            Encoding::Ascii => Cow::Owned(
                bytes
                    .iter()
                    .map(|&b| if b.is_ascii() { b as char } else { '\u{fffd}' })
                    .collect(),
            ),
        }
    }
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("ASCII is UTF-8")
}

/// Bytes read at a time; a longer line grows the buffer.
const CHUNK: usize = 1 << 20;

/// Finds where in `block[from..]` the next line that may matter holds a
/// literal (see [`crate::filter::Prefilter::next_candidate`]).
pub type Gate<'a> = &'a dyn Fn(&[u8], usize) -> Option<usize>;

/// Calls `each(number, line, open)` for every complete line read from `r`
/// (numbered from 1, decoded, `\n` and trailing `\r` removed). The log is
/// read a block at a time into one buffer; a block of valid UTF-8 is
/// checked once, not line by line, and `gate` runs over it in one pass
/// (`open` tells whether the line holds a literal; None when not known).
pub fn each_line(
    mut r: impl Read,
    encoding: Encoding,
    gate: Option<Gate>,
    mut each: impl FnMut(usize, &str, Option<bool>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let (mut filled, mut n) = (0, 0);
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let got = match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let seen = filled;
        filled += got;
        let Some(last) = memchr::memrchr(b'\n', &buf[seen..filled]).map(|i| seen + i) else {
            continue;
        };
        let block = &buf[..=last];
        let mut at = 0;
        match std::str::from_utf8(block) {
            // Literals are UTF-8: the raw bytes of a UTF-8 block can be scanned.
            Ok(text) if encoding == Encoding::Utf8 => {
                let mut next = gate.map(|g| g(block, 0));
                for end in memchr::memchr_iter(b'\n', block) {
                    n += 1;
                    let open = next.map(|p| p.is_some_and(|p| p < end));
                    each(n, text[at..end].trim_end_matches(['\r', '\n']), open)?;
                    if open == Some(true) {
                        next = gate.map(|g| g(block, end + 1));
                    }
                    at = end + 1;
                }
            }
            _ => {
                for end in memchr::memchr_iter(b'\n', block) {
                    n += 1;
                    each(n, &encoding.decode(trim_eol(&block[at..end])), None)?;
                    at = end + 1;
                }
            }
        }
        buf.copy_within(last + 1..filled, 0);
        filled -= last + 1;
    }
}

/// The line without the `\r` and `\n` characters at its end (Python's
/// `rstrip('\r\n')`).
pub fn trim_eol(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], encoding: Encoding) -> Vec<(usize, String)> {
        let mut got = Vec::new();
        each_line(data, encoding, None, |n, l, open| {
            assert_eq!(open, None);
            got.push((n, l.to_string()));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn the_gate_marks_the_lines_holding_a_literal() {
        let find =
            |b: &[u8], from: usize| memchr::memmem::find(&b[from..], b"fail").map(|p| p + from);
        let mut got = Vec::new();
        let data = b"a fail\nb\nfail fail\nc\nd failed\r\n";
        each_line(&data[..], Encoding::Utf8, Some(&find), |_, l, open| {
            got.push((l.to_string(), open.unwrap()));
            Ok(())
        })
        .unwrap();
        let want = [
            ("a fail", true),
            ("b", false),
            ("fail fail", true),
            ("c", false),
            ("d failed", true),
        ];
        assert_eq!(got, want.map(|(l, o)| (l.to_string(), o)));
    }

    #[test]
    fn complete_lines_only() {
        let got = lines(b"a\r\r\n\nb\rc\nd\xffe\nunfinished", Encoding::Utf8);
        let want = [(1, "a"), (2, ""), (3, "b\rc"), (4, "d\u{fffd}e")];
        assert_eq!(got, want.map(|(n, l)| (n, l.to_string())));
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_whole() {
        let mut data = vec![b'x'; 3 * CHUNK + 5];
        data.extend_from_slice(b"\nshort\n");
        let got = lines(&data, Encoding::Latin1);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.len(), 3 * CHUNK + 5);
        assert_eq!(got[1], (2, "short".to_string()));
    }

    #[test]
    fn encodings_replace_what_they_cannot_read() {
        assert_eq!(Encoding::parse("UTF-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::parse("ISO-8859-1"), Some(Encoding::Latin1));
        assert_eq!(Encoding::parse("klingon"), None);
        assert_eq!(Encoding::Latin1.decode(b"\xe9t\xe9"), "\u{e9}t\u{e9}");
        assert_eq!(Encoding::Ascii.decode(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(Encoding::Utf8.decode(b"a\xffb\0"), "a\u{fffd}b\0");
    }
}
