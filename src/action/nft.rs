//! Fail2ban's nftables action (`nftables`, `nftables-allports`,
//! `nftables-multiport`) carried out by logban: the same table, chain, sets
//! and rules, read from the action's own resolved commands (so `.local`
//! overrides and parameters apply), but bans and unbans go out as batched
//! `nft -f -` transactions, sets carry `flags interval` (subnets), and the
//! firewall is reconciled with the bans at start instead of rebuilt (and
//! rid of the sets of jails removed while logban was down uncleanly).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value as Json;

use super::prefix::{self, Changes, Prefix, PrefixSet};
use super::sys::{self, Env, Output};
use super::tags::{Commands, Family};
use super::{ActionError, Cause, Outcome, Ticket};
use crate::config::ActionDef;

/// Elements per `add element`/`delete element` statement: each statement is
/// one netlink message, kept well below its size limit.
const CHUNK: usize = 1000;

/// Beyond this many deletions a set is flushed and filled again in the same
/// transaction: nft 1.0.6 deletes from an interval set in time proportional
/// to the set's size per element (1,000 deletions from 50,000 elements take
/// minutes), while a refill costs about as much as a handful of deletions.
const REFILL_AFTER: usize = 16;

const FAMILIES: [Family; 2] = [Family::Inet4, Family::Inet6];

/// Transactions of all jails go one at a time: a jail reading the table to
/// reconcile it (or deleting it on stop) must not race another jail's changes.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn is_nftables_file(file: &str) -> bool {
    matches!(
        file,
        "nftables" | "nftables-allports" | "nftables-multiport"
    )
}

/// What logban makes of an action.
pub enum Recognised {
    Yes(Box<NftSpec>),
    /// Not (or no longer) the stock nftables action: its commands run instead.
    No(String),
    /// The nftables action, with a setting that cannot work.
    Invalid(ActionError),
}

/// The set and rules of one address family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SetSpec {
    name: String,
    addr_type: String,
    rules: Vec<String>,
}

/// The objects the action creates, as its commands define them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftSpec {
    nft: Vec<String>,
    table_family: String,
    table: String,
    chain: String,
    /// Inside the chain's braces: `type filter hook input priority -1 ;`.
    chain_def: String,
    sets: [SetSpec; 2],
}

/// Splits `{`, `}` and `;` from words, after the shell's backslash escapes.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        };
        match c {
            '{' | '}' | ';' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One `nft ... add|delete OBJECT ARGS` command line: (nft argv, verb, object, args).
fn nft_command(line: &str) -> Option<(Vec<String>, String, String, Vec<String>)> {
    let t = tokens(line);
    let verb = t.iter().position(|w| w == "add" || w == "delete")?;
    let nft: Vec<String> = t[..verb].iter().filter(|w| *w != "--").cloned().collect();
    if nft.is_empty() {
        return None;
    }
    let object = t.get(verb + 1)?.clone();
    Some((nft, t[verb].clone(), object, t[verb + 2..].to_vec()))
}

/// The text after the first `n` words of `s`.
fn after_words(s: &str, n: usize) -> Option<&str> {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    Some(rest)
}

/// Port names by (name, protocol), from /etc/services.
fn services() -> &'static HashMap<(String, String), u16> {
    static MAP: OnceLock<HashMap<(String, String), u16>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::new();
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(spec)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = spec.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                map.entry((n.to_string(), proto.to_string()))
                    .or_insert(port);
            }
        }
        map
    })
}

/// Fail2ban's port list (`smtp,465,submission`, `1000:2000`) as nft writes it:
/// numbers, sorted, ranges with `-`.
fn resolve_ports(list: &str, proto: &str) -> Result<String, String> {
    let one = |p: &str| -> Result<u16, String> {
        p.parse::<u16>().or_else(|_| {
            services()
                .get(&(p.to_string(), proto.to_string()))
                .copied()
                .ok_or_else(|| {
                    format!("port {p:?} is not a number nor a {proto} service in /etc/services")
                })
        })
    };
    let mut ports: Vec<(u16, u16)> = Vec::new();
    for item in list.split(|c: char| c == ',' || c.is_whitespace()) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // Service names may hold a `-` too (`kerberos-adm`).
        let range = match (one(item), item.split_once(['-', ':'])) {
            (Ok(p), _) => (p, p),
            (Err(_), Some((a, b))) if one(a).is_ok() && one(b).is_ok() => (one(a)?, one(b)?),
            (Err(e), _) => return Err(e),
        };
        ports.push(range);
    }
    if ports.is_empty() {
        return Err(format!("no port in {list:?}"));
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}

const PORTS_OPEN: &str = "$(echo '";
const PORTS_CLOSE: &str = "' | sed s/:/-/g)";
const FOR_OPEN: &str = "for proto in $(echo '";
const FOR_CLOSE: &str = "' | sed 's/,/ /g'); do";

