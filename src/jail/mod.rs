//! Failure counting and ban decisions: maxretry within findtime, bantime and
//! bantime.increment, ignoreip/ignoreself/ignorecommand, expiry.
//!
//! A [`Jail`] is plain state owned by one task: no I/O, no threads, no clock
//! (time is passed in), so every rule is exactly testable. It reproduces
//! Fail2ban 1.0.2's FailManager, BanManager and observer: what counts as a
//! failure, when a ticket reaches maxretry, what happens to an address that is
//! already banned, and the four status counters. The store provides the ban
//! history through [`BanHistory`]; the server runs `ignorecommand` when the
//! jail asks for it ([`Outcome::AskCommand`]).

mod bans;
mod bantime;
mod expr;
mod failures;
mod id;
mod ignore;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use bantime::known_offender_retry;
pub use bantime::{BanTimeIncrement, IncrementError};
pub use expr::ExprError;
pub use id::{AddrError, BanId};
pub use ignore::{
    host_addresses, self_addresses, CommandError, Ignore, IgnoreCache, IgnoreCheck, IgnoreCommand,
    IgnoreCommandCall, IgnoreError, IgnoreList, IgnoredBy, PrefixSet, SelfAddresses,
    IGNORE_COMMAND_TIMEOUT,
};

use crate::filter::Failure;
use bans::BanList;
use failures::{FailureTable, Limits};

/// The settings of a jail that counting and banning use.
#[derive(Debug, Clone)]
pub struct JailSettings {
    pub name: String,
    pub maxretry: u32,
    /// Seconds.
    pub findtime: f64,
    /// How many matched lines a ticket keeps (0: none).
    pub maxmatches: usize,
    /// Seconds; `-1` bans for ever.
    pub bantime: f64,
    pub increment: BanTimeIncrement,
    pub ignore: Ignore,
    /// At most this many failure tickets are held; beyond, the least recently
    /// failed are dropped (with a warning).
    pub max_failures: usize,
}

/// Tickets held by default: about 40 MB (measured RSS: about 400 bytes per
/// ticket holding one 136-byte match line).
pub const DEFAULT_MAX_FAILURES: usize = 100_000;

impl JailSettings {
    /// Fail2ban's server defaults (maxretry 3, findtime and bantime 600 s,
    /// maxmatches 5), which jail.conf overrides.
    pub fn new(name: &str) -> JailSettings {
        JailSettings {
            name: name.to_string(),
            maxretry: 3,
            findtime: 600.0,
            maxmatches: 5,
            bantime: 600.0,
            increment: BanTimeIncrement::default(),
            ignore: Ignore::default(),
            max_failures: DEFAULT_MAX_FAILURES,
        }
    }
}

/// One ban (Fail2ban's ban ticket).
#[derive(Debug, Clone, PartialEq)]
pub struct Ban {
    pub id: BanId,
    /// The last failure (or the time of a manual ban).
    pub time: f64,
    /// Seconds; `-1` for ever.
    pub bantime: f64,
    /// How often the address was banned, this ban included.
    pub count: u32,
    /// Failures counted for this ban (`<failures>`).
    pub failures: u32,
    /// The last matched lines (`<matches>`).
    pub matches: Vec<String>,
    /// The filter's captures of the first failure (`<F-*>`).
    pub data: Vec<(String, String)>,
    /// Read back from the store at start (not written again).
    pub restored: bool,
    /// bantime.increment changed the ban time (Fail2ban logs `Increase Ban`).
    pub incremented: bool,
}

impl Ban {
    /// The end of the ban; None when permanent.
    pub fn end(&self) -> Option<f64> {
        (self.bantime != -1.0).then_some(self.time + self.bantime)
    }
}

