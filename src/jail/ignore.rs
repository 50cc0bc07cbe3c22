//! Which failures a jail ignores: `ignoreip` (addresses, networks, DNS names
//! resolved when added), `ignoreself` (this host's addresses), `ignorecommand`
//! (a shell command that gets the address as data, never as code) and
//! `ignorecache`, checked in Fail2ban's order.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use ipnet::IpNet;

use super::id::BanId;
use crate::action::tags::{capture_key, substitute_ticket, Script, SingleQuoted, TagError, Value};
use crate::config::tags::substitute_once;

/// A set of IPv4 and IPv6 networks as a binary trie: a lookup walks at most
/// one node per address bit. Each network carries a mark; a lookup returns
/// the smallest mark among the networks that contain the address.
#[derive(Debug, Clone)]
pub struct PrefixSet {
    /// `nodes[0]` is the IPv4 root, `nodes[1]` the IPv6 root.
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Copy)]
struct TrieNode {
    /// 0 means no child (the roots are never children).
    child: [u32; 2],
    mark: u32,
}

const NO_MARK: u32 = u32::MAX;
const EMPTY_NODE: TrieNode = TrieNode {
    child: [0, 0],
    mark: NO_MARK,
};

/// An address as left-aligned bits, its width and its root node.
fn bits(addr: IpAddr) -> (u128, u32, usize) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32, 0),
        IpAddr::V6(a) => (u128::from(a), 128, 1),
    }
}

impl Default for PrefixSet {
    fn default() -> Self {
        PrefixSet {
            nodes: vec![EMPTY_NODE; 2],
        }
    }
}

impl PrefixSet {
    /// Adds a network (IPv4-mapped ones as IPv4, as addresses are looked up).
    pub fn insert(&mut self, net: IpNet, mark: u32) {
        let net = BanId::from(net).net().unwrap_or(net);
        let (bits, _, mut node) = self::bits(net.network());
        for i in 0..u32::from(net.prefix_len()) {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if self.nodes[node].child[bit] == 0 {
                self.nodes[node].child[bit] = self.nodes.len() as u32;
                self.nodes.push(EMPTY_NODE);
            }
            node = self.nodes[node].child[bit] as usize;
        }
        let m = &mut self.nodes[node].mark;
        *m = (*m).min(mark);
    }

    /// The smallest mark of the networks containing `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<u32> {
        let (bits, width, mut node) = self::bits(addr.to_canonical());
        let mut best = self.nodes[node].mark;
        for i in 0..width {
            let next = self.nodes[node].child[((bits >> (127 - i)) & 1) as usize];
            if next == 0 {
                break;
            }
            node = next as usize;
            best = best.min(self.nodes[node].mark);
        }
        (best != NO_MARK).then_some(best)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.lookup(addr).is_some()
    }
}

/// Why a failure was ignored; the label is what Fail2ban logs
/// (`[jail] Ignore 192.0.2.1 by ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredBy {
    SelfAddress,
    Ip,
    Dns,
    Command,
    /// A verdict remembered by `ignorecache` (Fail2ban logs nothing).
    Cache,
}

impl IgnoredBy {
    pub fn label(self) -> Option<&'static str> {
        match self {
            IgnoredBy::SelfAddress => Some("ignoreself rule"),
            IgnoredBy::Ip => Some("ip"),
            IgnoredBy::Dns => Some("dns"),
            IgnoredBy::Command => Some("command"),
            IgnoredBy::Cache => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Single,
    Net,
    Dns,
}

#[derive(Debug, Clone)]
struct Entry {
    text: String,
    /// How duplicates are recognised: the normalised network, or the name.
    key: String,
    kind: EntryKind,
    nets: Vec<IpNet>,
}

/// An `ignoreip` value that is neither an address, a network nor a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ignoreip: {0}")]
pub struct IgnoreError(#[from] pub super::id::AddrError);

/// `ignoreip`: addresses, networks and DNS names (resolved when added).
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    entries: Vec<Entry>,
    set: PrefixSet,
}

/// Marks in the list's prefix set: single addresses win (Fail2ban checks them
/// first and does not cache them), then entries in the order they were added.
const SINGLE_MARK: u32 = 0;

impl IgnoreList {
    /// Adds a list as written in the config: entries separated by spaces,
    /// commas or newlines.
    pub fn add_all(&mut self, list: &str) -> Result<(), IgnoreError> {
        for entry in list
            .split([' ', ',', '\n', '\t', '\r'])
            .filter(|e| !e.is_empty())
        {
            self.add(entry)?;
        }
        Ok(())
    }

