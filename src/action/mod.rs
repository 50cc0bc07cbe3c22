//! Carries bans out: command actions from action.d (tags, parameters, family
//! sections, shell with attacker text passed only as data) and native firewall
//! backends (batched nftables, hosts.deny), with batching of `ipset` and
//! `iptables` commands. At start every firewall is brought in line with the
//! bans still active (what a crash left is neither doubled nor kept stale):
//! nftables in one transaction, an iptables chain or ipset of per-address
//! entries in one restore.
//!
//! Each action of a jail runs in its own task that owns the action's state and
//! takes requests from a channel: requests to one action run in order, a slow
//! action (mail, whois) never delays the firewall, a caller that gives up
//! waiting never leaves an operation half done, and bans queued while a
//! transaction runs go out together in the next one. [`JailActions`] is the
//! jail's handle on those tasks.

mod batch;
mod command;
mod hostsdeny;
mod nft;
mod prefix;
mod sys;
pub mod tags;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::config::ActionDef;

pub use prefix::parse_target;
pub use tags::Family;

/// Settings shared by the actions of all jails.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PATH for the programs actions run (`nft`, `sh`, ...); None: logban's own.
    pub path: Option<std::ffi::OsString>,
    /// How often, at most, an action whose bans are not enforced tries
    /// again: the first retry comes after a second (or this, if shorter),
    /// each further one waits twice as long, up to this.
    pub retry_every: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            path: None,
            retry_every: Duration::from_secs(30),
        }
    }
}

/// An action's `timeout` when it sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// At most this many tickets are merged from queued requests into one batch.
const MAX_MERGED: usize = 200_000;

/// The first wait before an action whose bans are not enforced tries again:
/// a firewall that comes back soon (a tool installed, a capability granted,
/// a table restored) is caught up with soon; later retries back off.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Merged information about an address over several bans (from the database).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    pub matches: Vec<String>,
    pub failures: u32,
}

/// What an action knows about one ban: Fail2ban's ticket as actions see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ticket {
    /// The failure id: an address, a subnet (`192.0.2.0/24`) or another id.
    pub fid: String,
    pub failures: u32,
    /// Time of the ticket (seconds since the epoch).
    pub time: f64,
    /// Ban duration in seconds, -1 for ever.
    pub bantime: i64,
    pub bancount: u32,
    /// The ban comes back from the database (start, restart).
    pub restored: bool,
    pub matches: Vec<String>,
    /// The filter's named captures by lower-case name (`user`, `fport`, ...).
    pub data: BTreeMap<String, String>,
    /// This address over all jails (`<ipmatches>`, `<ipfailures>`); None: this ticket's own.
    pub merged_all: Option<Merged>,
    /// This address in this jail (`<ipjailmatches>`, `<ipjailfailures>`).
    pub merged_jail: Option<Merged>,
}

impl Ticket {
    pub fn new(fid: impl Into<String>) -> Ticket {
        Ticket {
            fid: fid.into(),
            ..Ticket::default()
        }
    }

    /// The banned address or subnet, None when the failure id is not one.
    pub fn target(&self) -> Option<IpNet> {
        prefix::parse_target(&self.fid)
    }

    pub fn family(&self) -> Option<Family> {
        self.target().as_ref().map(prefix::family_of)
    }