/// What an attempt to ban gave.
#[derive(Debug, Clone, PartialEq)]
pub enum BanOutcome {
    /// A new ban: carry it out and store it (unless restored).
    New(Ban),
    /// Already banned; `prolonged`: the ban now ends when the new one would
    /// have (see [`Jail::ban_of`]).
    Already { id: BanId, prolonged: bool },
    /// The ban would already be over (`Ignore ..., expired bantime`).
    Expired(BanId),
}

/// The boost of a known offender (Fail2ban's `Found X, bad - ...` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownOffender {
    /// Previous bans in this jail.
    pub ban_count: u32,
    /// What this failure counts for.
    pub retry: u32,
}

/// A counted failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    /// The ticket's retry count after this failure (0 once banned).
    pub retry: u32,
    pub known: Option<KnownOffender>,
    pub ban: Option<BanOutcome>,
}

/// What [`Jail::on_failure`] did with a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A `<F-NOFAIL>` match: not a failure.
    NoFail,
    Ignored(IgnoredBy),
    /// Only `ignorecommand` can decide: run it, then call
    /// [`Jail::command_verdict`] and, when that is clear, [`Jail::count_failure`].
    AskCommand(IgnoreCommandCall),
    Counted(Counted),
}

/// A previous ban, as the store remembers it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastBan {
    pub count: u32,
    /// When it was made.
    pub time: f64,
}

/// The ban history the store keeps (Fail2ban's `bips` table).
pub trait BanHistory {
    /// The latest ban of `id` in `jail` or, with `all_jails`, the counts of
    /// every jail summed with the latest time. None when never banned.
    fn previous_ban(&self, jail: &str, id: &BanId, all_jails: bool) -> Option<PastBan>;
}

/// No history (no store, or bantime.increment off).
pub struct NoHistory;

impl BanHistory for NoHistory {
    fn previous_ban(&self, _: &str, _: &BanId, _: bool) -> Option<PastBan> {
        None
    }
}

/// The counters of `status <jail>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub currently_failed: usize,
    pub total_failed: u64,
    pub currently_banned: usize,
    pub total_banned: u64,
    /// Tickets dropped because the failure table was full.
    pub evicted: u64,
}

/// Fail2ban cleans the failure table at most every 5 seconds.
const SERVICE_INTERVAL: f64 = 5.0;
/// At most one warning a minute about a full failure table.
const EVICTION_WARN_INTERVAL: f64 = 60.0;

/// One jail's failures and bans.
#[derive(Debug)]
pub struct Jail {
    settings: JailSettings,
    failures: FailureTable,
    bans: BanList,
    total_failed: u64,
    rng: StdRng,
    next_service: f64,
    evicted: u64,
    evicted_unreported: u64,
    last_eviction_warning: f64,
}

impl Jail {
    pub fn new(settings: JailSettings) -> Jail {
        Jail {
            settings,
            failures: FailureTable::new(),
            bans: BanList::default(),
            total_failed: 0,
            rng: StdRng::from_os_rng(),
            next_service: f64::NEG_INFINITY,
            evicted: 0,
            evicted_unreported: 0,
            last_eviction_warning: f64::NEG_INFINITY,
        }
    }