    /// Adds one entry; false when it is already there. A DNS name is resolved
    /// now (a name that does not resolve is kept, matches nothing, and is
    /// reported with a warning, as Fail2ban does).
    pub fn add(&mut self, text: &str) -> Result<bool, IgnoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(false);
        }
        let entry = match BanId::parse_net(text) {
            Ok(id) => Entry {
                text: text.to_string(),
                key: id.to_string(),
                kind: if matches!(id, BanId::Addr(_)) {
                    EntryKind::Single
                } else {
                    EntryKind::Net
                },
                nets: id.net().into_iter().collect(),
            },
            Err(e) if text.contains('/') => return Err(e.into()),
            Err(_) => Entry {
                text: text.to_string(),
                key: text.to_string(),
                kind: EntryKind::Dns,
                nets: resolve(text),
            },
        };
        if entry.kind == EntryKind::Dns && entry.nets.is_empty() {
            tracing::warn!("Unable to find a corresponding IP address for {text}");
        }
        if self.entries.iter().any(|e| e.key == entry.key) {
            return Ok(false);
        }
        self.entries.push(entry);
        self.insert(self.entries.len() - 1);
        Ok(true)
    }

    /// Removes an entry by its text (or an equivalent spelling of the same
    /// network); false when it was not there.
    pub fn remove(&mut self, text: &str) -> bool {
        let text = text.trim();
        let key = BanId::parse_net(text).map_or_else(|_| text.to_string(), |id| id.to_string());
        let before = self.entries.len();
        self.entries.retain(|e| e.key != key);
        if self.entries.len() == before {
            return false;
        }
        self.set = PrefixSet::default();
        (0..self.entries.len()).for_each(|i| self.insert(i));
        true
    }

    fn insert(&mut self, i: usize) {
        let e = &self.entries[i];
        let mark = if e.kind == EntryKind::Single {
            SINGLE_MARK
        } else {
            i as u32 + 1
        };
        for net in &e.nets {
            self.set.insert(*net, mark);
        }
    }

    /// The entries as written, in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.text.as_str())
    }

    /// Whether the id (an address, or the base address of a network) is
    /// inside an entry, and which kind of entry answered.
    fn lookup(&self, id: &BanId) -> Option<EntryKind> {
        let addr = id.net()?.network();
        match self.set.lookup(addr)? {
            SINGLE_MARK => Some(EntryKind::Single),
            m => Some(self.entries[m as usize - 1].kind),
        }
    }
}

/// The addresses of a DNS name, IPv4-mapped ones folded.
fn resolve(name: &str) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = match (name, 0).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| IpNet::from(a.ip().to_canonical())).collect(),
        Err(_) => Vec::new(),
    };
    nets.sort();
    nets.dedup();
    nets
}

/// This host's addresses: every interface address (getifaddrs), loopback,
/// and what `localhost` and the host name resolve to (Fail2ban's own
/// `ignoreself` list; Debian maps the host name to 127.0.1.1).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut addrs = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    match interface_addresses() {
        Ok(found) => addrs.extend(found),
        Err(e) => tracing::warn!("Retrieving own IPs from the interfaces failed: {e}"),
    }
    let mut names = vec!["localhost".to_string()];
    names.extend(Some(crate::util::hostname()).filter(|n| !n.is_empty()));
    for name in names {
        addrs.extend(resolve(&name).into_iter().map(|n| n.addr()));
    }
    let mut addrs: Vec<IpAddr> = addrs.into_iter().map(|a| a.to_canonical()).collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