    /// The value of a ban tag (`ip`, `matches`, `F-USER`, ...) for commands.
    /// Only values logban formats itself are [`tags::Value::Text`].
    fn tag_value(&self, tag: &str, host: Option<&str>) -> Option<tags::Value> {
        use tags::Value::{Data, Text};
        let target = self.target();
        let shown = target.map(|n| prefix::Prefix::from_net(&n).display(prefix::family_of(&n)));
        let joined = |m: &[String]| m.join("\n");
        Some(match tag {
            "ip" | "fid" => match shown {
                Some(s) => Text(s),
                None => Data(self.fid.clone()),
            },
            "family" => Text(self.family().map_or("", Family::as_str).to_string()),
            "failures" => Text(self.failures.to_string()),
            "time" => Text(crate::util::py_float(self.time)),
            "bantime" => Text(self.bantime.to_string()),
            "bancount" => Text(self.bancount.to_string()),
            "restored" => Text(u8::from(self.restored).to_string()),
            "matches" => Data(joined(&self.matches)),
            "ipmatches" => Data(joined(
                self.merged_all
                    .as_ref()
                    .map_or(&self.matches, |m| &m.matches),
            )),
            "ipjailmatches" => Data(joined(
                self.merged_jail
                    .as_ref()
                    .map_or(&self.matches, |m| &m.matches),
            )),
            "ipfailures" => Text(
                self.merged_all
                    .as_ref()
                    .map_or(self.failures, |m| m.failures)
                    .to_string(),
            ),
            "ipjailfailures" => Text(
                self.merged_jail
                    .as_ref()
                    .map_or(self.failures, |m| m.failures)
                    .to_string(),
            ),
            "ip-rev" => Text(target.map(|n| reverse_pointer(&n)).unwrap_or_default()),
            "ip-host" => Data(host.unwrap_or("").to_string()),
            _ => Data(self.data.get(&tags::capture_key(tag)?)?.clone()),
        })
    }
}

/// `1.2.0.192.` for 192.0.2.1: Fail2ban's `<ip-rev>` (a PTR name without its suffix).
fn reverse_pointer(net: &IpNet) -> String {
    match net.addr() {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(a) => {
            let mut s = String::with_capacity(64);
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s
        }
    }
}

/// Why an action could not do its work; the kind says what fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A program the action needs (`nft`, `sh`, ...) is not installed or not in PATH.
    MissingTool,
    /// The kernel refused for lack of privilege (NET_ADMIN).
    NoPermission,
    /// The kernel lacks the nftables support the action needs.
    KernelSupport,
    /// The firewall tool refused the change.
    Refused,
    /// A command of the action failed (exit status, timeout).
    CommandFailed,
    /// The action's configuration cannot be carried out.
    Config,
    /// A file could not be read or written.
    Io,
}

/// An action's failure, with the fix when one is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", subject.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
pub struct ActionError {
    pub cause: Cause,
    pub message: String,
    /// What it failed on (an address, a command), left out when deciding
    /// whether the same failure was already logged.
    pub subject: Option<String>,
}

impl ActionError {
    pub fn new(cause: Cause, message: impl Into<String>) -> ActionError {
        ActionError {
            cause,
            message: message.into(),
            subject: None,
        }
    }

    pub fn on(mut self, subject: impl Into<String>) -> ActionError {
        self.subject = Some(subject.into());
        self
    }
}

/// Failures of some of a jail's actions, by action name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionsError(pub Vec<(String, ActionError)>);

impl fmt::Display for ActionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ActionsError {}

/// How an action carries bans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Fail2ban's nftables action, applied by logban in batched transactions.
    Nftables,
    /// Fail2ban's hostsdeny action, applied by logban with one write per batch.
    HostsDeny,
    /// The action's own shell commands.
    Command,
}

/// The state of one action, for `status <jail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStatus {
    pub name: String,
    pub kind: BackendKind,
    /// False while some bans are recorded but not carried out.
    pub enforced: bool,
    /// The last failure (kept after recovery, for diagnosis).
    pub last_error: Option<ActionError>,
}

/// What `stop` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// As Fail2ban stops: unban everything, then `actionstop` (sets, rules and
    /// the table go away).
    Full,
    /// For a restart or reload: native firewall state (nftables sets,
    /// hosts.deny lines) stays and the next `start` reconciles it, so nothing is
    /// unbanned in between. Command actions still stop as in Fail2ban.
    KeepNative,
}

/// The work of one action, whatever carries it out.
enum Backend {
    Nft(nft::Nft),
    HostsDeny(hostsdeny::HostsDeny),
    Command(command::CommandAction),
    /// An action that cannot work (a configuration it cannot carry out).
    Broken(ActionError),
}