/// A rule statement from the action's `add rule` line, for one protocol of
/// its `for proto in ...` loop: `$proto` and the port list filled in.
fn rule_statement(stmt: &str, proto: Option<&str>) -> Result<String, Result<String, String>> {
    let mut s = stmt.to_string();
    while let Some(i) = s.find(PORTS_OPEN) {
        let Some(len) = s[i..].find(PORTS_CLOSE) else {
            return Err(Err(format!("unexpected port expression in {stmt:?}")));
        };
        let inner = &s[i + PORTS_OPEN.len()..i + len];
        let ports = resolve_ports(inner, proto.unwrap_or("tcp")).map_err(Ok)?;
        s.replace_range(i..i + len + PORTS_CLOSE.len(), &ports);
    }
    if let Some(p) = proto {
        s = s.replace("$proto", p);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '$' | '`' | '\'' | '"' | '<' | '>' | '|' | '&' => {
                return Err(Err(format!("shell syntax in the rule {stmt:?}")))
            }
            c => out.push(c),
        }
    }
    Ok(out.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl NftSpec {
    /// Reads the objects from the action's commands for both families.
    pub fn recognise(def: &ActionDef) -> Recognised {
        if !is_nftables_file(&def.file) {
            return Recognised::No("not an nftables action".into());
        }
        let mut commands = Commands::new(def);
        let mut specs = Vec::with_capacity(2);
        for fam in FAMILIES {
            match Self::for_family(&mut commands, fam) {
                Ok(s) => specs.push(s),
                Err(Ok(invalid)) => {
                    return Recognised::Invalid(ActionError::new(
                        Cause::Config,
                        format!("action {} ({}): {invalid}", def.name, def.file),
                    ))
                }
                Err(Err(why)) => return Recognised::No(why),
            }
        }
        let (a, b) = (specs.remove(0), specs.remove(0));
        let same = a.0 == b.0;
        if !same {
            return Recognised::No("table or chain differ between address families".into());
        }
        let mut spec = a.0;
        spec.sets = [a.1, b.1];
        if spec.sets[0].name == spec.sets[1].name {
            return Recognised::No("one set for both address families".into());
        }
        Recognised::Yes(Box::new(spec))
    }

    /// The shared objects and this family's set. Err(Ok) is a setting that
    /// cannot work, Err(Err) commands logban does not recognise.
    #[allow(clippy::type_complexity)]
    fn for_family(
        commands: &mut Commands,
        fam: Family,
    ) -> Result<(NftSpec, SetSpec), Result<String, String>> {
        let mut cmd = |key| commands.get(key, Some(fam)).map_err(Ok);
        let no = |s: String| Err(Err(s));
        let ban = cmd("actionban")?;
        let (nft, verb, object, args) = nft_command(&ban)
            .ok_or_else(|| Err(format!("actionban is not an nft command: {ban:?}")))?;
        let elem = |verb_want: &str, args: &[String], verb: &str, object: &str| {
            verb == verb_want
                && object == "element"
                && args.len() == 6
                && args[3] == "{"
                && args[4] == "<ip>"
                && args[5] == "}"
        };
        if !elem("add", &args, &verb, &object) {
            return no(format!(
                "actionban is not `nft add element ... {{ <ip> }}`: {ban:?}"
            ));
        }
        let (table_family, table, set) = (args[0].clone(), args[1].clone(), args[2].clone());
        let unban = cmd("actionunban")?;
        match nft_command(&unban) {
            Some((n, v, o, a)) if n == nft && elem("delete", &a, &v, &o) && a[..3] == args[..3] => {
            }
            _ => {
                return no(format!(
                    "actionunban is not `nft delete element` on the same set: {unban:?}"
                ))
            }
        }
        let start = cmd("actionstart")?;
        let mut chain: Option<(String, String)> = None;
        let mut addr_type = None;
        let mut rules = Vec::new();
        let mut protos: Option<Vec<String>> = None;
        for line in start.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(p) = line
                .strip_prefix(FOR_OPEN)
                .and_then(|l| l.strip_suffix(FOR_CLOSE))
            {
                protos = Some(
                    p.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                );
                continue;
            }
            if line == "done" {
                protos = None;
                continue;
            }
            let Some((n, verb, object, a)) = nft_command(line) else {
                return no(format!("actionstart line not recognised: {line:?}"));
            };
            if n != nft || verb != "add" || a.len() < 2 || a[0] != table_family || a[1] != table {
                return no(format!("actionstart line on another table: {line:?}"));
            }
            match object.as_str() {
                "table" if a.len() == 2 => {}
                "chain" if a.len() >= 5 && a[3] == "{" && a.last().is_some_and(|t| t == "}") => {
                    chain = Some((a[2].clone(), a[4..a.len() - 1].join(" ")));
                }
                "set" if a.len() >= 6 && a[2] == set && a[3] == "{" && a[4] == "type" => {
                    addr_type = Some(a[5].clone());
                }
                "rule" if a.len() >= 4 => {
                    let stmt = line
                        .find(" rule ")
                        .and_then(|i| after_words(&line[i + 6..], 3))
                        .ok_or_else(|| Err(format!("rule not recognised: {line:?}")))?;
                    if chain.as_ref().is_some_and(|(c, _)| *c != a[2]) {
                        return no(format!("rule in another chain: {line:?}"));
                    }
                    match &protos {
                        Some(ps) => {
                            for p in ps {
                                rules.push(rule_statement(stmt, Some(p))?);
                            }
                        }
                        None => rules.push(rule_statement(stmt, None)?),
                    }
                }
                _ => return no(format!("actionstart line not recognised: {line:?}")),
            }
        }
        let (Some((chain, chain_def)), Some(addr_type)) = (chain, addr_type) else {
            return no("actionstart creates no chain or no set".into());
        };
        let set_ref = format!("@{set}");
        if rules.is_empty()
            || !rules
                .iter()
                .all(|r| r.split_whitespace().any(|w| w == set_ref))
        {
            return no(format!("actionstart has no rule on {set_ref}"));
        }
        Ok((
            NftSpec {
                nft,
                table_family,
                table,
                chain,
                chain_def,
                sets: [SetSpec::default(), SetSpec::default()],
            },
            SetSpec {
                name: set,
                addr_type,
                rules,
            },
        ))
    }

    /// Whether an existing chain's (type, hook, priority) is the configured one.
    fn chain_matches(&self, (ty, hook, prio): &(String, String, i64)) -> bool {
        let words: Vec<&str> = self
            .chain_def
            .split([' ', ';'])
            .filter(|w| !w.is_empty())
            .collect();
        let after = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        after("type").map_or(true, |t| t == ty)
            && after("hook").map_or(true, |h| h == hook)
            && after("priority")
                .and_then(|p| p.parse::<i64>().ok())
                .map_or(true, |p| p == *prio)
    }

    fn set(&self, fam: Family) -> &SetSpec {
        &self.sets[fam_index(fam)]
    }

    fn prefix(&self) -> String {
        format!("{} {}", self.table_family, self.table)
    }

    fn add_table_and_chain(&self, tx: &mut Tx) {
        let p = self.prefix();
        tx.push(format!("add table {p}"));
        tx.push(format!(
            "add chain {p} {} {{ {} }}",
            self.chain, self.chain_def
        ));
    }

    /// The family's set (with `flags interval`) and its rules.
    fn add_set_and_rules(&self, tx: &mut Tx, fam: Family) {
        let (p, s) = (self.prefix(), self.set(fam));
        tx.push(format!(
            "add set {p} {} {{ type {}; flags interval; }}",
            s.name, s.addr_type
        ));
        for r in &s.rules {
            tx.push(format!("add rule {p} {} {r}", self.chain));
        }
    }
}

fn fam_index(fam: Family) -> usize {
    match fam {
        Family::Inet4 => 0,
        Family::Inet6 => 1,
    }
}

/// The statements of one transaction.
#[derive(Debug, Default)]
struct Tx {
    lines: Vec<String>,
}

impl Tx {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    fn elements(&mut self, verb: &str, prefix: &str, set: &str, items: &[String]) {
        for chunk in items.chunks(CHUNK) {
            self.lines.push(format!(
                "{verb} element {prefix} {set} {{ {} }}",
                chunk.join(", ")
            ));
        }
    }