fn interface_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned; the
        // address, when present, is a sockaddr of the family it names.
        unsafe {
            let sa = (*cur).ifa_addr;
            if !sa.is_null() {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(out)
}

/// This host's addresses for `ignoreself`, read again whenever an interface
/// address was added or removed since the last lookup (a netlink socket
/// subscribed to address events tells). An interface that gets its address
/// after the start, as slirp4netns' tap0 (the mail-server images'
/// NETWORK_INTERFACE under rootless Podman) does, is covered from then on.
#[derive(Debug)]
pub struct SelfAddresses {
    /// None: the set stays as it is.
    events: Option<OwnedFd>,
    set: Mutex<Arc<PrefixSet>>,
}

impl SelfAddresses {
    /// A set that never changes.
    pub fn fixed(set: Arc<PrefixSet>) -> SelfAddresses {
        SelfAddresses {
            events: None,
            set: Mutex::new(set),
        }
    }

    /// [`host_addresses`] now, followed as they change, in the network
    /// namespace of the calling thread.
    pub fn watched() -> SelfAddresses {
        // Subscribed before the first read, so that no change falls between.
        let events = address_events()
            .map_err(|e| {
                tracing::warn!("Own addresses will not follow interface changes: {e}");
            })
            .ok();
        SelfAddresses {
            events,
            set: Mutex::new(Arc::new(host_prefix_set())),
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        if self.events.as_ref().is_some_and(addresses_changed) {
            *set = Arc::new(host_prefix_set());
        }
        set.contains(addr)
    }
}

fn host_prefix_set() -> PrefixSet {
    let mut set = PrefixSet::default();
    for a in host_addresses() {
        set.insert(IpNet::from(a), 0);
    }
    set
}

/// A non-blocking netlink socket that receives every change of an IPv4 or
/// IPv6 interface address.
fn address_events() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
    // SAFETY: `sa` is a sockaddr_nl of the size given.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Drains the pending address events; true when there was one (or some were
/// lost because the socket's buffer overflowed).
fn addresses_changed(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 8192];
    let mut changed = false;
    loop {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            changed = true;
            continue;
        }
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOBUFS) => {
                changed = true;
                continue;
            }
            _ => changed,
        };
    }
}

/// This host's addresses, shared by every jail: one [`SelfAddresses`] per
/// process, made at the first call.
pub fn self_addresses() -> Arc<SelfAddresses> {
    static SELF: OnceLock<Arc<SelfAddresses>> = OnceLock::new();
    SELF.get_or_init(|| Arc::new(SelfAddresses::watched()))
        .clone()
}

/// Values of the dynamic tags an `ignorecommand` (or `ignorecache` key) may
/// use: `<ip>`, `<fid>`, `<family>`, `<F-NAME>` (the filter's captures).
/// Unknown tags stay as written; a missing `<F-NAME>` is empty.
fn tag_value<'a>(
    tag: &str,
    id: &'a str,
    family: Option<&'static str>,
    data: &'a [(String, String)],
) -> Option<&'a str> {
    match tag {
        "ip" | "fid" => Some(id),
        "family" => Some(family.unwrap_or("")),
        _ => {
            let key = capture_key(tag)?;
            Some(
                data.iter()
                    .find(|(k, _)| *k == key)
                    .map_or("", |(_, v)| v.as_str()),
            )
        }
    }
}

/// `ignorecommand`: a shell script; exit 0 means ignore the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreCommand {
    template: String,
}

impl IgnoreCommand {
    /// None for an empty value (Fail2ban's default `ignorecommand =`).
    pub fn new(template: &str) -> Option<IgnoreCommand> {
        let template = template.trim();
        (!template.is_empty()).then(|| IgnoreCommand {
            template: template.to_string(),
        })
    }

    /// The script for one id: each tag becomes a reference to an environment
    /// variable that holds the value, so no value is ever read as shell code
    /// (the action's quoting, [`substitute_ticket`]): `"${f2bV_ip}"` outside
    /// quotes, `${f2bV_ip}` inside double quotes, and inside single quotes
    /// too, where the outer shell leaves it for a nested `sh -c '...'` to
    /// expand from the environment.
    fn call(
        &self,
        id: &BanId,
        data: &[(String, String)],
        cache_key: Option<String>,
    ) -> IgnoreCommandCall {
        let id_text = id.to_string();
        let script = substitute_ticket(&self.template, SingleQuoted::Script, &mut |tag| {
            tag_value(tag, &id_text, id.family(), data).map(|v| Value::Data(v.to_string()))
        });
        IgnoreCommandCall { script, cache_key }
    }
}