type Outcome = Result<(), ActionError>;

impl Backend {
    fn build(jail: &str, def: &ActionDef, env: &sys::Env) -> (Backend, BackendKind) {
        match nft::NftSpec::recognise(def) {
            nft::Recognised::Yes(spec) => {
                let timeout = timeout_of(jail, def);
                return (
                    Backend::Nft(nft::Nft::new(*spec, timeout, env)),
                    BackendKind::Nftables,
                );
            }
            nft::Recognised::Invalid(e) => return (Backend::Broken(e), BackendKind::Nftables),
            nft::Recognised::No(why) => {
                if nft::is_nftables_file(&def.file) {
                    tracing::info!(target: "fail2ban.actions",
                        "[{jail}] action {}: runs its own commands ({why})", def.name);
                }
            }
        }
        if let Some(h) = hostsdeny::HostsDeny::recognise(def) {
            return (Backend::HostsDeny(h), BackendKind::HostsDeny);
        }
        (
            Backend::Command(command::CommandAction::new(jail, def, env)),
            BackendKind::Command,
        )
    }

    fn healthy(&self) -> bool {
        match self {
            Backend::Nft(b) => b.healthy(),
            Backend::HostsDeny(b) => b.healthy(),
            Backend::Command(b) => b.healthy(),
            Backend::Broken(_) => false,
        }
    }

    async fn run(&mut self, op: &Op) -> Outcome {
        match (self, op) {
            (Backend::Broken(e), _) => Err(e.clone()),
            (Backend::Nft(b), Op::Start(t) | Op::Reconcile(t)) => b.reconcile(t).await,
            (Backend::Nft(b), Op::Ban(t)) => b.ban(t).await,
            (Backend::Nft(b), Op::Unban(t)) => b.unban(t).await,
            (Backend::Nft(b), Op::Flush(_)) => b.flush().await,
            (Backend::Nft(b), Op::Stop(_, StopMode::Full)) => b.stop().await,
            (Backend::Nft(_), Op::Stop(_, StopMode::KeepNative)) => Ok(()),
            (Backend::Nft(b), Op::Retry) => b.retry().await,
            (Backend::HostsDeny(b), Op::Start(t) | Op::Reconcile(t) | Op::Ban(t)) => b.ban(t),
            (Backend::HostsDeny(b), Op::Unban(t) | Op::Flush(t) | Op::Stop(t, StopMode::Full)) => {
                b.unban(t)
            }
            (Backend::HostsDeny(_), Op::Stop(_, StopMode::KeepNative)) => Ok(()),
            (Backend::HostsDeny(b), Op::Retry) => b.retry(),
            (Backend::Command(b), Op::Start(t)) => b.start(t).await,
            (Backend::Command(b), Op::Ban(t)) => b.ban(t).await,
            (Backend::Command(b), Op::Unban(t)) => b.unban(t).await,
            (Backend::Command(b), Op::Reconcile(_)) => b.reload().await,
            (Backend::Command(b), Op::Flush(t)) => b.flush(t).await,
            (Backend::Command(b), Op::Stop(t, _)) => b.stop(t).await,
            (Backend::Command(b), Op::Retry) => b.retry().await,
        }
    }
}

/// A request to an action's task.
enum Op {
    Start(Vec<Ticket>),
    Ban(Vec<Ticket>),
    Unban(Vec<Ticket>),
    Reconcile(Vec<Ticket>),
    Flush(Vec<Ticket>),
    Stop(Vec<Ticket>, StopMode),
    /// Internal: try again to enforce what failed.
    Retry,
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Outcome>,
}

/// Status and the failures already logged, shared by an action's task and its handle.
struct Shared {
    jail: String,
    status: Mutex<ActionStatus>,
    logged: Mutex<HashSet<(Cause, String)>>,
}

