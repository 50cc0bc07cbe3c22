//! Batching of per-address commands: when every ban (or unban) command of a
//! batch is one plain `ipset ... add|del` or `iptables ... -I|-A|-D` command,
//! they run as one `ipset restore` or one `iptables-restore --noflush`
//! instead of one process each. Anything else runs command by command.
//!
//! A chain of per-address iptables rules, or an ipset, outlives a crash with
//! what it holds, so at start it is brought in line with the bans instead
//! ([`Existing`]): banning again what a chain holds would leave a second rule
//! that one unban does not remove, and entries of addresses unbanned (or
//! expired) meanwhile would stay.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::prefix::parse_target;

/// One process that does the work of many commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub program: String,
    pub args: Vec<String>,
    pub input: String,
}

/// The words of a command made only of plain words (no quoting, expansion,
/// redirection or second command), else None.
fn plain_words(cmd: &str) -> Option<Vec<&str>> {
    let cmd = cmd.trim();
    let plain = cmd.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\t' | b'_' | b'.' | b'/' | b':' | b',' | b'=' | b'@' | b'%' | b'+' | b'-'
            )
    });
    (plain && !cmd.is_empty()).then(|| cmd.split_whitespace().collect())
}

fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// The shared part of a command and its line in the batch input.
#[derive(PartialEq, Eq)]
struct Parsed<'a> {
    head: Vec<&'a str>,
    line: String,
}

/// `ipset -exist add SET ADDR ...`: only with `-exist`, so that a batch
/// stopped half-way can be run again command by command.
fn parse_ipset<'a>(w: &[&'a str]) -> Option<Parsed<'a>> {
    if base_name(w[0]) != "ipset" {
        return None;
    }
    let sub = 1 + w[1..].iter().position(|a| !a.starts_with('-'))?;
    let opts = &w[1..sub];
    if !matches!(w[sub], "add" | "del") || !opts.iter().any(|o| matches!(*o, "-exist" | "-!")) {
        return None;
    }
    Some(Parsed {
        head: w[..sub].to_vec(),
        line: w[sub..].join(" "),
    })
}

/// `iptables [-w [N]] [-t TABLE] -I|-A|-D CHAIN RULE...`.
fn parse_iptables<'a>(w: &[&'a str]) -> Option<Parsed<'a>> {
    if !matches!(
        base_name(w[0]),
        "iptables"
            | "ip6tables"
            | "iptables-nft"
            | "ip6tables-nft"
            | "iptables-legacy"
            | "ip6tables-legacy"
    ) {
        return None;
    }
    let mut i = 1;
    let mut table = "filter";
    while i < w.len() {
        match w[i] {
            "-w" | "--wait" => {
                i += 1;
                if w.get(i)
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 1;
                }
            }
            "-t" | "--table" => {
                table = w.get(i + 1)?;
                i += 2;
            }
            "-I" | "-A" | "-D" | "--insert" | "--append" | "--delete" => break,
            _ => return None,
        }
    }
    if i + 1 >= w.len() {
        return None;
    }
    let mut head = w[..i].to_vec();
    head.push(table);
    Some(Parsed {
        head,
        line: w[i..].join(" "),
    })
}

/// One process for all of `cmds`, when they allow it (at least two).
pub fn plan<S: AsRef<str>>(cmds: &[S]) -> Option<Batch> {
    if cmds.len() < 2 {
        return None;
    }
    let mut parsed = Vec::with_capacity(cmds.len());
    for c in cmds {
        let w = plain_words(c.as_ref())?;
        parsed.push(parse_ipset(&w).or_else(|| parse_iptables(&w))?);
    }
    let head = &parsed[0].head;
    if parsed.iter().any(|p| p.head != *head) {
        return None;
    }
    if base_name(head[0]) == "ipset" {
        let mut input = String::new();
        for p in &parsed {
            input.push_str(&p.line);
            input.push('\n');
        }
        let mut args: Vec<String> = head[1..].iter().map(|s| s.to_string()).collect();
        args.push("restore".into());
        return Some(Batch {
            program: head[0].to_string(),
            args,
            input,
        });
    }
    let (table, opts) = head[1..].split_last()?;
    let mut input = format!("*{table}\n");
    for p in &parsed {
        input.push_str(&p.line);
        input.push('\n');
    }
    input.push_str("COMMIT\n");
    let mut args = vec!["--noflush".to_string()];
    // iptables-restore takes the wait option as iptables does.
    args.extend(opts.iter().map(|s| s.to_string()));
    Some(Batch {
        program: format!("{}-restore", head[0]),
        args,
        input,
    })
}