/// One run of the `ignorecommand` the jail asks for: run it off the hot path
/// (`run` blocks), then hand the verdict back with `Jail::command_verdict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreCommandCall {
    /// Refused when a value would land where the shell runs it (an
    /// arithmetic expansion).
    script: Result<Script, TagError>,
    cache_key: Option<String>,
}

/// Fail2ban's command timeout.
pub const IGNORE_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// An `ignorecommand` that could not give a verdict (the failure then counts).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("ignorecommand could not start: {0}")]
    Spawn(std::io::Error),
    #[error("ignorecommand failed with {status}: {stderr}")]
    Failed {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("ignorecommand timed out after {0:?} and was killed")]
    Timeout(Duration),
    #[error("ignorecommand refused: {0}")]
    Refused(TagError),
}

impl IgnoreCommandCall {
    /// The script as `sh -c` runs it (values are in the environment); empty
    /// when it was refused.
    pub fn script(&self) -> &str {
        self.script.as_ref().map_or("", |s| s.text.as_str())
    }

    /// Runs `/bin/sh -c SCRIPT` with the values in its environment: Ok(true)
    /// on exit 0 (ignore), Ok(false) on exit 1, an error otherwise. A command
    /// still running after `timeout` is killed with its process group.
    pub fn run(&self, timeout: Duration) -> Result<bool, CommandError> {
        let script = self
            .script
            .as_ref()
            .map_err(|e| CommandError::Refused(e.clone()))?;
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script.text)
            .envs(script.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(CommandError::Spawn)?;
        let pid = child.id() as libc::pid_t;
        // Stderr is read apart from the wait: a background process the
        // command leaves behind may hold it open long after the exit.
        let mut stderr = child.stderr.take();
        let (text_tx, text_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(s) = stderr.as_mut() {
                // Keep the start of what it says; drain the rest so it never blocks.
                let _ = s.take(4096).read_to_end(&mut text);
                let _ = std::io::copy(s, &mut std::io::sink());
            }
            let _ = text_tx.send(text);
        });
        let (status_tx, status_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = status_tx.send(child.wait());
        });
        let status = match status_rx.recv_timeout(timeout) {
            Ok(status) => status.map_err(CommandError::Spawn)?,
            Err(_) => {
                // SAFETY: kill has no memory effects; the group is the child's own.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = status_rx.recv();
                return Err(CommandError::Timeout(timeout));
            }
        };
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => {
                let text = text_rx
                    .recv_timeout(Duration::from_millis(200))
                    .unwrap_or_default();
                Err(CommandError::Failed {
                    status,
                    stderr: String::from_utf8_lossy(&text).trim().to_string(),
                })
            }
        }
    }
}

/// `ignorecache`: remembers verdicts by a key built from tags (`key="<ip>"`),
/// up to `max-count` entries for `max-time` seconds, dropping the oldest
/// first, as Fail2ban's cache does.
#[derive(Debug, Clone)]
pub struct IgnoreCache {
    key: String,
    max_count: usize,
    max_time: f64,
    map: HashMap<String, (bool, f64, u64)>,
    order: BTreeMap<u64, String>,
    seq: u64,
}

impl IgnoreCache {
    /// `key`, `max-count` (Fail2ban's default 100) and `max-time` in seconds
    /// (default 300) of the `ignorecache` value.
    pub fn new(key: &str, max_count: usize, max_time: f64) -> IgnoreCache {
        IgnoreCache {
            key: key.to_string(),
            max_count,
            max_time,
            map: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
        }
    }

    /// The key is no shell text: values go in as they are.
    fn key_for(&self, id: &BanId, data: &[(String, String)]) -> String {
        let id_text = id.to_string();
        substitute_once(&self.key, |tag| {
            tag_value(tag, &id_text, id.family(), data).map(Cow::Borrowed)
        })
    }

    fn get(&mut self, key: &str, now: f64) -> Option<bool> {
        let &(verdict, expiry, seq) = self.map.get(key)?;
        if expiry > now {
            return Some(verdict);
        }
        self.map.remove(key);
        self.order.remove(&seq);
        None
    }