    /// Deletes `del` and adds `add`, or, when `refill` says so, flushes the
    /// set and adds `all` (what it must hold).
    fn update(
        &mut self,
        prefix: &str,
        set: &str,
        del: &[String],
        add: &[String],
        refill: Option<Vec<String>>,
    ) {
        match refill {
            Some(all) => {
                self.lines.push(format!("flush set {prefix} {set}"));
                self.elements("add", prefix, set, &all);
            }
            None => {
                self.elements("delete", prefix, set, del);
                self.elements("add", prefix, set, add);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// A set element as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Prefix(Prefix),
    /// A range or anything else logban did not put there, deletable as written.
    Other(String),
}

#[derive(Debug, Default)]
struct SetNow {
    addr_type: String,
    interval: bool,
    elems: Vec<Elem>,
    /// Elements logban cannot name to delete them one by one.
    opaque: bool,
}

#[derive(Debug, Default)]
struct RuleNow {
    handle: u64,
    chain: String,
    sets: Vec<String>,
    /// As `nft list chain` shows it.
    text: String,
}

/// A rule's text with what nft adds or drops when it lists a rule smoothed
/// out: braces around a single value, the default reject type, counter values.
/// Equal results mean the same rule; a difference only costs a replacement.
fn canonical(rule: &str) -> String {
    let w: Vec<&str> = rule.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::with_capacity(w.len());
    let mut i = 0;
    while i < w.len() {
        match &w[i..] {
            ["{", x, "}", ..] if !x.ends_with(',') => {
                out.push(x);
                i += 3;
            }
            ["counter", "packets", _, "bytes", _, ..] => {
                out.push("counter");
                i += 5;
            }
            ["reject", "with", "icmp" | "icmpv6" | "icmpx", "port-unreachable", ..] => {
                out.push("reject");
                i += 4;
            }
            [x, ..] => {
                out.push(x);
                i += 1;
            }
            [] => break,
        }
    }
    out.join(" ")
}

/// The table as `nft -j list table` shows it.
#[derive(Debug, Default)]
struct TableNow {
    /// (type, hook, priority) of the chain, when it exists.
    chain: Option<(String, String, i64)>,
    other_chains: usize,
    sets: HashMap<String, SetNow>,
    rules: Vec<RuleNow>,
}

fn json_elem(v: &Json, fam: Family) -> Option<Elem> {
    match v {
        Json::String(s) => prefix::parse_target(s)
            .filter(|n| prefix::family_of(n) == fam)
            .map(|n| Elem::Prefix(Prefix::from_net(&n))),
        Json::Object(o) => {
            if let Some(p) = o.get("prefix") {
                let net = format!("{}/{}", p.get("addr")?.as_str()?, p.get("len")?.as_u64()?);
                prefix::parse_target(&net)
                    .filter(|n| prefix::family_of(n) == fam)
                    .map(|n| Elem::Prefix(Prefix::from_net(&n)))
            } else if let Some(Json::Array(r)) = o.get("range") {
                Some(Elem::Other(format!(
                    "{}-{}",
                    r.first()?.as_str()?,
                    r.get(1)?.as_str()?
                )))
            } else {
                json_elem(o.get("elem")?.get("val")?, fam)
            }
        }
        _ => None,
    }
}

/// Every `@set` a rule's expression refers to.
fn set_refs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => {
            if let Some(name) = s.strip_prefix('@') {
                out.push(name.to_string());
            }
        }
        Json::Array(a) => a.iter().for_each(|x| set_refs(x, out)),
        Json::Object(o) => o.values().for_each(|x| set_refs(x, out)),
        _ => {}
    }
}

/// The items of an `nft -j` listing.
fn json_items(text: &str) -> Result<Vec<Json>, String> {
    let mut doc: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match doc.get_mut("nftables").map(Json::take) {
        Some(Json::Array(items)) => Ok(items),
        _ => Err("no \"nftables\" list".into()),
    }
}

impl TableNow {
    /// The table from `nft -j -t list ruleset` (objects without set
    /// elements); None when the ruleset has no such table.
    fn parse(text: &str, spec: &NftSpec) -> Result<Option<TableNow>, String> {
        let ours = |o: &Json, key: &str| {
            o.get("family").and_then(Json::as_str) == Some(spec.table_family.as_str())
                && o.get(key).and_then(Json::as_str) == Some(spec.table.as_str())
        };
        let mut found = false;
        let mut t = TableNow::default();
        for item in json_items(text)? {
            if let Some(tb) = item.get("table") {
                found |= ours(tb, "name");
            } else if let Some(s) = item.get("set").filter(|s| ours(s, "table")) {
                let name = s
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                let set = SetNow {
                    addr_type: s
                        .get("type")
                        .map(|t| t.as_str().map_or(t.to_string(), String::from))
                        .unwrap_or_default(),
                    interval: s
                        .get("flags")
                        .and_then(Json::as_array)
                        .is_some_and(|f| f.iter().any(|x| x == "interval")),
                    ..SetNow::default()
                };
                t.sets.insert(name, set);
            } else if let Some(c) = item.get("chain").filter(|c| ours(c, "table")) {
                if c.get("name").and_then(Json::as_str) == Some(spec.chain.as_str()) {
                    let s = |k: &str| c.get(k).and_then(Json::as_str).unwrap_or("").to_string();
                    t.chain = Some((
                        s("type"),
                        s("hook"),
                        c.get("prio").and_then(Json::as_i64).unwrap_or(0),
                    ));
                } else {
                    t.other_chains += 1;
                }
            } else if let Some(r) = item.get("rule").filter(|r| ours(r, "table")) {
                let mut sets = Vec::new();
                set_refs(r.get("expr").unwrap_or(&Json::Null), &mut sets);
                t.rules.push(RuleNow {
                    handle: r.get("handle").and_then(Json::as_u64).unwrap_or(0),
                    chain: r
                        .get("chain")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                    sets,
                    text: String::new(),
                });
            }
        }
        Ok(found.then_some(t))
    }

    /// Fills in the elements of set `name` (of family `fam`) from
    /// `nft -j list set`.
    fn add_elements(&mut self, name: &str, fam: Family, text: &str) -> Result<(), String> {
        let Some(set) = self.sets.get_mut(name) else {
            return Ok(());
        };
        for item in json_items(text)? {
            let elems = item.get("set").and_then(|s| s.get("elem"));
            for e in elems.and_then(Json::as_array).into_iter().flatten() {
                match json_elem(e, fam) {
                    Some(x) => set.elems.push(x),
                    None => set.opaque = true,
                }
            }
        }
        Ok(())
    }

    /// The rules of our chain that use `set`, in chain order.
    fn rules_on(&self, chain: &str, set: &str) -> Vec<&RuleNow> {
        self.rules
            .iter()
            .filter(|r| r.chain == chain && r.sets.iter().any(|s| s == set))
            .collect()
    }

