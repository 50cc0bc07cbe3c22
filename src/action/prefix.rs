//! The addresses and subnets banned in one firewall set, and which of them the
//! set must hold: a `flags interval` set refuses overlapping elements, so a
//! banned subnet replaces the banned addresses inside it, and they come back
//! when the subnet is unbanned.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::tags::Family;

/// An address (full length) or a subnet of one family, network bits only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub addr: u128,
    pub len: u8,
}

pub fn family_of(net: &IpNet) -> Family {
    match net {
        IpNet::V4(_) => Family::Inet4,
        IpNet::V6(_) => Family::Inet6,
    }
}

fn width(family: Family) -> u8 {
    match family {
        Family::Inet4 => 32,
        Family::Inet6 => 128,
    }
}

impl Prefix {
    pub fn from_net(net: &IpNet) -> Prefix {
        let net = net.trunc();
        let addr = match net.network() {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        Prefix {
            addr,
            len: net.prefix_len(),
        }
    }

    pub fn to_net(self, family: Family) -> IpNet {
        match family {
            Family::Inet4 => IpNet::new(IpAddr::V4(Ipv4Addr::from(self.addr as u32)), self.len),
            Family::Inet6 => IpNet::new(IpAddr::V6(Ipv6Addr::from(self.addr)), self.len),
        }
        .expect("prefix length within the family's width")
    }

    /// The address, or the subnet in CIDR notation (`192.0.2.1`, `192.0.2.0/24`).
    pub fn display(self, family: Family) -> String {
        let net = self.to_net(family);
        if self.len == width(family) {
            net.addr().to_string()
        } else {
            net.to_string()
        }
    }

    /// The last address inside, in a family `w` bits wide.
    fn last(self, w: u8) -> u128 {
        let host = u32::from(w - self.len);
        if host >= 128 {
            u128::MAX
        } else {
            self.addr | ((1u128 << host) - 1)
        }
    }

    fn mask(self, len: u8, w: u8) -> Prefix {
        let host = u32::from(w - len);
        let addr = if host >= 128 {
            0
        } else {
            self.addr & !((1u128 << host) - 1)
        };
        Prefix { addr, len }
    }
}

/// Parses a ban target as Fail2ban prints it: an address or `addr/len`.
pub fn parse_target(s: &str) -> Option<IpNet> {
    match s.trim().split_once('/') {
        Some((a, l)) => {
            let addr = crate::util::parse_addr(a)?;
            IpNet::new(addr, l.parse().ok()?).ok().map(|n| n.trunc())
        }
        None => crate::util::parse_addr(s).map(IpNet::from),
    }
}

/// Banned prefixes of one family.
#[derive(Debug, Clone)]
pub struct PrefixSet {
    width: u8,
    items: BTreeSet<Prefix>,
    /// How many items have each prefix length (to look for covers quickly).
    lens: Vec<u32>,
}

impl PrefixSet {
    pub fn new(family: Family) -> PrefixSet {
        let w = width(family);
        PrefixSet {
            width: w,
            items: BTreeSet::new(),
            lens: vec![0; usize::from(w) + 1],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.lens.iter_mut().for_each(|n| *n = 0);
    }

    /// Whether a banned subnet strictly contains `p`.
    fn covered(&self, p: Prefix) -> bool {
        (0..p.len)
            .filter(|&l| self.lens[usize::from(l)] > 0)
            .any(|l| self.items.contains(&p.mask(l, self.width)))
    }

    /// Whether `p` is banned and no banned subnet contains it: the set holds it.
    pub fn is_top(&self, p: Prefix) -> bool {
        self.items.contains(&p) && !self.covered(p)
    }

    /// The outermost banned prefixes strictly inside `p` (or all of them).
    fn tops_in(&self, p: Option<Prefix>) -> Vec<Prefix> {
        let range = match p {
            Some(p) if p.len == self.width => return Vec::new(),
            Some(p) => self.items.range(
                Prefix {
                    addr: p.addr,
                    len: p.len + 1,
                }..=Prefix {
                    addr: p.last(self.width),
                    len: u8::MAX,
                },
            ),
            None => self.items.range(..),
        };
        let mut out = Vec::new();
        let mut covered_to: Option<u128> = None;
        for &q in range {
            if covered_to.is_some_and(|end| q.addr <= end) {
                continue;
            }
            covered_to = Some(q.last(self.width));
            out.push(q);
        }
        out
    }

    /// Every prefix the set must hold.
    pub fn tops(&self) -> Vec<Prefix> {
        self.tops_in(None)
    }

    /// Bans `p`; records in `changes` what the set must add or delete.
    pub fn insert(&mut self, p: Prefix, changes: &mut Changes) -> bool {
        if self.items.contains(&p) {
            return false;
        }
        if !self.covered(p) {
            for q in self.tops_in(Some(p)) {
                changes.touch(q, true);
            }
            changes.touch(p, false);
        }
        self.items.insert(p);
        self.lens[usize::from(p.len)] += 1;
        true
    }

    /// Unbans `p`; records in `changes` what the set must add or delete.
    pub fn remove(&mut self, p: Prefix, changes: &mut Changes) -> bool {
        if !self.items.contains(&p) {
            return false;
        }
        if !self.covered(p) {
            changes.touch(p, true);
            for q in self.tops_in(Some(p)) {
                changes.touch(q, false);
            }
        }
        self.items.remove(&p);
        self.lens[usize::from(p.len)] -= 1;
        true
    }
}

/// Elements whose presence in the set may have changed, with whether the set
/// held them before the first change.
#[derive(Debug, Default)]
pub struct Changes {
    before: HashMap<Prefix, bool>,
}

impl Changes {
    fn touch(&mut self, p: Prefix, held: bool) {
        self.before.entry(p).or_insert(held);
    }