    /// Makes `bantime.rndtime` draws repeatable.
    #[cfg(test)]
    pub fn seed_rng(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn settings(&self) -> &JailSettings {
        &self.settings
    }

    pub fn set_maxretry(&mut self, maxretry: u32) {
        self.settings.maxretry = maxretry;
    }

    pub fn set_findtime(&mut self, findtime: f64) {
        self.settings.findtime = findtime;
    }

    pub fn set_maxmatches(&mut self, maxmatches: usize) {
        self.settings.maxmatches = maxmatches;
    }

    /// Current bans without a ban time of their own follow the new value.
    pub fn set_bantime(&mut self, bantime: f64) {
        self.settings.bantime = bantime;
        self.bans.set_default_bantime(bantime);
    }

    /// Takes effect at the next new ticket.
    pub fn set_max_failures(&mut self, max: usize) {
        self.settings.max_failures = max;
    }

    pub fn increment_mut(&mut self) -> &mut BanTimeIncrement {
        &mut self.settings.increment
    }

    pub fn ignore_mut(&mut self) -> &mut Ignore {
        &mut self.settings.ignore
    }

    /// The longest ban this jail gives (`-1`: permanent); the store caps
    /// restored bans with it.
    pub fn max_ban_time(&self) -> f64 {
        self.settings.increment.max_ban_time(self.settings.bantime)
    }

    fn limits(&self) -> Limits {
        Limits {
            findtime: self.settings.findtime,
            maxmatches: self.settings.maxmatches,
            cap: self.settings.max_failures,
        }
    }

    /// A failure found by the filter: checks the ignore rules, counts it, and
    /// bans when the ticket reaches maxretry.
    pub fn on_failure(&mut self, failure: &Failure, now: f64, history: &dyn BanHistory) -> Outcome {
        if failure.nofail {
            return Outcome::NoFail;
        }
        let id = failure_id(failure);
        match self.settings.ignore.check(&id, &failure.data, now) {
            IgnoreCheck::Clear => Outcome::Counted(self.count(id, failure, now, history)),
            IgnoreCheck::Ignored(by) => Outcome::Ignored(by),
            IgnoreCheck::AskCommand(call) => Outcome::AskCommand(call),
        }
    }

    /// Checks the ignore rules for an id (a failure's, or a ban restored from
    /// the store).
    pub fn check_ignore(&mut self, id: &BanId, data: &[(String, String)], now: f64) -> IgnoreCheck {
        self.settings.ignore.check(id, data, now)
    }

    /// Hands back the verdict of an `ignorecommand` call (true: exit 0,
    /// ignore); remembered in `ignorecache`.
    pub fn command_verdict(
        &mut self,
        call: &IgnoreCommandCall,
        ignored: bool,
        now: f64,
    ) -> IgnoreCheck {
        self.settings.ignore.verdict(call, ignored, now)
    }

    /// Counts a failure whose ignore check came out clear.
    pub fn count_failure(
        &mut self,
        failure: &Failure,
        now: f64,
        history: &dyn BanHistory,
    ) -> Counted {
        self.count(failure_id(failure), failure, now, history)
    }

    fn count(&mut self, id: BanId, f: &Failure, now: f64, history: &dyn BanHistory) -> Counted {
        // A failure stamped in the future counts as now.
        let time = f.time.min(now);
        let added = self.add_failure(&id, time, &f.matches, &f.data, 1, now);
        let mut retry = added.retry;
        let mut ban = None;
        if retry >= self.settings.maxretry {
            ban = self.perform_ban(&id, now, history);
        }
        let mut known = None;
        let inc = self.settings.increment.enabled;
        let past = inc.then(|| history.previous_ban(&self.settings.name, &id, false));
        if let Some((k, grown)) = past
            .flatten()
            .and_then(|p| self.count_again(&id, f, time, added.created, p))
        {
            known = Some(k);
            if let Some(r) = grown {
                retry = r;
                if r >= self.settings.maxretry {
                    ban = self.perform_ban(&id, now, history);
                }
            }
        }
        if ban.is_some() {
            retry = 0;
        }
        Counted { retry, known, ban }
    }

    /// Fail2ban's observer: a failure of an address banned before (and after
    /// that ban) counts again, for 2^n/2 + 1 in all. Returns the boost and
    /// the ticket's new retry count (None when the ticket is already banned).
    fn count_again(
        &mut self,
        id: &BanId,
        f: &Failure,
        time: f64,
        created: bool,
        past: PastBan,
    ) -> Option<(KnownOffender, Option<u32>)> {
        let boost = known_offender_retry(past.count, self.settings.maxretry);
        if boost <= 1 || time <= past.time {
            return None;
        }
        let limits = self.limits();
        let retry =
            self.failures
                .add_known(id, created, &f.matches, boost - 1, past.count, &limits);
        if retry.is_some() {
            self.total_failed += 1;
        }
        let known = KnownOffender {
            ban_count: past.count,
            retry: boost,
        };
        Some((known, retry))
    }

    fn add_failure(
        &mut self,
        id: &BanId,
        time: f64,
        matches: &[String],
        data: &[(String, String)],
        count: u32,
        now: f64,
    ) -> failures::Added {
        let limits = self.limits();
        let added = self.failures.add(id, time, matches, data, count, &limits);
        self.total_failed += 1;
        self.note_evictions(added.evicted, now);
        added
    }

    /// `set <jail> attempt <ip> [<match> ...]`: counts as many failures as
    /// lines given (at least one), now, without the ignore rules.
    pub fn add_attempt(
        &mut self,
        id: BanId,
        matches: &[String],
        now: f64,
        history: &dyn BanHistory,
    ) -> Option<BanOutcome> {
        let count = matches.len().max(1) as u32;
        let added = self.add_failure(&id, now, matches, &[], count, now);
        if added.retry >= self.settings.maxretry {
            return self.perform_ban(&id, now, history);
        }
        None
    }

    /// Fail2ban's `performBan`: the ticket leaves the failure table and
    /// becomes a ban.
    fn perform_ban(
        &mut self,
        id: &BanId,
        now: f64,
        history: &dyn BanHistory,
    ) -> Option<BanOutcome> {
        let ticket = self.failures.take_reached(id, self.settings.maxretry)?;
        let ban = Ban {
            matches: ticket.matches(),
            data: ticket.data(),
            id: ticket.id,
            time: ticket.time,
            bantime: self.settings.bantime,
            count: ticket.ban_count,
            failures: ticket.attempts,
            restored: false,
            incremented: false,
        };
        let outcome = self.admit(ban, now, history);
        self.maintain(now);
        Some(outcome)
    }

    /// `set <jail> banip <id>`: bans now, without the ignore rules.
    pub fn ban(&mut self, id: BanId, now: f64, history: &dyn BanHistory) -> BanOutcome {
        let ban = Ban {
            id,
            time: now,
            bantime: self.settings.bantime,
            count: 0,
            failures: 0,
            matches: Vec::new(),
            data: Vec::new(),
            restored: false,
            incremented: false,
        };
        self.admit(ban, now, history)
    }

    /// Adds a ban with the jail's ban time, then lengthens a new one for a
    /// known offender (Fail2ban's `banFound` / `incrBanTime`).
    fn admit(&mut self, ban: Ban, now: f64, history: &dyn BanHistory) -> BanOutcome {
        let mut ban = match self.bans.add(ban, false, now) {
            BanOutcome::New(ban) => ban,
            other => return other,
        };
        let inc = &self.settings.increment;
        if !inc.enabled || ban.bantime <= 0.0 {
            return BanOutcome::New(ban);
        }
        let Some(past) = history.previous_ban(&self.settings.name, &ban.id, inc.overalljails)
        else {
            return BanOutcome::New(ban);
        };
        if past.count >= ban.count {
            ban.count = past.count.saturating_add(1);
        }
        // Fail2ban keeps the jail's ban time (not as the ban's own) when its
        // formula fails.
        let mut explicit = true;
        if past.count > 0 {
            let random = self.rng.random::<f64>();
            match self
                .settings
                .increment
                .ban_time(ban.bantime, past.count, random)
            {
                Ok(bantime) => {
                    ban.incremented = bantime != ban.bantime;
                    ban.bantime = bantime;
                }
                Err(e) => {
                    tracing::error!(
                        "[{}] bantime.formula for {}: {e}",
                        self.settings.name,
                        ban.id
                    );
                    explicit = false;
                }
            }
        }
        self.bans.set(&ban.id, ban.bantime, ban.count, explicit);
        BanOutcome::New(ban)
    }

    /// Puts a ban read from the store back (check the ignore rules first):
    /// refused when its remaining time is over.
    pub fn restore(&mut self, mut ban: Ban, now: f64) -> BanOutcome {
        ban.restored = true;
        ban.incremented = false;
        let mut left = ban.bantime;
        if left != -1.0 && now > ban.time {
            left -= now - ban.time;
        }
        if left != -1.0 && left <= 0.0 {
            return BanOutcome::Expired(ban.id);
        }
        let max = self.settings.maxmatches;
        if ban.matches.len() > max {
            ban.matches.drain(..ban.matches.len() - max);
        }
        self.bans.add(ban, true, now)
    }

    /// `set <jail> unbanip <id>`: the ban of exactly that id or, for a
    /// network, every ban inside it. Returns what was unbanned.
    pub fn unban(&mut self, id: &BanId) -> Vec<Ban> {
        if let Some(ban) = self.bans.remove(id) {
            return vec![ban];
        }
        match id {
            BanId::Net(net) => self.bans.remove_in(net),
            _ => Vec::new(),
        }
    }

    /// Unbans everything (stop, `unban --all`), in the order banned.
    pub fn unban_all(&mut self) -> Vec<Ban> {
        self.bans.flush()
    }

    /// Removes and returns the bans that ended before `now`.
    pub fn expired(&mut self, now: f64) -> Vec<Ban> {
        self.bans.expired(now)
    }

    /// When the next ban ends (permanent bans never do).
    pub fn next_expiry(&self) -> Option<f64> {
        self.bans.next_expiry()
    }

    /// Drops tickets older than findtime (at most every 5 s). Fail2ban does
    /// this after each ban, every 100 lines of the jail's logs and about
    /// every 10 s when idle; the server calls it for the last two.
    pub fn maintain(&mut self, now: f64) {
        if now < self.next_service {
            return;
        }
        self.next_service = now + SERVICE_INTERVAL;
        self.failures.cleanup(now - self.settings.findtime);
        if self.evicted_unreported > 0 && now >= self.last_eviction_warning + EVICTION_WARN_INTERVAL
        {
            self.warn_evictions(now);
        }
    }

    fn note_evictions(&mut self, evicted: u64, now: f64) {
        if evicted == 0 {
            return;
        }
        self.evicted += evicted;
        self.evicted_unreported += evicted;
        if now >= self.last_eviction_warning + EVICTION_WARN_INTERVAL {
            self.warn_evictions(now);
        }
    }

    fn warn_evictions(&mut self, now: f64) {
        tracing::warn!(
            "[{}] Failure table full ({} entries, or {} KiB of matched lines): dropped the {} least recently failing",
            self.settings.name,
            self.settings.max_failures,
            self.settings.max_failures.saturating_mul(failures::BYTES_PER_TICKET) / 1024,
            self.evicted_unreported
        );
        self.evicted_unreported = 0;
        self.last_eviction_warning = now;
    }

    pub fn status(&self) -> Status {
        Status {
            currently_failed: self.failures.len(),
            total_failed: self.total_failed,
            currently_banned: self.bans.len(),
            total_banned: self.bans.total(),
            evicted: self.evicted,
        }
    }

    /// Current bans in the order made (`Banned IP list` of `status`).
    pub fn banned(&self) -> impl Iterator<Item = &Ban> {
        self.bans.iter()
    }

    /// Current bans by end of ban, permanent last (`get <jail> banip`).
    pub fn banned_by_end(&self) -> Vec<&Ban> {
        self.bans.by_end()
    }

    pub fn ban_of(&self, id: &BanId) -> Option<&Ban> {
        self.bans.get(id)
    }

    pub fn is_banned(&self, id: &BanId) -> bool {
        self.bans.get(id).is_some()
    }
}

/// The id a failure counts under: its `fid`, read as Fail2ban reads it.
fn failure_id(f: &Failure) -> BanId {
    BanId::parse(&f.fid)
}

#[cfg(test)]
mod tests;