    /// Fills in the rules' text from `nft -a -t list ruleset` output (the
    /// rules of our table and chain).
    fn add_rule_texts(&mut self, listing: &str, spec: &NftSpec) {
        let table = format!("table {} {} ", spec.table_family, spec.table);
        let chain = format!("chain {} ", spec.chain);
        let (mut in_table, mut in_chain) = (false, false);
        let mut texts: HashMap<u64, &str> = HashMap::new();
        for l in listing.lines() {
            let l = l.trim();
            if l.starts_with("table ") {
                in_table = l.starts_with(&table);
                in_chain = false;
                continue;
            }
            if l.starts_with("chain ") || l.starts_with("set ") || l.starts_with("map ") {
                in_chain = in_table && l.starts_with(&chain);
                continue;
            }
            if !in_chain {
                continue;
            }
            if let Some((rule, handle)) = l.rsplit_once(" # handle ") {
                if let Ok(h) = handle.trim().parse() {
                    texts.insert(h, rule.trim());
                }
            }
        }
        for r in &mut self.rules {
            if let Some(t) = texts.get(&r.handle) {
                r.text = t.to_string();
            }
        }
    }
}

struct FamState {
    banned: PrefixSet,
    /// The set and its rules exist.
    started: bool,
}

impl FamState {
    /// The set and its rules must be there.
    fn wanted(&self) -> bool {
        self.started || !self.banned.is_empty()
    }
}

/// The nftables action of one jail.
pub struct Nft {
    spec: NftSpec,
    env: Env,
    timeout: Duration,
    fams: [FamState; 2],
    /// The kernel holds what `fams` says: false until the first
    /// reconciliation (the first operation reconciles) and after a failure.
    synced: bool,
    /// The last operation failed: bans are not enforced until a
    /// reconciliation succeeds.
    failed: bool,
}

/// Explains a failed `nft` run, with the fix.
fn classify(out: &Output) -> ActionError {
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.find("Error:").map(|i| l[i..].trim()))
        .unwrap_or_else(|| out.first_error_line());
    let lower = out.stderr.to_ascii_lowercase();
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        ActionError::new(
            Cause::NoPermission,
            format!(
                "nft: {line} -- logban needs the NET_ADMIN capability to change the firewall \
                 (docker run --cap-add=NET_ADMIN, or cap_add: [NET_ADMIN] in compose.yml)"
            ),
        )
    } else if lower.contains("not supported") {
        ActionError::new(
            Cause::KernelSupport,
            format!(
                "nft: {line} -- this kernel lacks the nftables support logban needs \
                 (nf_tables, sets with intervals); switch banaction to an iptables action \
                 (iptables-multiport or iptables-ipset)"
            ),
        )
    } else {
        let line = if line.is_empty() { "no message" } else { line };
        ActionError::new(Cause::Refused, format!("nft refused the change: {line}"))
    }
}

impl Nft {
    pub fn new(spec: NftSpec, timeout: Duration, env: &Env) -> Nft {
        Nft {
            spec,
            env: env.clone(),
            timeout,
            fams: FAMILIES.map(|f| FamState {
                banned: PrefixSet::new(f),
                started: false,
            }),
            synced: false,
            failed: false,
        }
    }

    pub fn healthy(&self) -> bool {
        !self.failed
    }

