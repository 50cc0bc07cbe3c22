//! Small helpers shared by several modules: address parsing and wall-clock time.

use std::net::IpAddr;

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
    let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v6_folds_to_v4() {
        assert_eq!(parse_addr("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_addr("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_addr("1.2.3"), None);
    }
}