    fn set(&mut self, key: String, verdict: bool, now: f64) {
        if self.map.len() >= self.max_count {
            // Drop expired entries from the front, and one live entry.
            while let Some((_, k)) = self.order.pop_first() {
                let (_, expiry, _) = self.map.remove(&k).unwrap_or((false, f64::NEG_INFINITY, 0));
                if expiry > now && self.map.len() < self.max_count {
                    break;
                }
            }
        }
        let expiry = now + self.max_time;
        match self.map.get_mut(&key) {
            // An existing key keeps its place in the order.
            Some(v) => (v.0, v.1) = (verdict, expiry),
            None => {
                self.seq += 1;
                self.order.insert(self.seq, key.clone());
                self.map.insert(key, (verdict, expiry, self.seq));
            }
        }
    }
}

/// What the ignore rules say about one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreCheck {
    Ignored(IgnoredBy),
    /// Not ignored: count it.
    Clear,
    /// Only `ignorecommand` can tell: run the call, then give the verdict to
    /// `Jail::command_verdict`.
    AskCommand(IgnoreCommandCall),
}

/// All ignore rules of a jail.
#[derive(Debug, Clone)]
pub struct Ignore {
    /// `ignoreself` (default true).
    pub ignoreself: bool,
    /// `ignoreip`.
    pub list: IgnoreList,
    /// `ignorecommand`.
    pub command: Option<IgnoreCommand>,
    /// `ignorecache`.
    pub cache: Option<IgnoreCache>,
    self_addrs: Arc<SelfAddresses>,
}

impl Default for Ignore {
    /// `ignoreself` on with this host's addresses, nothing else.
    fn default() -> Self {
        Ignore::with_own(self_addresses())
    }
}

impl Ignore {
    /// With a fixed set of own addresses.
    pub fn with_self_addresses(self_addrs: Arc<PrefixSet>) -> Ignore {
        Ignore::with_own(Arc::new(SelfAddresses::fixed(self_addrs)))
    }

    fn with_own(self_addrs: Arc<SelfAddresses>) -> Ignore {
        Ignore {
            ignoreself: true,
            list: IgnoreList::default(),
            command: None,
            cache: None,
            self_addrs,
        }
    }

    /// Checks cache, own addresses, `ignoreip`, then asks for the command.
    pub fn check(&mut self, id: &BanId, data: &[(String, String)], now: f64) -> IgnoreCheck {
        let key = self.cache.as_ref().map(|c| c.key_for(id, data));
        if let (Some(cache), Some(key)) = (self.cache.as_mut(), key.as_deref()) {
            if let Some(verdict) = cache.get(key, now) {
                return if verdict {
                    IgnoreCheck::Ignored(IgnoredBy::Cache)
                } else {
                    IgnoreCheck::Clear
                };
            }
        }
        let by = match id {
            BanId::Addr(a) if self.ignoreself && self.self_addrs.contains(*a) => {
                Some(IgnoredBy::SelfAddress)
            }
            _ => match self.list.lookup(id) {
                Some(EntryKind::Single) => return IgnoreCheck::Ignored(IgnoredBy::Ip),
                Some(EntryKind::Net) => Some(IgnoredBy::Ip),
                Some(EntryKind::Dns) => Some(IgnoredBy::Dns),
                None => None,
            },
        };
        if let Some(by) = by {
            self.remember(key, true, now);
            return IgnoreCheck::Ignored(by);
        }
        if let Some(command) = &self.command {
            return IgnoreCheck::AskCommand(command.call(id, data, key));
        }
        self.remember(key, false, now);
        IgnoreCheck::Clear
    }

    /// Records the command's verdict (true: ignore).
    pub fn verdict(&mut self, call: &IgnoreCommandCall, ignored: bool, now: f64) -> IgnoreCheck {
        self.remember(call.cache_key.clone(), ignored, now);
        if ignored {
            IgnoreCheck::Ignored(IgnoredBy::Command)
        } else {
            IgnoreCheck::Clear
        }
    }

    fn remember(&mut self, key: Option<String>, verdict: bool, now: f64) {
        if let (Some(cache), Some(key)) = (self.cache.as_mut(), key) {
            cache.set(key, verdict, now);
        }
    }
}

#[cfg(test)]
mod tests;