/// Ban commands whose work can be listed and brought in line with the bans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Chain(ChainInserts),
    Set(SetAdds),
}

impl Existing {
    /// The commands as inserts into one chain or additions to one ipset.
    pub fn parse(cmds: &[String]) -> Option<Existing> {
        ChainInserts::parse(cmds)
            .map(Existing::Chain)
            .or_else(|| SetAdds::parse(cmds).map(Existing::Set))
    }

    /// The chain or set.
    pub fn name(&self) -> &str {
        match self {
            Existing::Chain(c) => &c.chain,
            Existing::Set(s) => &s.set,
        }
    }

    /// The program and arguments that list what is there; they fail when
    /// the chain or set does not exist.
    pub fn listing(&self) -> (String, Vec<String>) {
        match self {
            Existing::Chain(c) => c.listing(),
            Existing::Set(s) => (s.head[0].clone(), vec!["save".into(), s.set.clone()]),
        }
    }

    /// One run that leaves, of what `listing` shows, exactly the work of
    /// these commands; None when it is in line already.
    pub fn reconcile(&self, listing: &str) -> Option<Batch> {
        match self {
            Existing::Chain(c) => c.reconcile(listing),
            Existing::Set(s) => s.reconcile(listing),
        }
    }

    /// The same chain or set without any address: reconciling then removes
    /// every address.
    pub fn without_addresses(mut self) -> Existing {
        match &mut self {
            Existing::Chain(c) => c.rules.clear(),
            Existing::Set(s) => s.adds.clear(),
        }
        self
    }
}

/// Per-address `ipset -exist add SET ADDR ...` ban commands, all into one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAdds {
    /// The program and its options (`ipset`, `-exist`).
    head: Vec<String>,
    set: String,
    /// Each command's address and its line for `ipset restore`.
    adds: Vec<(IpNet, String)>,
}

impl SetAdds {
    fn parse(cmds: &[String]) -> Option<SetAdds> {
        let mut out: Option<SetAdds> = None;
        for c in cmds {
            let w = plain_words(c)?;
            let p = parse_ipset(&w)?;
            let line: Vec<&str> = p.line.split_whitespace().collect();
            if line[0] != "add" {
                return None;
            }
            let set = line.get(1)?.to_string();
            let addr = parse_target(line.get(2)?)?;
            let o = out.get_or_insert_with(|| SetAdds {
                head: p.head.iter().map(|s| s.to_string()).collect(),
                set: set.clone(),
                adds: Vec::new(),
            });
            if o.head != p.head || o.set != set {
                return None;
            }
            o.adds.push((addr, p.line.clone()));
        }
        out
    }

    /// From `ipset save SET`: members no ban covers are deleted, addresses
    /// not there added; subnets are added again every time (a `hash:ip` set
    /// holds each of their addresses, and adding is idempotent with `-exist`).
    fn reconcile(&self, listing: &str) -> Option<Batch> {
        let hosts: HashSet<IpNet> = self
            .adds
            .iter()
            .map(|(n, _)| n.trunc())
            .filter(|n| n.prefix_len() == n.max_prefix_len())
            .collect();
        let subnets: Vec<IpNet> = self
            .adds
            .iter()
            .map(|(n, _)| n.trunc())
            .filter(|n| n.prefix_len() < n.max_prefix_len())
            .collect();
        let mut present = HashSet::new();
        let mut lines = Vec::new();
        for l in listing.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 3 || w[0] != "add" || w[1] != self.set {
                continue;
            }
            let Some(net) = parse_target(w[2]).map(|n| n.trunc()) else {
                continue;
            };
            if hosts.contains(&net) {
                present.insert(net);
            } else if !subnets.iter().any(|s| s.contains(&net)) {
                lines.push(format!("del {} {}", self.set, w[2]));
            }
        }
        let mut seen = HashSet::new();
        for (net, line) in &self.adds {
            let net = net.trunc();
            if !present.contains(&net) && seen.insert(net) {
                lines.push(line.clone());
            }
        }
        if lines.is_empty() {
            return None;
        }
        let mut input = lines.join("\n");
        input.push('\n');
        let mut args: Vec<String> = self.head[1..].to_vec();
        args.push("restore".into());
        Some(Batch {
            program: self.head[0].clone(),
            args,
            input,
        })
    }
}