    async fn nft(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Output, ActionError> {
        let mut cmd = self.env.command(&self.spec.nft[0]);
        cmd.args(&self.spec.nft[1..]).args(args);
        sys::run(cmd, stdin, self.timeout).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ActionError::new(
                    Cause::MissingTool,
                    format!(
                        "`{}` is not installed or not in PATH -- install nftables, or switch \
                         banaction to an iptables action (iptables-multiport or iptables-ipset)",
                        self.spec.nft[0]
                    ),
                )
            } else {
                ActionError::new(Cause::Io, format!("cannot run {}: {e}", self.spec.nft[0]))
            }
        })
    }

    /// Runs the statements as one transaction (split only if the kernel finds
    /// the whole too large).
    async fn run_tx(&self, lines: &[String]) -> Outcome {
        let mut script = lines.join("\n");
        script.push('\n');
        let out = self.nft(&["-f", "-"], Some(script.into_bytes())).await?;
        if out.success() {
            return Ok(());
        }
        if out.stderr.contains("Message too long") && lines.len() > 1 {
            let (a, b) = lines.split_at(lines.len() / 2);
            Box::pin(self.run_tx(a)).await?;
            return Box::pin(self.run_tx(b)).await;
        }
        if out.timed_out {
            return Err(ActionError::new(
                Cause::Refused,
                format!("nft {}", out.describe(self.timeout)),
            ));
        }
        Err(classify(&out))
    }

    /// The table as it is, with the elements of our sets that must stay
    /// and the text of our chain's rules only when something must stay.
    /// Terse listings (`-t`) leave set elements out: nft 1.0.6 otherwise
    /// reads every set of the table for `list table` and `list chain`, and
    /// one jail's read (a stop, a start) would cost as much as the other
    /// jails' bans.
    async fn read(&self) -> Result<Option<TableNow>, ActionError> {
        let listed = |out: &Output| -> Result<(), ActionError> {
            if out.success() {
                Ok(())
            } else {
                Err(classify(out))
            }
        };
        let unreadable = |e: String| {
            ActionError::new(Cause::Refused, format!("cannot read the nft listing: {e}"))
        };
        let out = self.nft(&["-j", "-t", "list", "ruleset"], None).await?;
        listed(&out)?;
        let Some(mut t) = TableNow::parse(&out.stdout, &self.spec).map_err(unreadable)? else {
            return Ok(None);
        };
        let (tf, table) = (&self.spec.table_family, &self.spec.table);
        let mut keep_any = false;
        for fam in FAMILIES {
            let f = &self.fams[fam_index(fam)];
            if !f.wanted() {
                continue;
            }
            keep_any = true;
            let name = &self.spec.set(fam).name;
            if t.sets.contains_key(name) {
                let out = self
                    .nft(&["-j", "list", "set", tf, table, name], None)
                    .await?;
                listed(&out)?;
                t.add_elements(name, fam, &out.stdout).map_err(unreadable)?;
            }
        }
        if keep_any && t.chain.is_some() {
            let out = self.nft(&["-a", "-t", "list", "ruleset"], None).await?;
            listed(&out)?;
            t.add_rule_texts(&out.stdout, &self.spec);
        }
        Ok(Some(t))
    }

    /// Rebuilds the banned prefixes from `active`; non-addresses are reported.
    fn load(&mut self, active: &[Ticket]) -> Outcome {
        for f in &mut self.fams {
            f.banned.clear();
        }
        let mut changes = Changes::default();
        let mut bad = Ok(());
        for t in active {
            match t.target() {
                Some(net) => {
                    let fam = prefix::family_of(&net);
                    self.fams[fam_index(fam)]
                        .banned
                        .insert(Prefix::from_net(&net), &mut changes);
                }
                None => bad = bad.and(Err(not_an_address(t))),
            }
        }
        bad
    }

    /// Brings the firewall in line with `active` in one transaction.
    pub async fn reconcile(&mut self, active: &[Ticket]) -> Outcome {
        let bad = self.load(active);
        self.sync().await.and(bad)
    }

    pub async fn retry(&mut self) -> Outcome {
        self.sync().await
    }

    /// Reads the table and applies what differs from the banned prefixes:
    /// missing objects created, stale and missing elements fixed, the rules
    /// replaced in place (duplicates deleted), sets of families without bans
    /// removed.
    async fn sync(&mut self) -> Outcome {
        let _guard = LOCK.lock().await;
        let result = async {
            let now = self.read().await?;
            let tx = self.plan(now.as_ref());
            if !tx.is_empty() {
                self.run_tx(&tx.lines).await?;
            }
            Ok(())
        }
        .await;
        self.synced = result.is_ok();
        self.failed = result.is_err();
        if self.synced {
            for f in &mut self.fams {
                f.started = f.wanted();
            }
        }
        result
    }

    fn plan(&self, now: Option<&TableNow>) -> Tx {
        let spec = &self.spec;
        let p = spec.prefix();
        let mut tx = Tx::default();
        let wanted: Vec<bool> = self.fams.iter().map(FamState::wanted).collect();
        let any_wanted = wanted.iter().any(|w| *w);
        let empty = TableNow::default();
        let t = now.unwrap_or(&empty);
        if any_wanted && (now.is_none() || t.chain.is_none()) {
            spec.add_table_and_chain(&mut tx);
        }
        if let Some(have) = &t.chain {
            if !spec.chain_matches(have) {
                tracing::warn!(target: "fail2ban.actions",
                    "nft chain {} {} exists as {have:?}, not as configured ({}); left as it is",
                    p, spec.chain, spec.chain_def);
            }
        }
        let mut deleted_rules = 0;
        let mut deleted_sets = 0;
        for fam in FAMILIES {
            let (s, state) = (spec.set(fam), &self.fams[fam_index(fam)]);
            let rules_now = t.rules_on(&spec.chain, &s.name);
            let set_now = t.sets.get(&s.name);
            let delete_rules = |tx: &mut Tx| {
                for now in &rules_now {
                    tx.push(format!(
                        "delete rule {p} {} handle {}",
                        spec.chain, now.handle
                    ));
                }
            };
            if !wanted[fam_index(fam)] {
                if set_now.is_some() {
                    delete_rules(&mut tx);
                    tx.push(format!("delete set {p} {}", s.name));
                    deleted_rules += rules_now.len();
                    deleted_sets += 1;
                }
                continue;
            }
            let tops = state.banned.tops();
            let all = || tops.iter().map(|x| x.display(fam)).collect::<Vec<_>>();
            match set_now {
                Some(set) if set.interval && set.addr_type == s.addr_type => {
                    for (i, r) in s.rules.iter().enumerate() {
                        match rules_now.get(i) {
                            Some(now) if canonical(&now.text) == canonical(r) => {}
                            Some(now) => tx.push(format!(
                                "replace rule {p} {} handle {} {r}",
                                spec.chain, now.handle
                            )),
                            None => tx.push(format!("add rule {p} {} {r}", spec.chain)),
                        }
                    }
                    for now in rules_now.iter().skip(s.rules.len()) {
                        tx.push(format!(
                            "delete rule {p} {} handle {}",
                            spec.chain, now.handle
                        ));
                    }
                    let want: HashSet<Prefix> = tops.iter().copied().collect();
                    let mut have = HashSet::new();
                    let mut stale = Vec::new();
                    for e in &set.elems {
                        match e {
                            Elem::Prefix(x) if want.contains(x) => {
                                have.insert(*x);
                            }
                            Elem::Prefix(x) => stale.push(x.display(fam)),
                            Elem::Other(text) => stale.push(text.clone()),
                        }
                    }
                    let missing: Vec<String> = tops
                        .iter()
                        .filter(|x| !have.contains(x))
                        .map(|x| x.display(fam))
                        .collect();
                    // Elements logban cannot name are flushed too.
                    let refill = (set.opaque || stale.len() > REFILL_AFTER).then(all);
                    tx.update(&p, &s.name, &stale, &missing, refill);
                }
                other => {
                    // Missing, or made without `flags interval` (Fail2ban's stock
                    // set) or for another type: made again, in the same transaction.
                    if other.is_some() {
                        delete_rules(&mut tx);
                        tx.push(format!("delete set {p} {}", s.name));
                    }
                    spec.add_set_and_rules(&mut tx, fam);
                    tx.elements("add", &p, &s.name, &all());
                }
            }
        }
        if let Some(t) = now {
            if !any_wanted
                && t.sets.len() == deleted_sets
                && t.other_chains == 0
                && t.rules.len() == deleted_rules
            {
                tx.push(format!("delete table {p}"));
            }
        }
        tx
    }

    async fn change(&mut self, tickets: &[Ticket], ban: bool) -> Outcome {
        let mut changes = [Changes::default(), Changes::default()];
        let mut bad = Ok(());
        for t in tickets {
            let Some(net) = t.target() else {
                bad = bad.and(Err(not_an_address(t)));
                continue;
            };
            let i = fam_index(prefix::family_of(&net));
            let p = Prefix::from_net(&net);
            if ban {
                self.fams[i].banned.insert(p, &mut changes[i]);
            } else {
                self.fams[i].banned.remove(p, &mut changes[i]);
            }
        }
        if !self.synced {
            return self.sync().await.and(bad);
        }
        let prefix = self.spec.prefix();
        let mut tx = Tx::default();
        let mut starting = [false; 2];
        for (fam, changes) in FAMILIES.into_iter().zip(changes) {
            let i = fam_index(fam);
            let (del, add) = changes.diff(&self.fams[i].banned);
            let show = |v: Vec<Prefix>| v.into_iter().map(|x| x.display(fam)).collect::<Vec<_>>();
            let set = &self.spec.set(fam).name;
            if !self.fams[i].started {
                if add.is_empty() {
                    continue;
                }
                if !starting.iter().any(|s| *s) {
                    self.spec.add_table_and_chain(&mut tx);
                }
                self.spec.add_set_and_rules(&mut tx, fam);
                starting[i] = true;
                tx.elements("add", &prefix, set, &show(add));
            } else {
                let refill = (del.len() > REFILL_AFTER).then(|| show(self.fams[i].banned.tops()));
                tx.update(&prefix, set, &show(del), &show(add), refill);
            }
        }
        if tx.is_empty() {
            return bad;
        }
        let applied = {
            let _guard = LOCK.lock().await;
            self.run_tx(&tx.lines).await
        };
        match applied {
            Ok(()) => {
                for (f, s) in self.fams.iter_mut().zip(starting) {
                    f.started |= s;
                }
                bad
            }
            Err(e) => {
                // The table may have been changed behind logban's back: read it
                // and set it right, which reports the cause if that fails too.
                tracing::debug!(target: "fail2ban.actions", "nft transaction failed ({e}), reconciling");
                self.synced = false;
                self.sync().await.and(bad)
            }
        }
    }

    pub async fn ban(&mut self, tickets: &[Ticket]) -> Outcome {
        self.change(tickets, true).await
    }

    pub async fn unban(&mut self, tickets: &[Ticket]) -> Outcome {
        self.change(tickets, false).await
    }

    /// Unbans everything; the sets and rules stay.
    pub async fn flush(&mut self) -> Outcome {
        for f in &mut self.fams {
            f.banned.clear();
        }
        if !self.synced {
            return self.sync().await;
        }
        let p = self.spec.prefix();
        let mut tx = Tx::default();
        for fam in FAMILIES {
            if self.fams[fam_index(fam)].started {
                tx.push(format!("flush set {p} {}", self.spec.set(fam).name));
            }
        }
        if tx.is_empty() {
            return Ok(());
        }
        let applied = {
            let _guard = LOCK.lock().await;
            self.run_tx(&tx.lines).await
        };
        if applied.is_err() {
            self.synced = false;
            return self.sync().await;
        }
        Ok(())
    }

    /// Fail2ban's stop: the jail's rules and sets go, and the table when
    /// nothing else is left in it.
    pub async fn stop(&mut self) -> Outcome {
        for f in &mut self.fams {
            f.banned.clear();
            f.started = false;
        }
        self.sync().await
    }
}

