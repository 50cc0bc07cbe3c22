//! Actions carried out by their own shell commands, as Fail2ban's
//! CommandAction runs them: `actionstart` at jail start or on the first ban of
//! each family, `actionban`/`actionunban` per ticket (batched when they are
//! plain `ipset`/`iptables` commands), on failure `actioncheck` with
//! `actionrepair` (or stop and start) and one more try, `actionflush` or
//! unban each, then `actionstop`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::sys::{self, Env};
use super::tags::{self, Commands, Family, Script, SingleQuoted, Value};
use super::{batch, truthy, ActionError, Cause, Outcome, Ticket};
use crate::config::ActionDef;

const STARTED: u8 = 1;
const HAS_ITEMS: u8 = 2;

/// The action's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Start,
    Stop,
    Check,
    Ban,
    Unban,
    Flush,
    Reload,
    Repair,
}

impl Op {
    fn key(self) -> &'static str {
        match self {
            Op::Start => "actionstart",
            Op::Stop => "actionstop",
            Op::Check => "actioncheck",
            Op::Ban => "actionban",
            Op::Unban => "actionunban",
            Op::Flush => "actionflush",
            Op::Reload => "actionreload",
            Op::Repair => "actionrepair",
        }
    }
}

/// The family a command runs for; None for actions without family values
/// (and failure ids that are not addresses).
type Fam = Option<Family>;

/// What an invariant check concluded.
enum Check {
    Sane,
    /// Broken, and repairing is not wanted here.
    NotRepaired(ActionError),
    Broken(ActionError),
}

pub struct CommandAction {
    jail: String,
    name: String,
    /// The action's options as configured, for the flags and for telling
    /// which commands it has.
    def: ActionDef,
    commands: Commands,
    timeout: Duration,
    on_demand: bool,
    families: Vec<Fam>,
    /// Per family: STARTED, HAS_ITEMS.
    started: BTreeMap<Fam, u8>,
    /// Commands that ran, per operation and family: the same command is not
    /// run again for the other family.
    executed: HashMap<(Op, Fam), String>,
    env: Env,
    /// Bans whose command failed, by failure id: tried again later.
    unenforced: HashMap<String, Ticket>,
    start_failed: bool,
    repair_on_unban: bool,
    /// Added to a failing `actionstart`: the likely fix.
    start_hint: Option<String>,
    /// The firewall program the ban commands run, if any (see [`firewall_of`]).
    firewall: Option<&'static str>,
}

/// Programs that ban what they are given as an address: they read a failure
/// id that is not one their own way (iptables and ipset take `010.0.0.1` for
/// 8.0.0.1 and look a name up in the DNS), so an id from a log line that is
/// not an address must never reach them.
const FIREWALLS: [&str; 20] = [
    "iptables",
    "ip6tables",
    "iptables-legacy",
    "ip6tables-legacy",
    "iptables-nft",
    "ip6tables-nft",
    "ipset",
    "nft",
    "firewall-cmd",
    "ufw",
    "shorewall",
    "shorewall6",
    "pfctl",
    "ipfw",
    "ipf",
    "npfctl",
    "apf",
    "afctl",
    "ip",
    "route",
];

/// Files that firewalls read addresses from.
const FIREWALL_FILES: [&str; 2] = ["hosts.deny", "xt_recent"];

/// Words that may stand before the program of a simple command.
const PREFIXES: [&str; 11] = [
    "sudo", "exec", "command", "env", "nohup", "if", "then", "else", "do", "while", "!",
];

/// The firewall a script runs: a program of [`FIREWALLS`] at the start of
/// one of its simple commands, or a file of [`FIREWALL_FILES`].
fn firewall_in(script: &str) -> Option<&'static str> {
    if let Some(file) = FIREWALL_FILES.iter().find(|f| script.contains(*f)) {
        return Some(file);
    }
    script
        .split(['\n', ';', '&', '|', '(', ')', '`', '{', '}'])
        .filter_map(|cmd| {
            cmd.split_whitespace()
                .find(|w| !w.contains('=') && !PREFIXES.contains(w))
        })
        .find_map(|w| {
            let name = w.rsplit('/').next().unwrap_or(w);
            FIREWALLS.iter().copied().find(|f| *f == name)
        })
}

