//! Failure ids as Fail2ban's `IPAddr` reads and prints them: glibc's
//! `inet_pton`/`inet_ntop` rules, `[v6]` brackets, `/cidr` and `/mask`
//! suffixes, IPv4-mapped IPv6 folded to IPv4, and the raw text kept for ids
//! that are no address.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The `cidr` argument of Fail2ban's `IPAddr(text, cidr)`.
pub(crate) const CIDR_UNSPEC: i128 = -1;
pub(crate) const CIDR_RAW: i128 = -2;
const AF_INET: i128 = 2;
const AF_INET6: i128 = 10;
/// Parse as IPv4 only / IPv6 only (`CIDR_RAW - family`).
pub(crate) const FAM_IPV4: i128 = CIDR_RAW - AF_INET;
pub(crate) const FAM_IPV6: i128 = CIDR_RAW - AF_INET6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    /// Not an address; printed as the raw text.
    Invalid,
    /// Taken as is, never parsed (`usedns = raw`).
    Raw,
}

/// A failure id: an address (possibly a network) or raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Id {
    family: Family,
    addr: u128,
    plen: i128,
    raw: String,
}

/// An id Fail2ban itself fails on (a bad `/mask`, a NUL byte): the line's
/// processing stops with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdError(pub String);

/// glibc's `inet_pton(AF_INET)`: four decimal octets, no leading zeros.
pub(crate) fn pton4(s: &[u8]) -> Option<u32> {
    let mut octets = 0;
    let mut saw_digit = false;
    let mut cur: u32 = 0;
    let mut out: u32 = 0;
    for &ch in s {
        match ch {
            b'0'..=b'9' => {
                let new = cur * 10 + (ch - b'0') as u32;
                if saw_digit && cur == 0 {
                    return None;
                }
                if new > 255 {
                    return None;
                }
                cur = new;
                if !saw_digit {
                    octets += 1;
                    if octets > 4 {
                        return None;
                    }
                    saw_digit = true;
                }
            }
            b'.' if saw_digit => {
                if octets == 4 {
                    return None;
                }
                out = (out << 8) | cur;
                cur = 0;
                saw_digit = false;
            }
            _ => return None,
        }
    }
    if octets < 4 || !saw_digit {
        return None;
    }
    Some((out << 8) | cur)
}

/// glibc's `inet_pton(AF_INET6)`, embedded IPv4 tail included.
pub(crate) fn pton6(s: &[u8]) -> Option<u128> {
    let mut tmp = [0u8; 16];
    let mut tp = 0usize;
    let mut colonp: Option<usize> = None;
    let mut i = 0;
    if s.is_empty() {
        return None;
    }
    if s[0] == b':' {
        i = 1;
        if s.get(1) != Some(&b':') {
            return None;
        }
    }
    let mut curtok = i;
    let mut seen = 0;
    let mut val: u32 = 0;
    while i < s.len() {
        let ch = s[i];
        i += 1;
        if let Some(d) = (ch as char).to_digit(16) {
            if seen == 4 {
                return None;
            }
            val = (val << 4) | d;
            seen += 1;
            continue;
        }
        if ch == b':' {
            curtok = i;
            if seen == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if i == s.len() {
                return None;
            }
            if tp + 2 > 16 {
                return None;
            }
            tmp[tp] = (val >> 8) as u8;
            tmp[tp + 1] = val as u8;
            tp += 2;
            seen = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= 16 {
            if let Some(v4) = pton4(&s[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4.to_be_bytes());
                tp += 4;
                seen = 0;
                break;
            }
        }
        return None;
    }
    if seen > 0 {
        if tp + 2 > 16 {
            return None;
        }
        tmp[tp] = (val >> 8) as u8;
        tmp[tp + 1] = val as u8;
        tp += 2;
    }
    if let Some(c) = colonp {
        if tp == 16 {
            return None;
        }
        let n = tp - c;
        tmp.copy_within(c..tp, 16 - n);
        tmp[c..16 - n].fill(0);
        tp = 16;
    }
    (tp == 16).then(|| u128::from_be_bytes(tmp))
}

/// glibc's `inet_ntop(AF_INET6)`: the first longest run (two or more) of zero
/// groups becomes `::`; `::a.b.c.d` and `::ffff:a.b.c.d` keep the dotted tail.
pub(crate) fn ntop6(addr: u128) -> String {
    let b = addr.to_be_bytes();
    let words: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]))
        .collect();
    let (mut best, mut cur): ((isize, usize), (isize, usize)) = ((-1, 0), (-1, 0));
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur.0 == -1 {
                cur = (i as isize, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur.0 = -1;
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best.0 = -1;
    }
    let mut out = String::with_capacity(40);
    let in_best =
        |i: usize| best.0 != -1 && i as isize >= best.0 && (i as isize) < best.0 + best.1 as isize;
    for i in 0..8 {
        if in_best(i) {
            if i as isize == best.0 {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best.0 == 0 && (best.1 == 6 || (best.1 == 5 && words[5] == 0xffff)) {
            let _ = write!(out, "{}", Ipv4Addr::from([b[12], b[13], b[14], b[15]]));
            return out;
        }
        let _ = write!(out, "{:x}", words[i]);
    }
    if best.0 != -1 && best.0 as usize + best.1 == 8 {
        out.push(':');
    }
    out
}

/// Python's `int(text)` for the few forms a log can give (sign, ASCII digits,
/// underscores between digits, surrounding blanks); saturates far beyond any
/// prefix length.
pub(crate) fn py_int(text: &str) -> Option<i128> {
    let t = text.trim_matches(|c: char| c.is_whitespace());
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    if b.is_empty() || b[0] == b'_' || b[b.len() - 1] == b'_' || digits.contains("__") {
        return None;
    }
    let mut v: i128 = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                v = v
                    .saturating_mul(10)
                    .saturating_add((c - b'0') as i128)
                    .min(1 << 64)
            }
            b'_' => {}
            _ => return None,
        }
    }
    Some(if neg { -v } else { v })
}