impl Shared {
    /// Records an outcome: a failure is logged once per cause until the
    /// action works again, with the fix in the message.
    fn record(&self, outcome: &Outcome, healthy: bool) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.enforced = healthy;
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) if healthy => logged.clear(),
            Ok(()) => {}
            Err(e) => {
                if logged.insert((e.cause, e.message.clone())) {
                    tracing::error!(target: "fail2ban.actions",
                        "[{}] action {}: {e}{}", self.jail, status.name,
                        if healthy { "" } else { " -- bans are recorded but NOT enforced" });
                } else {
                    tracing::debug!(target: "fail2ban.actions", "[{}] action {}: {e}", self.jail, status.name);
                }
                status.last_error = Some(e.clone());
            }
        }
    }
}

struct Worker {
    tx: mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    norestored: bool,
}

/// The actions of one jail. Dropping the handle ends the actions' tasks once
/// their queued work is done, leaving the firewall as it is.
pub struct JailActions {
    jail: String,
    workers: Vec<Worker>,
}

impl JailActions {
    /// Builds the jail's actions and starts their tasks (inside a tokio runtime).
    /// Nothing runs until [`start`](Self::start).
    pub fn new(jail: &str, defs: &[ActionDef], settings: &Settings) -> JailActions {
        let workers = defs
            .iter()
            .map(|def| {
                let norestored = def.get("norestored").is_some_and(truthy);
                let env = sys::Env {
                    path: settings.path.clone(),
                };
                let (backend, kind) = Backend::build(jail, def, &env);
                let shared = Arc::new(Shared {
                    jail: jail.to_string(),
                    status: Mutex::new(ActionStatus {
                        name: def.name.clone(),
                        kind,
                        enforced: !matches!(backend, Backend::Broken(_)),
                        last_error: match &backend {
                            Backend::Broken(e) => Some(e.clone()),
                            _ => None,
                        },
                    }),
                    logged: Mutex::new(HashSet::new()),
                });
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(work(backend, rx, shared.clone(), settings.retry_every));
                Worker {
                    tx,
                    shared,
                    norestored,
                }
            })
            .collect();
        JailActions {
            jail: jail.to_string(),
            workers,
        }
    }

    pub fn jail(&self) -> &str {
        &self.jail
    }

    /// Starts the actions with the bans still active (from the database):
    /// native firewalls are reconciled with them in one transaction, command
    /// actions run `actionstart` (unless started on demand) and ban each
    /// (`restored` tickets skip `norestored` actions), except that an
    /// iptables chain or ipset of per-address entries that exists already is
    /// reconciled in one restore. Call it first: a firewall's first operation
    /// reconciles it with the bans it was given, so entries of an earlier run
    /// that are not in `active` are removed.
    pub async fn start(&self, active: Vec<Ticket>) -> Result<(), ActionsError> {
        self.send(active, Op::Start).await
    }

    /// Bans addresses or subnets (all actions, in one batch each).
    pub async fn ban(&self, tickets: Vec<Ticket>) -> Result<(), ActionsError> {
        self.send(tickets, Op::Ban).await
    }

    pub async fn unban(&self, tickets: Vec<Ticket>) -> Result<(), ActionsError> {
        self.send(tickets, Op::Unban).await
    }

    /// Brings native firewalls in line with `active` (stale entries removed,
    /// missing ones added, rules repaired); command actions run `actionreload`.
    pub async fn reconcile(&self, active: Vec<Ticket>) -> Result<(), ActionsError> {
        self.send(active, Op::Reconcile).await
    }

    /// Unbans everything (`actionflush`, or `actionunban` for each of `active`).
    pub async fn flush(&self, active: Vec<Ticket>) -> Result<(), ActionsError> {
        self.send(active, Op::Flush).await
    }

    /// Stops the actions; `active` are the bans still in force (unbanned one by
    /// one by actions without `actionflush`).
    pub async fn stop(self, active: Vec<Ticket>, mode: StopMode) -> Result<(), ActionsError> {
        self.send(active, |t| Op::Stop(t, mode)).await
    }

