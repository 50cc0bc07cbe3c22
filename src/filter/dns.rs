//! Name resolution for `<HOST>` matches that are DNS names (`usedns = yes`
//! or `warn`): the resolver interface, the system resolver with Fail2ban's
//! cache (1000 names, 5 minutes), and a fixed table for tests and
//! `fail2ban-regex`-style dry runs.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Resolves a host name to its addresses (IPv4-mapped IPv6 folded).
pub trait Resolver: Send + Sync {
    fn resolve(&self, name: &str) -> Vec<IpAddr>;
}

fn fold(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

const CACHE_MAX: usize = 1000;
const CACHE_TTL: Duration = Duration::from_secs(300);

/// `getaddrinfo` through the standard library, cached like Fail2ban's
/// `DNSUtils.dnsToIp` (failures are cached too, so a dead name costs one
/// lookup per five minutes).
#[derive(Default)]
pub struct SystemResolver {
    cache: Mutex<HashMap<String, (Instant, Vec<IpAddr>)>>,
}

impl Resolver for SystemResolver {
    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        let now = Instant::now();
        if let Some((at, ips)) = self.cache.lock().unwrap().get(name) {
            if now.duration_since(*at) < CACHE_TTL {
                return ips.clone();
            }
        }
        let mut ips: Vec<IpAddr> = match (name, 0u16).to_socket_addrs() {
            Ok(addrs) => addrs.map(|a| fold(a.ip())).collect(),
            Err(e) => {
                tracing::warn!("Unable to find a corresponding IP address for {name}: {e}");
                Vec::new()
            }
        };
        ips.sort();
        ips.dedup();
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(name.to_string(), (now, ips.clone()));
        ips
    }
}

/// A fixed name table (`/etc/hosts`-like); unknown names resolve to nothing.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    pub names: HashMap<String, Vec<IpAddr>>,
}

impl Resolver for StaticResolver {
    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        self.names
            .get(name)
            .map(|v| v.iter().copied().map(fold).collect())
            .unwrap_or_default()
    }
}