/// Fail2ban's mask-to-prefix table: a contiguous mask's prefix length, looked
/// up by value whatever the family (so `0` is 0 and an all-ones IPv4 value 32).
fn mask_plen(addr: u128) -> Option<i128> {
    if addr == u128::MAX {
        return Some(128);
    }
    if addr == u32::MAX as u128 {
        return Some(32);
    }
    if addr == 0 {
        return Some(0);
    }
    if addr < (1 << 32) {
        let a = addr as u32;
        let ones = a.leading_ones();
        if a.checked_shl(ones).unwrap_or(0) == 0 {
            return Some(ones as i128);
        }
        return None;
    }
    let ones = addr.leading_ones();
    (addr.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as i128)
}

fn mask(bits: u32, addr: u128, cidr: i128) -> u128 {
    if cidr >= bits as i128 {
        return addr;
    }
    let all: u128 = if bits == 32 {
        u32::MAX as u128
    } else {
        u128::MAX
    };
    let keep = all & !(all >> cidr as u32);
    addr & keep
}

impl Id {
    /// Fail2ban's `IPAddr(text, cidr)`.
    pub(crate) fn new(text: &str, cidr: i128) -> Result<Id, IdError> {
        if cidr == CIDR_UNSPEC {
            let (text, cidr) = wrap(text)?;
            return Id::init(text, cidr);
        }
        Id::init(text, cidr)
    }

    fn init(text: &str, cidr: i128) -> Result<Id, IdError> {
        // The text is kept only for an id that is not an address.
        let mut id = Id {
            family: Family::Invalid,
            addr: 0,
            plen: 0,
            raw: String::new(),
        };
        if cidr == CIDR_RAW {
            id.family = Family::Raw;
            id.raw = text.to_string();
            return Ok(id);
        }
        if text.contains('\0') {
            return Err(IdError("embedded null character".into()));
        }
        let (try4, try6) = if cidr < CIDR_RAW {
            (CIDR_RAW - cidr == AF_INET, CIDR_RAW - cidr == AF_INET6)
        } else {
            (true, true)
        };
        if let Some(a) = try4.then(|| pton4(text.as_bytes())).flatten() {
            id.family = Family::V4;
            id.addr = a as u128;
            id.plen = 32;
            if cidr >= 0 {
                id.addr = mask(32, id.addr, cidr);
                id.plen = cidr;
            }
        } else if let Some(a) = try6.then(|| pton6(text.as_bytes())).flatten() {
            id.family = Family::V6;
            id.addr = a;
            id.plen = 128;
            if cidr >= 0 {
                id.addr = mask(128, a, cidr);
                id.plen = cidr;
            } else if a >> 32 == 0xffff {
                id.family = Family::V4;
                id.addr = a & 0xffff_ffff;
                id.plen = 32;
            }
        }
        if id.family == Family::Invalid {
            id.raw = text.to_string();
        }
        Ok(id)
    }

    /// Whether this is an address (not raw text).
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self.family, Family::V4 | Family::V6)
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self.family {
            Family::V4 => Some(IpAddr::V4(Ipv4Addr::from(self.addr as u32))),
            Family::V6 => Some(IpAddr::V6(Ipv6Addr::from(self.addr))),
            _ => None,
        }
    }

    /// The prefix length when this is a network rather than one address.
    pub(crate) fn prefix_len(&self) -> Option<u8> {
        let full = match self.family {
            Family::V4 => 32,
            Family::V6 => 128,
            _ => return None,
        };
        (self.plen >= 0 && self.plen < full).then_some(self.plen as u8)
    }

    /// Fail2ban's `ntoa`: the address (with `/plen` for a network), else the raw text.
    pub(crate) fn text(&self) -> String {
        match self.family {
            Family::V4 => {
                let mut s = v4_text(self.addr as u32);
                if self.plen > 0 && self.plen < 32 {
                    let _ = write!(s, "/{}", self.plen);
                }
                s
            }
            Family::V6 => {
                let mut s = ntop6(self.addr);
                if self.plen > 0 && self.plen < 128 {
                    let _ = write!(s, "/{}", self.plen);
                }
                s
            }
            _ => self.raw.clone(),
        }
    }
}