    /// (delete, add): what turns the set as it was into what `set` needs.
    pub fn diff(self, set: &PrefixSet) -> (Vec<Prefix>, Vec<Prefix>) {
        let mut del = Vec::new();
        let mut add = Vec::new();
        for (p, held) in self.before {
            match (held, set.is_top(p)) {
                (true, false) => del.push(p),
                (false, true) => add.push(p),
                _ => {}
            }
        }
        del.sort_unstable();
        add.sort_unstable();
        (del, add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::from_net(&parse_target(s).unwrap())
    }

    fn show(v: &[Prefix]) -> Vec<String> {
        v.iter().map(|x| x.display(Family::Inet4)).collect()
    }

    #[test]
    fn parse_targets() {
        assert_eq!(
            parse_target("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_target("::ffff:192.0.2.1").unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(p("2001:db8::1").display(Family::Inet6), "2001:db8::1");
        assert!(parse_target("192.0.2.1/33").is_none());
        assert!(parse_target("host.example").is_none());
    }

    #[test]
    fn subnet_replaces_addresses_and_gives_them_back() {
        let mut s = PrefixSet::new(Family::Inet4);
        let mut c = Changes::default();
        s.insert(p("192.0.2.5"), &mut c);
        s.insert(p("192.0.2.7"), &mut c);
        s.insert(p("198.51.100.1"), &mut c);
        let (d, a) = c.diff(&s);
        assert!(d.is_empty());
        assert_eq!(show(&a), ["192.0.2.5", "192.0.2.7", "198.51.100.1"]);

        let mut c = Changes::default();
        s.insert(p("192.0.2.0/24"), &mut c);
        let (d, a) = c.diff(&s);
        assert_eq!(show(&d), ["192.0.2.5", "192.0.2.7"]);
        assert_eq!(show(&a), ["192.0.2.0/24"]);

        // An address inside a banned subnet needs nothing in the set.
        let mut c = Changes::default();
        assert!(s.insert(p("192.0.2.9"), &mut c));
        assert_eq!(c.diff(&s), (vec![], vec![]));
        assert_eq!(show(&s.tops()), ["192.0.2.0/24", "198.51.100.1"]);

        let mut c = Changes::default();
        s.remove(p("192.0.2.0/24"), &mut c);
        let (d, a) = c.diff(&s);
        assert_eq!(show(&d), ["192.0.2.0/24"]);
        assert_eq!(show(&a), ["192.0.2.5", "192.0.2.7", "192.0.2.9"]);
    }

    #[test]
    fn changes_within_one_batch_cancel() {
        let mut s = PrefixSet::new(Family::Inet4);
        let mut c = Changes::default();
        s.insert(p("192.0.2.5"), &mut c);
        s.insert(p("192.0.2.0/25"), &mut c);
        s.insert(p("192.0.2.0/24"), &mut c);
        s.remove(p("192.0.2.0/24"), &mut c);
        let (d, a) = c.diff(&s);
        assert!(d.is_empty());
        assert_eq!(show(&a), ["192.0.2.0/25"]);
    }

    #[test]
    fn nested_subnets_and_v6() {
        let mut s = PrefixSet::new(Family::Inet6);
        let mut c = Changes::default();
        for x in [
            "2001:db8::1",
            "2001:db8::/64",
            "2001:db8::/32",
            "2001:db8:1::/48",
            "::/0",
        ] {
            s.insert(p(x), &mut c);
        }
        let tops: Vec<_> = s.tops().iter().map(|x| x.display(Family::Inet6)).collect();
        assert_eq!(tops, ["::/0"]);
        let mut c = Changes::default();
        s.remove(p("::/0"), &mut c);
        let (_, a) = c.diff(&s);
        let a: Vec<_> = a.iter().map(|x| x.display(Family::Inet6)).collect();
        assert_eq!(a, ["2001:db8::/32"]);
    }
}