    pub fn status(&self) -> Vec<ActionStatus> {
        self.workers
            .iter()
            .map(|w| {
                w.shared
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
            .collect()
    }

    /// Whether every action carries out every ban it was given.
    pub fn enforced(&self) -> bool {
        self.status().iter().all(|s| s.enforced)
    }

    async fn send(
        &self,
        tickets: Vec<Ticket>,
        op: impl Fn(Vec<Ticket>) -> Op,
    ) -> Result<(), ActionsError> {
        let mut replies = Vec::with_capacity(self.workers.len());
        let last = self.workers.len().saturating_sub(1);
        let mut tickets = Some(tickets);
        for (i, w) in self.workers.iter().enumerate() {
            let mine = if i == last {
                tickets.take().unwrap_or_default()
            } else {
                tickets.clone().unwrap_or_default()
            };
            let mine = if w.norestored && mine.iter().any(|t| t.restored) {
                mine.into_iter().filter(|t| !t.restored).collect()
            } else {
                mine
            };
            let (reply, rx) = oneshot::channel();
            let name = w
                .shared
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .name
                .clone();
            if w.tx
                .send(Request {
                    op: op(mine),
                    reply,
                })
                .is_err()
            {
                replies.push((name, None));
            } else {
                replies.push((name, Some(rx)));
            }
        }
        let mut errors = Vec::new();
        for (name, rx) in replies {
            let outcome = match rx {
                Some(rx) => rx.await.unwrap_or_else(|_| Err(stopped())),
                None => Err(stopped()),
            };
            if let Err(e) = outcome {
                errors.push((name, e));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ActionsError(errors))
        }
    }
}

/// At server start, before the jails' actions start: removes from each
/// table of the native nftables actions among `actions` the sets named after
/// a jail not in `jails` (`addr-set-<jail>`, `addr6-set-<jail>`), with the
/// rules using them, in one transaction per table. They are what an unclean
/// stop (kill -9, power loss) leaves of a jail removed from the configuration
/// meanwhile. `jails`: every jail of the configuration, started or not.
/// None when no action is native nftables (nothing is touched then).
pub fn sweep_stale_sets<'a>(
    jails: &[&str],
    actions: impl IntoIterator<Item = &'a ActionDef>,
    settings: &Settings,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut keep: HashSet<String> = jails.iter().map(|j| j.to_string()).collect();
    let mut specs: Vec<nft::NftSpec> = Vec::new();
    for def in actions {
        // An action's sets may be named after its `name` rather than its jail.
        keep.extend(def.get("name").map(String::from));
        if let nft::Recognised::Yes(spec) = nft::NftSpec::recognise(def) {
            keep.extend(spec.set_owners().map(String::from));
            if !specs.iter().any(|s| s.same_table(&spec)) {
                specs.push(*spec);
            }
        }
    }
    if specs.is_empty() {
        return None;
    }
    let env = sys::Env {
        path: settings.path.clone(),
    };
    let natives = specs
        .into_iter()
        .map(|s| nft::Nft::new(s, DEFAULT_TIMEOUT, &env))
        .collect();
    Some(nft::sweep_stale(natives, keep))
}

fn stopped() -> ActionError {
    ActionError::new(Cause::Config, "the action is stopped")
}

/// The action's `timeout` (Fail2ban's time syntax, 60 s by default).
fn timeout_of(jail: &str, def: &ActionDef) -> Duration {
    let Some(v) = def.get("timeout") else {
        return DEFAULT_TIMEOUT;
    };
    match crate::config::parse_time(v) {
        // Longer than a Duration holds (`10**20`): as good as no timeout.
        Ok(s) if s > 0.0 => Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX),
        _ => {
            tracing::warn!(target: "fail2ban.actions",
                "[{jail}] action {}: invalid timeout {v:?}, using 60 s", def.name);
            DEFAULT_TIMEOUT
        }
    }
}

/// Fail2ban's boolean option values.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "true" | "on" | "y"
    )
}