/// Dotted-quad text of an IPv4 address (what `Ipv4Addr`'s `Display`
/// writes, without the formatting machinery: ids are written per failure).
fn v4_text(a: u32) -> String {
    let mut s = String::with_capacity(15);
    for (i, octet) in a.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// Strips `[..]` and splits a `/cidr` or `/mask` suffix, as Fail2ban does
/// before parsing an id.
fn wrap(text: &str) -> Result<(&str, i128), IdError> {
    let text = if text.len() > 2 && text.starts_with('[') && text.ends_with(']') {
        &text[1..text.len() - 1]
    } else {
        text
    };
    let Some((addr, suffix)) = text.split_once('/') else {
        return Ok((text, CIDR_UNSPEC));
    };
    let cidr = if suffix.contains('.') || suffix.contains(':') {
        let m = Id::new(suffix, CIDR_UNSPEC)?;
        mask_plen(m.addr).ok_or_else(|| {
            IdError(format!(
                "invalid mask '{}', no plen representation",
                m.text()
            ))
        })?
    } else {
        py_int(suffix).ok_or_else(|| {
            IdError(format!(
                "invalid literal for int() with base 10: '{suffix}'"
            ))
        })?
    };
    Ok((addr, cidr))
}

/// Fail2ban's `searchIP` as it behaves: only a dotted IPv4 text is taken.
pub(crate) fn search_ipv4(text: &str) -> Option<Id> {
    pton4(text.as_bytes())?;
    Id::new(text, CIDR_UNSPEC).ok().filter(Id::is_valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str, cidr: i128) -> String {
        Id::new(s, cidr).unwrap().text()
    }

    #[test]
    fn ipv4_text_is_dotted_decimal() {
        for a in [0u32, 1, 0x0a00_0001, 0xc000_0264, 0xffff_ffff, 0x6465_0a09] {
            assert_eq!(v4_text(a), Ipv4Addr::from(a).to_string());
        }
    }

    #[test]
    fn ipv4_parsing_follows_glibc() {
        assert_eq!(pton4(b"192.0.2.1"), Some(0xc000_0201));
        for bad in [
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            "256.1.1.1",
            "1..2.3",
            "1.2.3.4 ",
            "",
        ] {
            assert_eq!(pton4(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_parsing_and_printing_follow_glibc() {
        for (input, shown) in [
            ("2001:db8::1", "2001:db8::1"),
            ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("::2:3", "::0.2.0.3"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ] {
            assert_eq!(ntop6(pton6(input.as_bytes()).unwrap()), shown, "{input}");
        }
        for bad in [
            ":1::",
            "1:::2",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            ":",
            "1:",
        ] {
            assert_eq!(pton6(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn ids_as_fail2ban_prints_them() {
        assert_eq!(text("::ffff:192.0.2.7", CIDR_UNSPEC), "192.0.2.7");
        assert_eq!(text("[2001:db8::7]", CIDR_UNSPEC), "2001:db8::7");
        assert_eq!(text("192.0.2.7/24", CIDR_UNSPEC), "192.0.2.0/24");
        assert_eq!(text("192.0.2.7/255.255.0.0", CIDR_UNSPEC), "192.0.0.0/16");
        assert_eq!(text("192.0.2.7/0", CIDR_UNSPEC), "0.0.0.0");
        assert_eq!(text("192.0.2.7/40", CIDR_UNSPEC), "192.0.2.7");
        assert_eq!(text("2001:db8::7/64", CIDR_UNSPEC), "2001:db8::/64");
        assert_eq!(text("user@example", CIDR_UNSPEC), "user@example");
        assert_eq!(text("[x]", CIDR_UNSPEC), "x");
        assert_eq!(text("[x]", CIDR_RAW), "[x]");
        assert_eq!(text("::ffff:192.0.2.7", FAM_IPV6), "192.0.2.7");
        assert_eq!(text("999.1.1.1", FAM_IPV4), "999.1.1.1");
        assert!(Id::new("/a/b", CIDR_UNSPEC).is_err());
        assert!(Id::new("1.2.3.4/255.0.255.0", CIDR_UNSPEC).is_err());
        assert!(Id::new("a\0b", CIDR_UNSPEC).is_err());
        let net = Id::new("192.0.2.7/24", CIDR_UNSPEC).unwrap();
        assert_eq!(
            (net.ip(), net.prefix_len()),
            (Some("192.0.2.0".parse().unwrap()), Some(24))
        );
    }
}