/// Per-address `iptables [-w] [-t TABLE] -I|-A CHAIN [N] -s ADDR ...` ban
/// commands, all on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInserts {
    /// The program and its options before the table (`iptables`, `-w`).
    head: Vec<String>,
    table: String,
    chain: String,
    /// Each command's source and its line for iptables-restore.
    rules: Vec<(IpNet, String)>,
}

/// A rule without its verb, chain and position, with its source as
/// `iptables -S` lists it (`-s 192.0.2.1/32 -j DROP`): equal for a rule as
/// inserted and as listed.
fn rule_key(words: &[&str]) -> String {
    let skip = if words
        .get(2)
        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        3
    } else {
        2
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut rest = words.iter().skip(skip);
    while let Some(w) = rest.next() {
        out.push(w.to_string());
        if matches!(*w, "-s" | "--source") {
            let src = rest.next().copied().unwrap_or("");
            out.push(parse_target(src).map_or(src.to_string(), |n| n.trunc().to_string()));
        }
    }
    out.join(" ")
}

/// The `-s` value of a rule's words.
fn source(words: &[&str]) -> Option<IpNet> {
    let i = words.iter().position(|w| matches!(*w, "-s" | "--source"))?;
    parse_target(words.get(i + 1)?)
}

impl ChainInserts {
    /// The commands as inserts into one chain, else None.
    fn parse(cmds: &[String]) -> Option<ChainInserts> {
        let mut out: Option<ChainInserts> = None;
        for c in cmds {
            let w = plain_words(c)?;
            let p = parse_iptables(&w)?;
            let rule: Vec<&str> = p.line.split_whitespace().collect();
            if !matches!(rule[0], "-I" | "-A" | "--insert" | "--append") {
                return None;
            }
            let (table, head) = p.head.split_last()?;
            let chain = rule.get(1)?.to_string();
            let src = source(&rule)?;
            let o = out.get_or_insert_with(|| ChainInserts {
                head: head.iter().map(|s| s.to_string()).collect(),
                table: table.to_string(),
                chain: chain.clone(),
                rules: Vec::new(),
            });
            if o.head != head || o.table != *table || o.chain != chain {
                return None;
            }
            o.rules.push((src, p.line.clone()));
        }
        out
    }

    /// The program and arguments that list the chain (`iptables -w -t
    /// filter -S f2b-sshd`).
    fn listing(&self) -> (String, Vec<String>) {
        let mut args: Vec<String> = self.head[1..].to_vec();
        args.extend([
            "-t".into(),
            self.table.clone(),
            "-S".into(),
            self.chain.clone(),
        ]);
        (self.head[0].clone(), args)
    }

