//! Failure and ban ids: an address, a network (manual bans, `<SUBNET>`) or any
//! other string (`<F-ID>`), read and printed the way Fail2ban's `IPAddr` does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

/// What a jail counts failures for and bans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanId {
    /// One address (IPv4-mapped IPv6 folded to IPv4).
    Addr(IpAddr),
    /// A network shorter than one address, host bits cleared.
    Net(IpNet),
    /// Any other failure id, kept as written.
    Name(Box<str>),
}

/// A value that is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address or network {value:?}: {reason}")]
pub struct AddrError {
    pub value: String,
    pub reason: &'static str,
}

impl BanId {
    /// Reads a failure id as Fail2ban does: an address (brackets allowed), a
    /// network (`addr/len` or `addr/mask`), and anything else as a name.
    pub fn parse(s: &str) -> BanId {
        parse_net(s).unwrap_or_else(|_| BanId::Name(s.into()))
    }

    /// Reads an address or network only (manual bans, `ignoreip`); anything
    /// else is an error naming the value.
    pub fn parse_net(s: &str) -> Result<BanId, AddrError> {
        parse_net(s.trim())
    }

    /// The network this id covers (an address as a full-length prefix).
    pub fn net(&self) -> Option<IpNet> {
        match self {
            BanId::Addr(a) => Some(IpNet::from(*a)),
            BanId::Net(n) => Some(*n),
            BanId::Name(_) => None,
        }
    }

    /// The single address, when the id is one.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            BanId::Addr(a) => Some(*a),
            _ => None,
        }
    }

    /// Fail2ban's `<family>` tag: `inet4` or `inet6`.
    pub fn family(&self) -> Option<&'static str> {
        match self.net()? {
            IpNet::V4(_) => Some("inet4"),
            IpNet::V6(_) => Some("inet6"),
        }
    }

    /// Fail2ban's `isInNet`: the id's (network) address lies inside `net`.
    /// A wider network whose base address is inside `net` counts as inside,
    /// which is what `unbanip <cidr>` has always done.
    pub fn is_in(&self, net: &IpNet) -> bool {
        match (self.net(), net) {
            (Some(IpNet::V4(me)), IpNet::V4(n)) => n.contains(&me.network()),
            (Some(IpNet::V6(me)), IpNet::V6(n)) => n.contains(&me.network()),
            _ => false,
        }
    }
}

impl From<IpAddr> for BanId {
    fn from(a: IpAddr) -> BanId {
        BanId::Addr(a.to_canonical())
    }
}

impl From<IpNet> for BanId {
    fn from(n: IpNet) -> BanId {
        let n = fold_mapped_net(n.trunc());
        if n.prefix_len() == n.max_prefix_len() {
            BanId::Addr(n.addr())
        } else {
            BanId::Net(n)
        }
    }
}

fn parse_net(s: &str) -> Result<BanId, AddrError> {
    let err = |reason| AddrError {
        value: s.to_string(),
        reason,
    };
    let s = match s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => s,
    };
    let Some((addr, len)) = s.split_once('/') else {
        return s
            .parse::<IpAddr>()
            .map(BanId::from)
            .map_err(|_| err("not an address"));
    };
    let addr: IpAddr = addr.parse().map_err(|_| err("not an address before '/'"))?;
    let len = if len.contains(['.', ':']) {
        mask_len(len).ok_or_else(|| err("the mask is not a contiguous netmask"))?
    } else {
        len.trim()
            .parse::<u8>()
            .map_err(|_| err("the prefix length is not a number"))?
    };
    IpNet::new(addr, len)
        .map(BanId::from)
        .map_err(|_| err("the prefix length is too long"))
}

/// `255.255.255.0` or `ffff:ffff::` to a prefix length.
fn mask_len(mask: &str) -> Option<u8> {
    let (bits, width) = match mask.parse::<IpAddr>().ok()? {
        IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, 32),
        IpAddr::V6(m) => (u128::from(m), 128),
    };
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0 && len <= width).then_some(len as u8)
}

