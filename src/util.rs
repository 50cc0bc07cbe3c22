//! Small helpers shared by several modules: address parsing, wall-clock
//! time, this host's names, Python's `repr()`.

use std::net::IpAddr;
use std::sync::OnceLock;

/// Seconds since the Unix epoch, as Fail2ban counts time (a float).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses an address the way Fail2ban reads a failure id: IPv4, IPv6 (brackets
/// allowed), IPv4-mapped IPv6 folded to IPv4.
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// This host's name as `gethostname` gives it; empty when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; we stop at the first NUL
    // (or the buffer's end).
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// This host's (fully qualified, short) names, as Fail2ban's `<fq-hostname>`
/// and `<sh-hostname>` give them: the resolver's canonical name when it has
/// a dot (Python's `getfqdn`), else the host name; and the host name.
/// Looked up once.
pub fn host_names() -> &'static (String, String) {
    static NAMES: OnceLock<(String, String)> = OnceLock::new();
    NAMES.get_or_init(|| {
        let short = hostname();
        let fq = canonical_name(&short)
            .filter(|n| n.contains('.'))
            .unwrap_or_else(|| short.clone());
        (fq, short)
    })
}

/// The canonical name of `host` from the resolver.
fn canonical_name(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set the flag.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string and hints; `res` is freed below on success.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, `res` points to a list whose first
    // entry carries the canonical name (or NULL).
    let name = unsafe {
        let p = (*res).ai_canonname;
        let name =
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| !n.is_empty())
}

/// Python's `repr()` of a JSON-shaped value, as fail2ban-client prints replies
/// and `-d` prints commands: `['set', 'sshd', 'maxretry', 6]`, `None`, `True`.
pub fn py_repr(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&py_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => py_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, v);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str_repr(out, k);
                out.push_str(": ");
                write_repr(out, v);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` (and `str()`) of a float: shortest round-trip digits,
/// always with a point or exponent (`1700000000.0`, `1700000000.25`, `1e+20`).
pub fn py_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
    let s = format!("{f:?}");
    if s.contains('e') {
        // Rust prints 1e20 as "1e20"; Python as "1e+20".
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    s
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and
/// no double quote; backslash escapes for the rest.
pub fn py_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // Python's non-printable Latin-1: C0 and C1 controls, DEL, the
            // no-break space and the soft hyphen.
            c if matches!(c as u32, 0..0x20 | 0x7f..=0xa0 | 0xad) => {
                use std::fmt::Write;
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_names_agree() {
        let (fq, short) = host_names();
        assert_eq!(*short, hostname());
        assert!(!short.is_empty());
        assert!(fq == short || fq.contains('.'), "{fq:?} for {short:?}");
    }

    #[test]
    fn mapped_v6_folds_to_v4() {
        assert_eq!(
            parse_addr("::ffff:1.2.3.4"),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            parse_addr("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_addr("1.2.3"), None);
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(
            py_repr(&json!(["set", "sshd", "maxretry", 6])),
            "['set', 'sshd', 'maxretry', 6]"
        );
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!("a'b\"c")), "'a\\'b\"c'");
        assert_eq!(py_repr(&json!("x\\d+\n")), "'x\\\\d+\\n'");
        assert_eq!(
            py_repr(&json!([{"sshd": []}, null, true, 1.5])),
            "[{'sshd': []}, None, True, 1.5]"
        );
        assert_eq!(py_repr(&json!(1e20)), "1e+20");
        assert_eq!(
            py_repr(&json!("a\u{1}\u{7f}\u{85}\u{a0}\u{ad}é")),
            "'a\\x01\\x7f\\x85\\xa0\\xadé'"
        );
    }

    #[test]
    fn python_float() {
        assert_eq!(py_float(1700000000.0), "1700000000.0");
        assert_eq!(py_float(1700000000.25), "1700000000.25");
    }
}
