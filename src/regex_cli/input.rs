//! The LOG argument: a file read in one piece and cut at `\n` (an unfinished
//! last line is left out, as Fail2ban waits for its end), or lines given on
//! the command line; each line decoded as Fail2ban decodes it.

use std::borrow::Cow;

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

/// Calls `each(number, line)` for every complete line of `data` (numbered
/// from 1, `\n` and trailing `\r` removed).
pub fn each_line(data: &[u8], mut each: impl FnMut(usize, &[u8])) {
    let mut at = 0;
    let mut n = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        n += 1;
        each(n, trim_eol(&data[at..end]));
        at = end + 1;
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

    #[test]
    fn complete_lines_only() {
        let mut got = Vec::new();
        each_line(b"a\r\r\n\nb\rc\nunfinished", |n, l| {
            got.push((n, l.to_vec()))
        });
        assert_eq!(
            got,
            vec![(1, b"a".to_vec()), (2, b"".to_vec()), (3, b"b\rc".to_vec())]
        );
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