/// How Fail2ban's nftables action names a jail's sets: `addr-set-<jail>`,
/// `addr6-set-<jail>`.
const SET_PREFIXES: [&str; 2] = ["addr-set-", "addr6-set-"];

/// The jail a set's name says it belongs to, for sets named the stock way.
fn set_owner(set: &str) -> Option<&str> {
    SET_PREFIXES
        .iter()
        .find_map(|p| set.strip_prefix(p))
        .filter(|n| !n.is_empty())
}

/// A set of a jail no longer configured, to be removed.
#[derive(Debug, PartialEq, Eq)]
struct Stale {
    set: String,
    rules: usize,
}

/// The sets of table `prefix` named after a jail not in `keep`, and the
/// transaction that deletes them with every rule of the table using them.
fn plan_stale(t: &TableNow, prefix: &str, keep: &HashSet<String>) -> (Vec<Stale>, Tx) {
    let mut stale: Vec<&str> = t
        .sets
        .keys()
        .map(String::as_str)
        .filter(|s| set_owner(s).is_some_and(|o| !keep.contains(o)))
        .collect();
    stale.sort_unstable();
    let mut tx = Tx::default();
    for r in &t.rules {
        if r.sets.iter().any(|s| stale.contains(&s.as_str())) {
            tx.push(format!(
                "delete rule {prefix} {} handle {}",
                r.chain, r.handle
            ));
        }
    }
    let stale = stale
        .into_iter()
        .map(|set| {
            tx.push(format!("delete set {prefix} {set}"));
            Stale {
                set: set.to_string(),
                rules: t
                    .rules
                    .iter()
                    .filter(|r| r.sets.iter().any(|s| s == set))
                    .count(),
            }
        })
        .collect();
    (stale, tx)
}

/// `1 rule`, `2 addresses`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Nft {
    /// Removes the sets of jails no longer configured (`keep` names the
    /// configured ones) from this action's table, with their rules, in one
    /// transaction: what an unclean stop leaves of a jail removed meanwhile.
    async fn sweep(&self, keep: &HashSet<String>) -> Outcome {
        let out = self.nft(&["-j", "-t", "list", "ruleset"], None).await?;
        if !out.success() {
            return Err(classify(&out));
        }
        let unreadable = |e: String| {
            ActionError::new(Cause::Refused, format!("cannot read the nft listing: {e}"))
        };
        let Some(t) = TableNow::parse(&out.stdout, &self.spec).map_err(unreadable)? else {
            return Ok(());
        };
        let p = self.spec.prefix();
        let (stale, tx) = plan_stale(&t, &p, keep);
        if stale.is_empty() {
            return Ok(());
        }
        let (tf, table) = (&self.spec.table_family, &self.spec.table);
        let mut addresses = Vec::with_capacity(stale.len());
        for s in &stale {
            let out = self
                .nft(&["-j", "list", "set", tf, table, &s.set], None)
                .await?;
            let n = json_items(&out.stdout)
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.get("set")?.get("elem")?.as_array().map(Vec::len))
                .sum::<usize>();
            addresses.push(n);
        }
        self.run_tx(&tx.lines).await?;
        for (s, n) in stale.iter().zip(addresses) {
            crate::notice!(target: "fail2ban.actions",
                "nft set {} in {p} belongs to no configured jail (left by an unclean stop): \
                 removed with {} and {}",
                s.set, count(s.rules, "rule", "rules"), count(n, "address", "addresses"));
        }
        Ok(())
    }
}

/// At server start, before the jails' actions: removes from the tables of
/// `natives` (one action per table) the sets named after no jail in `keep`.
/// Takes the transaction lock at once, so the jails' first reconciliations
/// queue behind it and find the table without those sets (removing the
/// table when nothing of theirs is left). A firewall logban cannot read or
/// change is reported by the actions themselves.
pub fn sweep_stale(
    natives: Vec<Nft>,
    keep: HashSet<String>,
) -> impl std::future::Future<Output = ()> {
    let held = LOCK.try_lock().ok();
    async move {
        let _guard = match held {
            Some(g) => g,
            None => LOCK.lock().await,
        };
        for nft in &natives {
            match nft.sweep(&keep).await {
                Ok(()) => {}
                // Reported by the actions too, with the fix.
                Err(e) if e.cause != Cause::Refused => tracing::debug!(target: "fail2ban.actions",
                    "nft {}: stale sets not removed: {e}", nft.spec.prefix()),
                Err(e) => tracing::warn!(target: "fail2ban.actions",
                    "nft {}: sets of jails no longer configured not removed: {e}",
                    nft.spec.prefix()),
            }
        }
    }
}

impl NftSpec {
    /// The jails this action's sets are named after (`<name>` of the
    /// action, normally its jail).
    pub fn set_owners(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().filter_map(|s| set_owner(&s.name))
    }

    /// Whether both actions work on the same table (through the same `nft`).
    pub fn same_table(&self, other: &NftSpec) -> bool {
        (&self.nft, &self.table_family, &self.table)
            == (&other.nft, &other.table_family, &other.table)
    }
}