/// An action's task: runs requests in order, merging consecutive bans (or
/// unbans) that queued up into one batch, and retries what failed.
async fn work(
    mut backend: Backend,
    mut rx: mpsc::UnboundedReceiver<Request>,
    shared: Arc<Shared>,
    retry_every: Duration,
) {
    let mut held: Option<Request> = None;
    let mut retry_in = FIRST_RETRY.min(retry_every);
    loop {
        if backend.healthy() {
            retry_in = FIRST_RETRY.min(retry_every);
        }
        let req = match held.take() {
            Some(r) => r,
            None if backend.healthy() || matches!(backend, Backend::Broken(_)) => {
                match rx.recv().await {
                    Some(r) => r,
                    None => return,
                }
            }
            None => tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => r,
                    None => return,
                },
                _ = tokio::time::sleep(retry_in) => {
                    let outcome = backend.run(&Op::Retry).await;
                    shared.record(&outcome, backend.healthy());
                    retry_in = (retry_in * 2).min(retry_every);
                    continue;
                }
            },
        };
        let mut replies = vec![req.reply];
        let mut op = req.op;
        if matches!(op, Op::Ban(_) | Op::Unban(_)) {
            while let Ok(next) = rx.try_recv() {
                match (&mut op, next.op) {
                    (Op::Ban(t), Op::Ban(more)) | (Op::Unban(t), Op::Unban(more))
                        if t.len() < MAX_MERGED =>
                    {
                        t.extend(more);
                        replies.push(next.reply);
                    }
                    (_, other) => {
                        held = Some(Request {
                            op: other,
                            reply: next.reply,
                        });
                        break;
                    }
                }
            }
        }
        let outcome = backend.run(&op).await;
        shared.record(&outcome, backend.healthy());
        for r in replies {
            let _ = r.send(outcome.clone());
        }
        if matches!(op, Op::Stop(..)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_tags() {
        let mut t = Ticket::new("192.0.2.7");
        t.failures = 3;
        t.time = 1700000000.5;
        t.data.insert("user".into(), "ro$ot".into());
        t.data.insert("fid".into(), "x".into());
        use tags::Value::{Data, Text};
        assert_eq!(t.tag_value("ip", None), Some(Text("192.0.2.7".into())));
        assert_eq!(t.tag_value("family", None), Some(Text("inet4".into())));
        assert_eq!(t.tag_value("time", None), Some(Text("1700000000.5".into())));
        assert_eq!(t.tag_value("ipfailures", None), Some(Text("3".into())));
        assert_eq!(t.tag_value("F-USER", None), Some(Data("ro$ot".into())));
        assert_eq!(t.tag_value("F-ID", None), Some(Data("x".into())));
        assert_eq!(t.tag_value("F-NOPE", None), None);
        assert_eq!(t.tag_value("ip-rev", None), Some(Text("7.2.0.192.".into())));
        assert_eq!(t.tag_value("name", None), None);
        let t = Ticket::new("evil; rm -rf /");
        assert_eq!(t.tag_value("ip", None), Some(Data("evil; rm -rf /".into())));
        let t = Ticket::new("2001:db8::1");
        assert!(t.tag_value("ip-rev", None).is_some_and(|v| v
            == Text("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.".into())));
    }

    #[test]
    fn timeouts() {
        let timeout = |v: &str| {
            let def = ActionDef {
                name: "a".into(),
                options: vec![("timeout".into(), v.into())],
                ..ActionDef::default()
            };
            timeout_of("j", &def).as_secs_f64()
        };
        assert_eq!(timeout("60"), 60.0);
        assert_eq!(timeout("1m"), 60.0);
        assert_eq!(timeout("1h 30m"), 5400.0);
        assert_eq!(timeout("1.5h"), 5400.0);
        assert_eq!(timeout("10**20"), Duration::MAX.as_secs_f64());
        // Not a time: the default.
        assert_eq!(timeout("soon"), 60.0);
        assert_eq!(timeout("-1"), 60.0);
    }

    #[test]
    fn truthy_values() {
        assert!(truthy("1") && truthy("True") && truthy(" yes"));
        assert!(!truthy("0") && !truthy("false") && !truthy(""));
    }
}