/// `::ffff:a.b.c.d/len` with len >= 96 is an IPv4 network.
fn fold_mapped_net(n: IpNet) -> IpNet {
    match n {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(n, IpNet::V4),
            None => n,
        },
        _ => n,
    }
}

/// Prints IPv6 as glibc's `inet_ntop` (which Fail2ban uses): like Rust's
/// format except that IPv4-compatible addresses (`::a.b.c.d`) keep the dots.
fn write_v6(f: &mut fmt::Formatter<'_>, a: &Ipv6Addr) -> fmt::Result {
    let s = a.segments();
    if s[..6] == [0; 6] && s[6] != 0 {
        let [.., a, b, c, d] = a.octets();
        return write!(f, "::{}", Ipv4Addr::new(a, b, c, d));
    }
    write!(f, "{a}")
}

impl fmt::Display for BanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanId::Addr(IpAddr::V4(a)) => write!(f, "{a}"),
            BanId::Addr(IpAddr::V6(a)) => write_v6(f, a),
            BanId::Net(IpNet::V4(n)) => write!(f, "{}/{}", n.network(), n.prefix_len()),
            BanId::Net(IpNet::V6(n)) => {
                write_v6(f, &n.network())?;
                write!(f, "/{}", n.prefix_len())
            }
            BanId::Name(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> BanId {
        BanId::parse(s)
    }

    #[test]
    fn addresses_networks_and_names() {
        assert_eq!(id("192.0.2.1"), BanId::Addr("192.0.2.1".parse().unwrap()));
        assert_eq!(
            id("[2001:db8::1]"),
            BanId::Addr("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            id("::ffff:192.0.2.1"),
            BanId::Addr("192.0.2.1".parse().unwrap())
        );
        assert_eq!(id("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(id("192.0.2.77/255.255.255.0").to_string(), "192.0.2.0/24");
        assert_eq!(
            id("192.0.2.77/32"),
            BanId::Addr("192.0.2.77".parse().unwrap())
        );
        assert_eq!(id("2001:db8::7/64").to_string(), "2001:db8::/64");
        assert_eq!(id("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(id("user@example"), BanId::Name("user@example".into()));
        assert_eq!(id("192.0.2.1/33"), BanId::Name("192.0.2.1/33".into()));
    }

    #[test]
    fn strict_parse_names_the_value() {
        let e = BanId::parse_net("mail.example").unwrap_err();
        assert!(e.to_string().contains("\"mail.example\""), "{e}");
        assert!(BanId::parse_net("192.0.2.0/255.0.255.0").is_err());
        assert!(BanId::parse_net("192.0.2.0/x").is_err());
        assert_eq!(
            BanId::parse_net(" 198.51.100.9 ").unwrap().to_string(),
            "198.51.100.9"
        );
    }

    #[test]
    fn prints_like_inet_ntop() {
        // The dotted form of IPv4-compatible addresses is glibc's, checked
        // against python3's socket.inet_ntop.
        assert_eq!(id("::1.2.3.4").to_string(), "::1.2.3.4");
        assert_eq!(id("::0.0.1.2").to_string(), "::102");
        assert_eq!(id("::1").to_string(), "::1");
        assert_eq!(id("1:0:0:2:0:0:3:4").to_string(), "1::2:0:0:3:4");
    }

    #[test]
    fn is_in_uses_the_base_address() {
        let net: IpNet = "192.0.2.0/24".parse().unwrap();
        assert!(id("192.0.2.9").is_in(&net));
        assert!(id("192.0.2.128/25").is_in(&net));
        assert!(id("192.0.0.0/16").is_in(&"192.0.0.0/24".parse().unwrap()));
        assert!(!id("198.51.100.1").is_in(&net));
        assert!(!id("2001:db8::1").is_in(&net));
        assert!(!id("someone").is_in(&net));
    }
}