fn not_an_address(t: &Ticket) -> ActionError {
    ActionError::new(Cause::Config, "nftables bans addresses and subnets only").on(&t.fid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_fix() {
        use std::os::unix::process::ExitStatusExt;
        let refused = |stderr: &str| {
            classify(&Output {
                status: Some(std::process::ExitStatus::from_raw(256)),
                timed_out: false,
                stdout: String::new(),
                stderr: stderr.into(),
            })
        };
        let e =
            refused("Error: Could not process rule: Operation not permitted\nadd table inet t\n");
        assert_eq!(e.cause, Cause::NoPermission);
        assert!(e.message.contains("--cap-add=NET_ADMIN"), "{e}");
        // A kernel without nf_tables, or without interval sets.
        for msg in [
            "netlink: Error: cache initialization failed: Protocol not supported\n",
            "Error: Could not process rule: Operation not supported\nadd set inet t s { flags interval; }\n",
        ] {
            let e = refused(msg);
            assert_eq!(e.cause, Cause::KernelSupport, "{msg}");
            assert!(e.message.contains("banaction to an iptables action"), "{e}");
        }
        let e = refused("/dev/stdin:1:1-3: Error: syntax error, unexpected junk\n");
        assert_eq!(e.cause, Cause::Refused);
        assert!(e.message.contains("syntax error"), "{e}");
    }

    #[test]
    fn ports_resolve_through_services() {
        assert_eq!(
            resolve_ports("smtp,465,submission", "tcp").unwrap(),
            "25, 465, 587"
        );
        assert_eq!(
            resolve_ports(
                "smtp,pop3,pop3s,imap,imaps,submission,submissions,sieve",
                "tcp"
            )
            .unwrap(),
            "25, 110, 143, 465, 587, 993, 995, 4190"
        );
        assert_eq!(
            resolve_ports("1000:2000,22", "tcp").unwrap(),
            "22, 1000-2000"
        );
        assert!(resolve_ports("no-such-service", "tcp")
            .unwrap_err()
            .contains("no-such-service"));
    }

    #[test]
    fn rule_from_stock_lines() {
        let stmt =
            "$proto dport \\{ $(echo 'smtp,465' | sed s/:/-/g) \\} ip saddr @addr-set-x drop";
        assert_eq!(
            rule_statement(stmt, Some("tcp")).unwrap(),
            "tcp dport { 25, 465 } ip saddr @addr-set-x drop"
        );
        assert_eq!(
            rule_statement(
                "meta l4proto \\{ tcp \\} ip6 saddr @addr6-set-x reject",
                None
            )
            .unwrap(),
            "meta l4proto { tcp } ip6 saddr @addr6-set-x reject"
        );
        assert!(rule_statement("ip saddr @s $(rm -rf /)", None).is_err());
    }

    #[test]
    fn listed_rules_compare_with_configured_ones() {
        let same = [
            (
                "meta l4proto { tcp } ip saddr @s reject",
                "meta l4proto tcp ip saddr @s reject with icmp port-unreachable",
            ),
            (
                "tcp dport { 143 } ip6 saddr @s6 reject",
                "tcp dport 143 ip6 saddr @s6 reject with icmpv6 port-unreachable",
            ),
            (
                "tcp dport { 25, 465 } ip saddr @s counter drop",
                "tcp dport { 25, 465 } ip saddr @s counter packets 3 bytes 180 drop",
            ),
        ];
        for (ours, listed) in same {
            assert_eq!(canonical(ours), canonical(listed));
        }
        assert_ne!(
            canonical("ip saddr @s drop"),
            canonical("ip saddr @s reject with icmp port-unreachable")
        );
        assert_ne!(
            canonical("tcp dport { 25, 465 } ip saddr @s drop"),
            canonical("tcp dport { 25 } ip saddr @s drop")
        );
    }

    #[test]
    fn tokens_split_braces() {
        assert_eq!(
            tokens("nft -- add chain inet t c \\{ type filter hook input priority -1 \\; \\}"),
            [
                "nft", "--", "add", "chain", "inet", "t", "c", "{", "type", "filter", "hook",
                "input", "priority", "-1", ";", "}"
            ]
        );
    }

    fn spec() -> NftSpec {
        NftSpec {
            nft: vec!["nft".into()],
            table_family: "inet".into(),
            table: "f2b-table".into(),
            chain: "f2b-chain".into(),
            chain_def: "type filter hook input priority -1 ;".into(),
            sets: [
                SetSpec {
                    name: "addr-set-x".into(),
                    addr_type: "ipv4_addr".into(),
                    rules: vec!["ip saddr @addr-set-x reject".into()],
                },
                SetSpec {
                    name: "addr6-set-x".into(),
                    addr_type: "ipv6_addr".into(),
                    rules: vec!["ip6 saddr @addr6-set-x reject".into()],
                },
            ],
        }
    }

    fn table(v4_elems: &[String], rules: &[(u64, &str, &str)]) -> TableNow {
        let mut t = TableNow {
            chain: Some(("filter".into(), "input".into(), -1)),
            ..TableNow::default()
        };
        for (name, ty) in [("addr-set-x", "ipv4_addr"), ("addr6-set-x", "ipv6_addr")] {
            let elems = if ty == "ipv4_addr" {
                v4_elems
                    .iter()
                    .map(|e| Elem::Prefix(Prefix::from_net(&prefix::parse_target(e).unwrap())))
                    .collect()
            } else {
                Vec::new()
            };
            let set = SetNow {
                addr_type: ty.into(),
                interval: true,
                elems,
                opaque: false,
            };
            t.sets.insert(name.into(), set);
        }
        for (handle, set, text) in rules {
            t.rules.push(RuleNow {
                handle: *handle,
                chain: "f2b-chain".into(),
                sets: vec![set.to_string()],
                text: text.to_string(),
            });
        }
        t
    }

    fn nft_with(bans: &[&str]) -> Nft {
        let mut n = Nft::new(spec(), Duration::from_secs(1), &Env::default());
        let active: Vec<Ticket> = bans.iter().map(|b| Ticket::new(*b)).collect();
        n.load(&active).unwrap();
        n
    }

    #[test]
    fn plan_touches_only_what_differs() {
        let n = nft_with(&["192.0.2.1", "192.0.2.2"]);
        let now = table(
            &["192.0.2.1".into(), "203.0.113.7".into()],
            &[
                (
                    4,
                    "addr-set-x",
                    "ip saddr @addr-set-x reject with icmp port-unreachable",
                ),
                (5, "addr-set-x", "ip saddr @addr-set-x drop"),
                (
                    6,
                    "addr6-set-x",
                    "ip6 saddr @addr6-set-x reject with icmpv6 port-unreachable",
                ),
            ],
        );
        assert_eq!(
            n.plan(Some(&now)).lines,
            [
                "delete rule inet f2b-table f2b-chain handle 5",
                "delete element inet f2b-table addr-set-x { 203.0.113.7 }",
                "add element inet f2b-table addr-set-x { 192.0.2.2 }",
                "delete rule inet f2b-table f2b-chain handle 6",
                "delete set inet f2b-table addr6-set-x",
            ]
        );
        // In line: nothing to do.
        let now = table(
            &["192.0.2.1".into(), "192.0.2.2".into()],
            &[(
                4,
                "addr-set-x",
                "ip saddr @addr-set-x reject with icmp port-unreachable",
            )],
        );
        let mut now = now;
        now.sets.remove("addr6-set-x");
        assert!(n.plan(Some(&now)).is_empty());
    }

    #[test]
    fn plan_refills_instead_of_many_deletions_and_builds_from_nothing() {
        let n = nft_with(&["192.0.2.1"]);
        let stale: Vec<String> = (1..=20).map(|i| format!("198.51.100.{i}")).collect();
        let now = table(&stale, &[(4, "addr-set-x", "ip saddr @addr-set-x drop")]);
        let lines = n.plan(Some(&now)).lines;
        assert_eq!(
            lines[0],
            "replace rule inet f2b-table f2b-chain handle 4 ip saddr @addr-set-x reject"
        );
        assert_eq!(lines[1], "flush set inet f2b-table addr-set-x");
        assert_eq!(
            lines[2],
            "add element inet f2b-table addr-set-x { 192.0.2.1 }"
        );
        assert_eq!(
            n.plan(None).lines,
            [
                "add table inet f2b-table",
                "add chain inet f2b-table f2b-chain { type filter hook input priority -1 ; }",
                "add set inet f2b-table addr-set-x { type ipv4_addr; flags interval; }",
                "add rule inet f2b-table f2b-chain ip saddr @addr-set-x reject",
                "add element inet f2b-table addr-set-x { 192.0.2.1 }",
            ]
        );
        // No bans left anywhere: the table goes.
        let empty = nft_with(&[]);
        let now = table(&[], &[(4, "addr-set-x", "ip saddr @addr-set-x reject")]);
        assert_eq!(
            empty.plan(Some(&now)).lines,
            [
                "delete rule inet f2b-table f2b-chain handle 4",
                "delete set inet f2b-table addr-set-x",
                "delete set inet f2b-table addr6-set-x",
                "delete table inet f2b-table",
            ]
        );
    }

    #[test]
    fn listing_parses() {
        let spec = spec();
        let ruleset = r#"{"nftables": [{"metainfo": {}},
          {"table": {"family": "ip", "name": "other"}},
          {"set": {"family": "ip", "table": "other", "name": "addr-set-x", "type": "ipv4_addr"}},
          {"rule": {"family": "ip", "table": "other", "chain": "f2b-chain", "handle": 9, "expr": [{"match": {"right": "@addr-set-x"}}]}},
          {"table": {"family": "inet", "name": "f2b-table"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr-set-x", "type": "ipv4_addr", "flags": ["interval"]}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr6-set-x", "type": "ipv6_addr"}},
          {"chain": {"family": "inet", "table": "f2b-table", "name": "f2b-chain", "type": "filter", "hook": "input", "prio": -1}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 4, "expr": [{"match": {"right": "@addr-set-x"}}, {"drop": null}]}}]}"#;
        let mut t = TableNow::parse(ruleset, &spec).unwrap().unwrap();
        assert!(t.sets["addr-set-x"].interval);
        assert!(!t.sets["addr6-set-x"].interval);
        assert_eq!(t.chain, Some(("filter".into(), "input".into(), -1)));
        assert_eq!(t.rules.len(), 1);
        assert_eq!(t.rules_on("f2b-chain", "addr-set-x")[0].handle, 4);
        assert!(t.rules_on("f2b-chain", "addr6-set-x").is_empty());

        let set = r#"{"nftables": [{"metainfo": {}},
          {"set": {"name": "addr-set-x", "type": "ipv4_addr", "flags": ["interval"],
                   "elem": ["192.0.2.5", {"prefix": {"addr": "198.51.100.0", "len": 24}},
                            {"range": ["203.0.113.1", "203.0.113.9"]}, {"elem": {"val": "192.0.2.9", "timeout": 5}}]}}]}"#;
        t.add_elements("addr-set-x", Family::Inet4, set).unwrap();
        let s = &t.sets["addr-set-x"];
        assert!(!s.opaque);
        assert_eq!(s.elems.len(), 4);
        assert_eq!(s.elems[2], Elem::Other("203.0.113.1-203.0.113.9".into()));

        let text = "table ip other { # handle 2\n\tchain f2b-chain { # handle 1\n\
                    \t\tip saddr @addr-set-x accept # handle 4\n\t}\n}\n\
                    table inet f2b-table { # handle 1\n\tset addr-set-x { # handle 2\n\
                    \t\ttype ipv4_addr\n\t}\n\tchain f2b-chain { # handle 3\n\
                    \t\ttype filter hook input priority filter - 1; policy accept;\n\
                    \t\tip saddr @addr-set-x drop # handle 4\n\t}\n}\n";
        t.add_rule_texts(text, &spec);
        assert_eq!(t.rules[0].text, "ip saddr @addr-set-x drop");

        let none =
            r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "ip", "name": "f2b-table"}}]}"#;
        assert!(TableNow::parse(none, &spec).unwrap().is_none());
    }

    /// Sets named after a jail not kept go, with every rule of the table
    /// using them (in any chain); kept jails' sets, sets named otherwise and
    /// other tables are left alone.
    #[test]
    fn stale_sets_of_removed_jails_are_planned_away() {
        let spec = spec();
        let ruleset = r#"{"nftables": [{"metainfo": {}},
          {"table": {"family": "ip", "name": "other"}},
          {"set": {"family": "ip", "table": "other", "name": "addr-set-gone", "type": "ipv4_addr"}},
          {"rule": {"family": "ip", "table": "other", "chain": "f2b-chain", "handle": 9, "expr": [{"match": {"right": "@addr-set-gone"}}]}},
          {"table": {"family": "inet", "name": "f2b-table"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr-set-x", "type": "ipv4_addr"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr-set-gone", "type": "ipv4_addr"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr6-set-gone", "type": "ipv6_addr"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr6-set-old", "type": "ipv6_addr"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "mine", "type": "ipv4_addr"}},
          {"set": {"family": "inet", "table": "f2b-table", "name": "addr-set-", "type": "ipv4_addr"}},
          {"chain": {"family": "inet", "table": "f2b-table", "name": "f2b-chain", "type": "filter", "hook": "input", "prio": -1}},
          {"chain": {"family": "inet", "table": "f2b-table", "name": "side"}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 4, "expr": [{"match": {"right": "@addr-set-x"}}]}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 5, "expr": [{"match": {"right": "@addr-set-gone"}}]}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 6, "expr": [{"match": {"right": "@addr6-set-gone"}}]}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "side", "handle": 7, "expr": [{"match": {"right": "@addr-set-gone"}}]}},
          {"rule": {"family": "inet", "table": "f2b-table", "chain": "f2b-chain", "handle": 8, "expr": [{"match": {"right": "@mine"}}]}}]}"#;
        let t = TableNow::parse(ruleset, &spec).unwrap().unwrap();
        let keep: HashSet<String> = ["x".to_string(), "old".into()].into();
        let (stale, tx) = plan_stale(&t, &spec.prefix(), &keep);
        let stale_of = |set: &str, rules| Stale {
            set: set.into(),
            rules,
        };
        assert_eq!(
            stale,
            [stale_of("addr-set-gone", 2), stale_of("addr6-set-gone", 1)]
        );
        assert_eq!(
            tx.lines,
            [
                "delete rule inet f2b-table f2b-chain handle 5",
                "delete rule inet f2b-table f2b-chain handle 6",
                "delete rule inet f2b-table side handle 7",
                "delete set inet f2b-table addr-set-gone",
                "delete set inet f2b-table addr6-set-gone",
            ]
        );
        // Every jail kept: nothing to do.
        let keep: HashSet<String> = ["x", "old", "gone"].map(String::from).into();
        let (stale, tx) = plan_stale(&t, &spec.prefix(), &keep);
        assert!(stale.is_empty() && tx.is_empty());
    }
}