    /// One iptables-restore run that leaves the chain, as `listing` (from
    /// [`listing`](Self::listing)) shows it, with exactly one rule per
    /// address of these commands: rules of other addresses and second rules
    /// of one address are deleted, addresses without a rule inserted. Rules
    /// without a source (the chain's `-j RETURN`) stay. None when the chain
    /// is in line already.
    fn reconcile(&self, listing: &str) -> Option<Batch> {
        let mut wanted: HashMap<IpNet, (&str, String)> = HashMap::new();
        for (net, line) in &self.rules {
            let w: Vec<&str> = line.split_whitespace().collect();
            wanted
                .entry(net.trunc())
                .or_insert_with(|| (line, rule_key(&w)));
        }
        let mut lines = Vec::new();
        for l in listing.lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 2 || w[0] != "-A" || w[1] != self.chain {
                continue;
            }
            let Some(net) = source(&w) else { continue };
            // The first rule of a wanted address that is the configured one
            // stays; anything else goes (a second rule, another address, a
            // rule of an earlier configuration, as another blocktype).
            let keep = wanted
                .get(&net.trunc())
                .is_some_and(|(_, key)| *key == rule_key(&w));
            if keep {
                wanted.remove(&net.trunc());
            } else {
                lines.push(format!("-D {}", w[1..].join(" ")));
            }
        }
        // Inserted in the order of the commands (each at the top, as they
        // would have run).
        for (net, line) in &self.rules {
            if wanted.remove(&net.trunc()).is_some() {
                lines.push(line.clone());
            }
        }
        if lines.is_empty() {
            return None;
        }
        let mut input = format!("*{}\n", self.table);
        for l in lines {
            input.push_str(&l);
            input.push('\n');
        }
        input.push_str("COMMIT\n");
        let mut args = vec!["--noflush".to_string()];
        args.extend(self.head[1..].iter().cloned());
        Some(Batch {
            program: format!("{}-restore", self.head[0]),
            args,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(cmds: &[&str]) -> Vec<String> {
        cmds.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ipset_batches_with_exist_only() {
        let b = plan(&v(&[
            "ipset -exist add f2b-sshd 192.0.2.1 timeout 0",
            "ipset -exist add f2b-sshd 192.0.2.2 timeout 0",
        ]))
        .unwrap();
        assert_eq!(b.program, "ipset");
        assert_eq!(b.args, ["-exist", "restore"]);
        assert_eq!(
            b.input,
            "add f2b-sshd 192.0.2.1 timeout 0\nadd f2b-sshd 192.0.2.2 timeout 0\n"
        );
        assert!(plan(&v(&["ipset add s 192.0.2.1", "ipset add s 192.0.2.2"])).is_none());
    }

    #[test]
    fn iptables_batches() {
        let b = plan(&v(&[
            "iptables -w -I f2b-sshd 1 -s 192.0.2.1 -j REJECT --reject-with icmp-port-unreachable",
            "iptables -w -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable",
        ]))
        .unwrap();
        assert_eq!(b.program, "iptables-restore");
        assert_eq!(b.args, ["--noflush", "-w"]);
        assert_eq!(
            b.input,
            "*filter\n-I f2b-sshd 1 -s 192.0.2.1 -j REJECT --reject-with icmp-port-unreachable\n\
             -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"
        );
    }

    #[test]
    fn anything_else_runs_one_by_one() {
        assert!(plan(&v(&["iptables -w -I c 1 -s 192.0.2.1 -j DROP"])).is_none());
        assert!(plan(&v(&[
            "iptables -I c -s 192.0.2.1 -j DROP",
            "ip6tables -I c -s ::1 -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&[
            "iptables -I c -s \"$x\" -j DROP",
            "iptables -I c -s y -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&[
            "iptables -I c -j DROP; reboot",
            "iptables -I c -j DROP"
        ]))
        .is_none());
        assert!(plan(&v(&["iptables -N f2b", "iptables -N f2b"])).is_none());
        assert!(plan(&v(&[
            "ip route add unreachable 192.0.2.1",
            "ip route add unreachable 192.0.2.2"
        ]))
        .is_none());
    }

    #[test]
    fn chain_reconciled_with_the_bans() {
        let cmds = v(&[
            "iptables -w -I f2b-sshd 1 -s 192.0.2.1 -j REJECT --reject-with icmp-port-unreachable",
            "iptables -w -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable",
        ]);
        let ins = ChainInserts::parse(&cmds).unwrap();
        assert_eq!(
            ins.listing(),
            (
                "iptables".into(),
                v(&["-w", "-t", "filter", "-S", "f2b-sshd"])
            )
        );
        // After a crash: .1 twice, .9 no longer banned, .2 missing.
        let listing = "-N f2b-sshd\n\
            -A f2b-sshd -s 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable\n\
            -A f2b-sshd -s 192.0.2.9/32 -j REJECT --reject-with icmp-port-unreachable\n\
            -A f2b-sshd -s 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable\n\
            -A f2b-sshd -j RETURN\n";
        let b = ins.reconcile(listing).unwrap();
        assert_eq!(b.program, "iptables-restore");
        assert_eq!(b.args, ["--noflush", "-w"]);
        assert_eq!(
            b.input,
            "*filter\n\
             -D f2b-sshd -s 192.0.2.9/32 -j REJECT --reject-with icmp-port-unreachable\n\
             -D f2b-sshd -s 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable\n\
             -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable\n\
             COMMIT\n"
        );
        let clean = "-N f2b-sshd\n\
            -A f2b-sshd -s 192.0.2.2/32 -j REJECT --reject-with icmp-port-unreachable\n\
            -A f2b-sshd -s 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable\n\
            -A f2b-sshd -j RETURN\n";
        assert_eq!(ins.reconcile(clean), None);
        // Rules of another blocktype are replaced.
        let dropped = "-A f2b-sshd -s 192.0.2.2/32 -j DROP\n\
            -A f2b-sshd -s 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable\n";
        assert_eq!(
            ins.reconcile(dropped).unwrap().input,
            "*filter\n-D f2b-sshd -s 192.0.2.2/32 -j DROP\n\
             -I f2b-sshd 1 -s 192.0.2.2 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"
        );
        // Not inserts into one chain: no reconciliation.
        assert!(ChainInserts::parse(&v(&["ipset -exist add s 192.0.2.1"])).is_none());
        assert!(matches!(
            Existing::parse(&cmds),
            Some(Existing::Chain(c)) if c == ins
        ));
        assert!(ChainInserts::parse(&v(&[
            "iptables -I a 1 -s 192.0.2.1 -j DROP",
            "iptables -I b 1 -s 192.0.2.2 -j DROP"
        ]))
        .is_none());
        assert!(ChainInserts::parse(&v(&["iptables -D a -s 192.0.2.1 -j DROP"])).is_none());
    }

    #[test]
    fn ipset_reconciled_with_the_bans() {
        let cmds = v(&[
            "ipset -exist add f2b-sshd 192.0.2.1 timeout 0",
            "ipset -exist add f2b-sshd 198.51.100.0/30 timeout 0",
            "ipset -exist add f2b-sshd 192.0.2.2 timeout 0",
        ]);
        let set = Existing::parse(&cmds).unwrap();
        assert_eq!(set.name(), "f2b-sshd");
        assert_eq!(set.listing(), ("ipset".into(), v(&["save", "f2b-sshd"])));
        let listing = "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 0\n\
            add f2b-sshd 192.0.2.9 timeout 0\nadd f2b-sshd 192.0.2.1 timeout 0\n\
            add f2b-sshd 198.51.100.1 timeout 0\n";
        let b = set.reconcile(listing).unwrap();
        assert_eq!(
            (b.program.as_str(), b.args.clone()),
            ("ipset", v(&["-exist", "restore"]))
        );
        assert_eq!(
            b.input,
            "del f2b-sshd 192.0.2.9\nadd f2b-sshd 198.51.100.0/30 timeout 0\n\
             add f2b-sshd 192.0.2.2 timeout 0\n"
        );
        let hosts =
            Existing::parse(&v(&["ipset -exist add f2b-sshd 192.0.2.1 timeout 0"])).unwrap();
        assert_eq!(
            hosts.reconcile(listing).unwrap().input,
            "del f2b-sshd 192.0.2.9\ndel f2b-sshd 198.51.100.1\n"
        );
        let empty = hosts.clone().without_addresses();
        assert_eq!(
            empty.reconcile(listing).unwrap().input,
            "del f2b-sshd 192.0.2.9\ndel f2b-sshd 192.0.2.1\ndel f2b-sshd 198.51.100.1\n"
        );
        assert_eq!(hosts.reconcile("add f2b-sshd 192.0.2.1 timeout 0\n"), None);
    }
}