/// The firewall the action's ban and unban commands run, in any family.
fn firewall_of(commands: &mut Commands, families: &[Fam]) -> Option<&'static str> {
    let mut found = None;
    for op in [Op::Ban, Op::Unban] {
        for &fam in families.iter().chain([&None]) {
            if let Ok(cmd) = commands.get(op.key(), fam) {
                found = found.or_else(|| firewall_in(&cmd));
            }
        }
    }
    found
}

/// The fix for a known misconfiguration that makes `actionstart` fail: the
/// iptables actions default to `type = oneport`, whose `--dport <port>`
/// iptables refuses for a port list (`--dport smtp,465,submission`).
fn start_hint(def: &ActionDef) -> Option<String> {
    let start = def.get("actionstart")?;
    let list = start.split("--dport ").skip(1).any(|rest| {
        rest.split_whitespace()
            .next()
            .is_some_and(|port| port.contains(','))
    });
    list.then(|| {
        format!(
            "--dport takes a single port (the action's `type = oneport`); for a port \
             list use banaction = {}[type=multiport]",
            def.file
        )
    })
}

impl CommandAction {
    pub fn new(jail: &str, def: &ActionDef, env: &Env) -> CommandAction {
        let conditional = def.has_family_sections();
        let families = if conditional {
            vec![Some(Family::Inet4), Some(Family::Inet6)]
        } else {
            vec![None]
        };
        let mut commands = Commands::new(def);
        let firewall = firewall_of(&mut commands, &families);
        CommandAction {
            jail: jail.to_string(),
            name: def.name.clone(),
            on_demand: def.get("actionstart_on_demand").map_or(conditional, truthy),
            families,
            repair_on_unban: def.get("actionrepair_on_unban").is_some_and(truthy),
            def: def.clone(),
            commands,
            timeout: super::timeout_of(jail, def),
            started: BTreeMap::new(),
            executed: HashMap::new(),
            env: env.clone(),
            unenforced: HashMap::new(),
            start_failed: false,
            start_hint: start_hint(def),
            firewall,
        }
    }

    /// The tickets the commands may see: an action that runs a firewall
    /// refuses ids that are not addresses (the error names the first).
    fn addresses_only<'a>(&self, tickets: &'a [Ticket]) -> (Cow<'a, [Ticket]>, Outcome) {
        let Some(tool) = self.firewall else {
            return (Cow::Borrowed(tickets), Ok(()));
        };
        let Some(bad) = tickets.iter().find(|t| t.target().is_none()) else {
            return (Cow::Borrowed(tickets), Ok(()));
        };
        let refused = ActionError::new(
            Cause::Config,
            format!("{tool} bans addresses and subnets only"),
        )
        .on(&bad.fid);
        let kept = tickets
            .iter()
            .filter(|t| t.target().is_some())
            .cloned()
            .collect();
        (Cow::Owned(kept), Err(refused))
    }

    pub fn healthy(&self) -> bool {
        !self.start_failed && self.unenforced.is_empty()
    }

    fn has(&self, op: Op) -> bool {
        self.def.get(op.key()).is_some_and(|v| !v.trim().is_empty())
    }

    /// The operation's command for `fam`, with the action's options in it.
    fn command(&mut self, op: Op, fam: Fam) -> Result<String, ActionError> {
        self.commands
            .get(op.key(), fam)
            .map_err(|e| ActionError::new(Cause::Config, format!("{}: {e}", op.key())))
    }

    /// Puts the ban's values (or, without a ticket, the family and time) in.
    async fn render(
        &self,
        cmd: &str,
        ticket: Option<&Ticket>,
        fam: Fam,
    ) -> Result<Script, ActionError> {
        let host = match (ticket, cmd.contains("<ip-host>")) {
            (Some(t), true) => match t.target() {
                Some(net) => {
                    let addr = net.addr();
                    tokio::task::spawn_blocking(move || sys::reverse_name(addr))
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            },
            _ => None,
        };
        let empty;
        let t = match ticket {
            Some(t) => t,
            None => {
                empty = Ticket {
                    time: crate::util::now(),
                    ..Ticket::default()
                };
                &empty
            }
        };
        tags::substitute_ticket(cmd, SingleQuoted::Text, &mut |tag| match (tag, ticket) {
            ("family", None) => Some(Value::Text(fam.map_or("", Family::as_str).to_string())),
            _ => t.tag_value(tag, host.as_deref()),
        })
        .map_err(|e| ActionError::new(Cause::Config, e.to_string()))
    }

    async fn exec(&self, script: &Script, op: Op) -> Outcome {
        if script.text.trim().is_empty() {
            return Ok(());
        }
        let mut cmd = self.env.command("/bin/sh");
        cmd.arg("-c")
            .arg(&script.text)
            .envs(script.env.iter().map(|(k, v)| (k, v)));
        tracing::trace!(target: "fail2ban.action", "[{}] {} exec: {}", self.jail, self.name, script.text);
        let out = sys::run(cmd, None, self.timeout).await.map_err(|e| {
            let cause = if e.kind() == std::io::ErrorKind::NotFound {
                Cause::MissingTool
            } else {
                Cause::Io
            };
            ActionError::new(cause, format!("{} cannot run /bin/sh: {e}", op.key()))
        })?;
        if out.success() {
            return Ok(());
        }
        for line in out.stderr.lines() {
            tracing::debug!(target: "fail2ban.action", "[{}] {} -- stderr: {line:?}", self.jail, self.name);
        }
        let mut msg = format!("{} {}", op.key(), out.describe(self.timeout));
        if !out.first_error_line().is_empty() {
            msg = format!("{msg}: {}", out.first_error_line());
        }
        if let (Op::Start | Op::Check, Some(hint)) = (op, &self.start_hint) {
            msg = format!("{msg} -- {hint}");
        }
        Err(ActionError::new(Cause::CommandFailed, msg))
    }

    /// Runs a command that has no ticket (check, repair).
    async fn run_plain(&self, cmd: &str, fam: Fam, op: Op) -> Outcome {
        let script = self.render(cmd, None, fam).await?;
        self.exec(&script, op).await
    }

    /// Forgets that `op` ran for `fam` (and for families that ran the same command).
    fn forget(&mut self, op: Op, fam: Fam) {
        if let Some(cmd) = self.executed.remove(&(op, fam)) {
            self.executed.retain(|(o, _), c| !(*o == op && *c == cmd));
        }
    }

    /// Runs a ticket-less operation for each family, once per distinct command.
    async fn run_op(&mut self, op: Op, fams: &[Fam]) -> Vec<(Fam, Outcome)> {
        let mut results = Vec::with_capacity(fams.len());
        for &fam in fams {
            let outcome = async {
                let cmd = self.command(op, fam)?;
                let done_elsewhere = self
                    .executed
                    .iter()
                    .any(|((o, f), c)| *o == op && *f != fam && *c == cmd);
                if !cmd.is_empty() && !done_elsewhere {
                    self.run_plain(&cmd, fam, op).await?;
                }
                Ok(cmd)
            }
            .await;
            match outcome {
                Ok(cmd) => {
                    if !cmd.is_empty() {
                        self.executed.insert((op, fam), cmd);
                    }
                    results.push((fam, Ok(())));
                }
                Err(e) => {
                    self.forget(op, fam);
                    results.push((fam, Err(e)));
                }
            }
        }
        results
    }

    async fn start_family(&mut self, fam: Fam, force: bool) -> Outcome {
        if !force && (self.on_demand || self.started.get(&fam).is_some_and(|v| *v != 0)) {
            return Ok(());
        }
        let mut first = Ok(());
        for (fam, outcome) in self.run_op(Op::Start, &[fam]).await {
            match outcome {
                Ok(()) => {
                    self.forget(Op::Stop, fam);
                    self.started.insert(fam, STARTED);
                }
                Err(e) => first = first.and(Err(e)),
            }
        }
        first
    }

    async fn stop_family(&mut self, fam: Fam) -> Outcome {
        match self.started.get_mut(&fam) {
            None => return Ok(()),
            Some(v) => *v = 0,
        }
        let mut first = Ok(());
        for (fam, outcome) in self.run_op(Op::Stop, &[fam]).await {
            match outcome {
                Ok(()) => self.forget(Op::Start, fam),
                Err(e) => first = first.and(Err(e)),
            }
        }
        first
    }

    /// Jail start: `actionstart` for every family (unless on demand), then
    /// the bans still active.
    pub async fn start(&mut self, active: &[Ticket]) -> Outcome {
        let started = self.start_all().await;
        started.and(self.restore(active).await)
    }

    /// `actionstart` for every family, unless started on demand.
    async fn start_all(&mut self) -> Outcome {
        let mut first = Ok(());
        if !self.on_demand {
            let fams = self.families.clone();
            self.start_failed = false;
            for (fam, outcome) in self.run_op(Op::Start, &fams).await {
                match outcome {
                    Ok(()) => {
                        self.forget(Op::Stop, fam);
                        self.started.insert(fam, STARTED);
                    }
                    Err(e) => {
                        self.start_failed = true;
                        first = first.and(Err(e));
                    }
                }
            }
        }
        first
    }

    /// The bans still active at start. A chain of per-address iptables
    /// rules or an ipset that is there already (left by a crash) is brought
    /// in line with them in one iptables-restore or ipset restore, with the
    /// family started as a ban would start it; everything else is banned as
    /// usual.
    async fn restore(&mut self, active: &[Ticket]) -> Outcome {
        let mut rest: Vec<Ticket> = Vec::new();
        for fam in [Family::Inet4, Family::Inet6] {
            let group: Vec<&Ticket> = active.iter().filter(|t| t.family() == Some(fam)).collect();
            if self.reconcile_existing(Some(fam), &group).await.is_none() {
                rest.extend(group.into_iter().cloned());
            }
        }
        rest.extend(active.iter().filter(|t| t.family().is_none()).cloned());
        self.ban(&rest).await
    }

    /// [`restore`](Self::restore) for one family; None when the ban command
    /// is not an insert into a chain or an addition to an ipset, when that
    /// does not exist, or when this fails (the bans then go as usual, which
    /// reports what fails).
    async fn reconcile_existing(&mut self, fam: Fam, group: &[&Ticket]) -> Option<()> {
        let cmd = self.command(Op::Ban, fam).ok()?;
        // The ban command of a placeholder gives the chain when there is no ban.
        let probe = Ticket::new(match fam {
            Some(Family::Inet6) => "::",
            _ => "0.0.0.0",
        });
        let mut texts = Vec::with_capacity(group.len().max(1));
        for t in group
            .iter()
            .copied()
            .chain(group.is_empty().then_some(&probe))
        {
            match self.render(&cmd, Some(t), fam).await {
                Ok(s) if s.env.is_empty() => texts.push(s.text),
                _ => return None,
            }
        }
        let mut existing = batch::Existing::parse(&texts)?;
        if group.is_empty() {
            existing = existing.without_addresses();
        }
        let (program, args) = existing.listing();
        let mut c = self.env.command(&program);
        c.args(&args);
        let listing = sys::run(c, None, self.timeout).await.ok()?;
        if !listing.success() {
            return None;
        }
        if self.on_demand && self.started.get(&fam).map_or(true, |v| *v == 0) {
            self.start_family(fam, true).await.ok()?;
        }
        if let Some(b) = existing.reconcile(&listing.stdout) {
            let mut c = self.env.command(&b.program);
            c.args(&b.args);
            let out = sys::run(c, Some(b.input.into_bytes()), self.timeout).await;
            out.ok().filter(sys::Output::success)?;
        }
        tracing::debug!(target: "fail2ban.action",
            "[{}] {}: {} brought in line with {} bans", self.jail, self.name, existing.name(), group.len());
        let state = self.started.entry(fam).or_insert(0);
        *state |= STARTED;
        if !group.is_empty() {
            *state |= HAS_ITEMS;
        }
        for t in group {
            self.unenforced.remove(&t.fid);
        }
        Some(())
    }

    /// Checks the family's invariant; when broken, repairs it (`actionrepair`,
    /// else stop and start) if `repair` allows.
    async fn invariant_check(&mut self, fam: Fam, repair: bool, force_start: bool) -> Check {
        if !force_start && fam.is_some() && !self.started.contains_key(&fam) {
            return Check::Sane;
        }
        let check = match self.command(Op::Check, fam) {
            Ok(c) => c,
            Err(e) => return Check::Broken(e),
        };
        let err = match self.run_plain(&check, fam, Op::Check).await {
            Ok(()) => return Check::Sane,
            Err(e) => e,
        };
        if !repair {
            return Check::NotRepaired(err);
        }
        tracing::error!(target: "fail2ban.action",
            "[{}] {}: Invariant check failed. Trying to restore a sane environment", self.jail, self.name);
        let repair_cmd = match self.command(Op::Repair, fam) {
            Ok(c) => c,
            Err(e) => return Check::Broken(e),
        };
        if !repair_cmd.is_empty() {
            if let Err(e) = self.run_plain(&repair_cmd, fam, Op::Repair).await {
                self.started.insert(fam, 0);
                return Check::Broken(e);
            }
            self.started.insert(fam, STARTED);
        } else {
            // An action without family values started once for all families:
            // restart it so (Fail2ban would skip the start as already done).
            let start_fam = if self.families == [None] { None } else { fam };
            // A failing stop must not keep the start from repairing.
            let _ = self.stop_family(start_fam).await;
            let _ = self
                .start_family(start_fam, force_start || !self.on_demand)
                .await;
        }
        if self.started.get(&fam).is_some_and(|v| *v != 0) {
            if let Err(e) = self.run_plain(&check, fam, Op::Check).await {
                return Check::Broken(e);
            }
        }
        Check::Sane
    }

    /// The operation's command for each ticket of `group`, rendered once for
    /// the batch and for the commands one by one.
    async fn render_group(
        &mut self,
        op: Op,
        group: &[&Ticket],
        fam: Fam,
    ) -> Vec<Result<Script, ActionError>> {
        let cmd = match self.command(op, fam) {
            Ok(c) => c,
            Err(e) => return vec![Err(e); group.len()],
        };
        let mut scripts = Vec::with_capacity(group.len());
        for t in group {
            let script = self.render(&cmd, Some(t), fam).await;
            scripts.push(script.map_err(|e| e.on(&t.fid)));
        }
        scripts
    }

    /// Runs the ticket's script; when it fails, checks (and repairs) the
    /// invariant and tries once more.
    async fn process(
        &mut self,
        op: Op,
        t: &Ticket,
        fam: Fam,
        script: Result<Script, ActionError>,
    ) -> Outcome {
        let script = script?;
        let has_check = self.has(Op::Check);
        let mut last = None;
        for attempt in 0..2 {
            if attempt > 0 && has_check {
                let repair = op != Op::Unban || self.repair_on_unban;
                match self.invariant_check(fam, repair, op != Op::Unban).await {
                    Check::Sane => {}
                    Check::NotRepaired(e) | Check::Broken(e) => {
                        let e = ActionError::new(
                            e.cause,
                            format!("invariant check failed: {}", e.message),
                        );
                        return Err(e.on(&t.fid));
                    }
                }
            }
            match self.exec(&script, op).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e.on(&t.fid)),
            }
        }
        Err(last.expect("two attempts were made"))
    }

    /// Tries the group's scripts as one process; true when that worked.
    async fn try_batch(&self, op: Op, scripts: &[Result<Script, ActionError>]) -> bool {
        if scripts.len() < 2 {
            return false;
        }
        let mut texts = Vec::with_capacity(scripts.len());
        for s in scripts {
            match s {
                Ok(s) if s.env.is_empty() => texts.push(s.text.as_str()),
                _ => return false,
            }
        }
        let Some(b) = batch::plan(&texts) else {
            return false;
        };
        let mut c = self.env.command(&b.program);
        c.args(&b.args);
        match sys::run(c, Some(b.input.into_bytes()), self.timeout).await {
            Ok(out) if out.success() => {
                tracing::debug!(target: "fail2ban.action",
                    "[{}] {}: {} x {} in one {}", self.jail, self.name, scripts.len(), op.key(), b.program);
                true
            }
            Ok(out) => {
                tracing::debug!(target: "fail2ban.action",
                    "[{}] {}: batched {} failed ({}), running commands one by one",
                    self.jail, self.name, op.key(), out.first_error_line());
                false
            }
            Err(_) => false,
        }
    }

    /// The families whose state (STARTED, HAS_ITEMS) passes `state`.
    fn families_where(&self, state: impl Fn(u8) -> bool) -> Vec<Fam> {
        self.started
            .iter()
            .filter(|(_, v)| state(**v))
            .map(|(f, _)| *f)
            .collect()
    }

    /// Runs of tickets of one family, in order (commands run in ticket order).
    fn by_family(tickets: &[Ticket]) -> Vec<(Fam, Vec<&Ticket>)> {
        let mut groups: Vec<(Fam, Vec<&Ticket>)> = Vec::new();
        for t in tickets {
            let fam = t.family();
            match groups.last_mut() {
                Some((f, g)) if *f == fam => g.push(t),
                _ => groups.push((fam, vec![t])),
            }
        }
        groups
    }

    pub async fn ban(&mut self, tickets: &[Ticket]) -> Outcome {
        let (tickets, mut first) = self.addresses_only(tickets);
        for (fam, group) in Self::by_family(&tickets) {
            if self.on_demand && self.started.get(&fam).map_or(true, |v| *v == 0) {
                if let Err(e) = self.start_family(fam, true).await {
                    for t in &group {
                        self.unenforced.insert(t.fid.clone(), (*t).clone());
                    }
                    first = first.and(Err(e));
                    continue;
                }
            }
            let scripts = self.render_group(Op::Ban, &group, fam).await;
            if self.try_batch(Op::Ban, &scripts).await {
                *self.started.entry(fam).or_insert(0) |= STARTED | HAS_ITEMS;
                for t in &group {
                    self.unenforced.remove(&t.fid);
                }
                continue;
            }
            for (t, script) in group.into_iter().zip(scripts) {
                match self.process(Op::Ban, t, fam, script).await {
                    Ok(()) => {
                        *self.started.entry(fam).or_insert(0) |= STARTED | HAS_ITEMS;
                        self.unenforced.remove(&t.fid);
                    }
                    Err(e) => {
                        self.unenforced.insert(t.fid.clone(), t.clone());
                        first = first.and(Err(e));
                    }
                }
            }
        }
        first
    }

    pub async fn unban(&mut self, tickets: &[Ticket]) -> Outcome {
        for t in tickets {
            self.unenforced.remove(&t.fid);
        }
        let (tickets, mut first) = self.addresses_only(tickets);
        for (fam, group) in Self::by_family(&tickets) {
            if self.started.get(&fam).map_or(true, |v| v & HAS_ITEMS == 0) {
                continue;
            }
            let scripts = self.render_group(Op::Unban, &group, fam).await;
            if self.try_batch(Op::Unban, &scripts).await {
                continue;
            }
            for (t, script) in group.into_iter().zip(scripts) {
                if let Err(e) = self.process(Op::Unban, t, fam, script).await {
                    first = first.and(Err(e));
                }
            }
        }
        first
    }

    /// Checks every started family; a family that stays broken counts as not started.
    async fn consistency_check(&mut self, repair: bool) {
        if !self.has(Op::Check) {
            return;
        }
        let fams = self.families_where(|v| v != 0);
        for fam in fams {
            if let Check::Broken(_) = self.invariant_check(fam, repair, true).await {
                self.started.insert(fam, 0);
                self.forget(Op::Start, fam);
            }
        }
    }

    /// Unbans everything: `actionflush` for the families holding bans, else
    /// `actionunban` for each of `active`.
    async fn flush_inner(&mut self, active: &[Ticket], stopping: bool) -> Outcome {
        self.unenforced.clear();
        if !self.has(Op::Flush) {
            return self.unban(active).await;
        }
        let fams = self.families_where(|v| v & (STARTED | HAS_ITEMS) == STARTED | HAS_ITEMS);
        let mut first = Ok(());
        for (fam, outcome) in self.run_op(Op::Flush, &fams).await {
            match outcome {
                Ok(()) => {
                    if let Some(v) = self.started.get_mut(&fam) {
                        *v &= !HAS_ITEMS;
                    }
                }
                Err(e) => first = first.and(Err(e)),
            }
        }
        if first.is_err() {
            tracing::info!(target: "fail2ban.actions",
                "[{}] {}: No flush occurred, do consistency check", self.jail, self.name);
            self.consistency_check(!stopping || self.repair_on_unban)
                .await;
        }
        first
    }

    pub async fn flush(&mut self, active: &[Ticket]) -> Outcome {
        self.flush_inner(active, false).await
    }

    /// Flush (or unban each), then `actionstop` for every started family.
    pub async fn stop(&mut self, active: &[Ticket]) -> Outcome {
        let flushed = self.flush_inner(active, true).await;
        let fams = self.families_where(|v| v != 0);
        self.started.clear();
        let mut first = flushed;
        for (fam, outcome) in self.run_op(Op::Stop, &fams).await {
            match outcome {
                Ok(()) => self.forget(Op::Start, fam),
                Err(e) => first = first.and(Err(e)),
            }
        }
        first
    }

    /// `actionreload` for every started family.
    pub async fn reload(&mut self) -> Outcome {
        let fams = self.families_where(|v| v != 0);
        let mut first = Ok(());
        for (_, outcome) in self.run_op(Op::Reload, &fams).await {
            first = first.and(outcome);
        }
        first
    }

    /// Tries again what failed: the start, then the bans not carried out.
    pub async fn retry(&mut self) -> Outcome {
        let mut first = Ok(());
        if self.start_failed {
            first = self.start_all().await;
        }
        let pending: Vec<Ticket> = self.unenforced.values().cloned().collect();
        first.and(self.ban(&pending).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn firewalls_are_told_from_other_commands() {
        for (script, tool) in [
            (
                "iptables -w -I f2b-sshd 1 -s <ip> -j REJECT",
                Some("iptables"),
            ),
            ("ipset -exist add f2b-sshd <ip> timeout 600", Some("ipset")),
            ("/sbin/npfctl table t add <ip>", Some("npfctl")),
            ("ip route add unreachable <ip>", Some("ip")),
            (
                "echo all >| /x/<ip>.auto\n  iptables -I c 1 -s <ip> -j DROP",
                Some("iptables"),
            ),
            (
                "x=$(nft list set t s) && sudo ufw deny from <ip>",
                Some("nft"),
            ),
            (
                "printf %b \"ALL: <ip>\\n\" >> /etc/hosts.deny",
                Some("hosts.deny"),
            ),
            ("echo +<ip> > /proc/net/xt_recent/f2b", Some("xt_recent")),
            (
                "printf %b \"banned <ip> by iptables\\n\" | mail -s x root",
                None,
            ),
            ("echo '<fid> 1;' >> /etc/nginx/map; nginx -s reload", None),
        ] {
            assert_eq!(firewall_in(script), tool, "{script}");
        }
    }

    #[tokio::test]
    async fn ids_that_are_not_addresses_never_reach_a_firewall() {
        // A stand-in for iptables that notes how it was called.
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let fake = dir.path().join("iptables");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$*\" >> {}\n", ran.display()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let def = ActionDef {
            name: "fw".into(),
            file: "fw".into(),
            options: [
                ("actionban", "iptables -I f2b 1 -s <ip> -j DROP"),
                ("actionunban", "iptables -D f2b -s <ip> -j DROP"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..ActionDef::default()
        };
        let env = Env {
            path: Some(dir.path().into()),
        };
        let mut a = CommandAction::new("t", &def, &env);
        // iptables reads `010.0.0.1` as 8.0.0.1 and looks `localhost` up.
        let ids = |ids: &[&str]| ids.iter().map(|i| Ticket::new(*i)).collect::<Vec<_>>();
        let e = a
            .ban(&ids(&["010.0.0.1", "192.0.2.1", "localhost"]))
            .await
            .unwrap_err();
        assert_eq!(e.cause, Cause::Config);
        assert_eq!(e.subject.as_deref(), Some("010.0.0.1"));
        assert!(e.message.contains("iptables"), "{e}");
        assert!(a.healthy(), "a refused id is not tried again");
        assert!(a.unban(&ids(&["localhost", "192.0.2.1"])).await.is_err());
        assert_eq!(
            std::fs::read_to_string(&ran).unwrap(),
            "-I f2b 1 -s 192.0.2.1 -j DROP\n-D f2b -s 192.0.2.1 -j DROP\n"
        );
    }
}
