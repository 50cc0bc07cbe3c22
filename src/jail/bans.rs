//! The banned list: current bans in the order they were made (the order
//! `status` prints), indexed by id and by end of ban, with the rules of
//! Fail2ban's BanManager: a ban that already ended is refused, a ban of an
//! address already banned only prolongs it, `-1` never ends.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;

use super::id::BanId;
use super::{Ban, BanOutcome};

/// An end of ban that sorts (ends are finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct End(f64);

impl Eq for End {}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug)]
struct Entry {
    ban: Ban,
    /// The ban time is the ticket's own (restored, increased, prolonged)
    /// rather than the jail's, which `set bantime` would change.
    explicit: bool,
}

/// Fail2ban compares ends with permanent bans at its MAX_TIME.
fn end_or_max(ban: &Ban) -> f64 {
    ban.end().unwrap_or(f64::INFINITY)
}

#[derive(Debug, Default)]
pub(crate) struct BanList {
    entries: BTreeMap<u64, Entry>,
    index: HashMap<BanId, u64>,
    ends: BTreeSet<(End, u64)>,
    next_seq: u64,
    total: u64,
}

impl BanList {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bans made since start (restored ones included), as `Total banned`.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn get(&self, id: &BanId) -> Option<&Ban> {
        self.entries.get(self.index.get(id)?).map(|e| &e.ban)
    }

    /// In the order the bans were made.
    pub fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.entries.values().map(|e| &e.ban)
    }

    /// By end of ban, permanent last; equal ends in the order made.
    pub fn by_end(&self) -> Vec<&Ban> {
        let timed = self.ends.iter().map(|(_, seq)| &self.entries[seq].ban);
        timed
            .chain(self.iter().filter(|b| b.end().is_none()))
            .collect()
    }

    pub fn next_expiry(&self) -> Option<f64> {
        self.ends.first().map(|(end, _)| end.0)
    }

    /// Fail2ban's `addBanTicket`: `ban.bantime` is already the ticket's or
    /// the jail's ban time.
    pub fn add(&mut self, mut ban: Ban, explicit: bool, now: f64) -> BanOutcome {
        let end = end_or_max(&ban);
        if end < now {
            return BanOutcome::Expired(ban.id);
        }
        if let Some(&seq) = self.index.get(&ban.id) {
            let old = &self.entries[&seq].ban;
            if end <= end_or_max(old) {
                return BanOutcome::Already {
                    id: ban.id,
                    prolonged: false,
                };
            }
            // Prolong so that the old ban ends when the new one would.
            let mut bantime = ban.bantime;
            if bantime != -1.0 && ban.time > old.time {
                bantime += ban.time - old.time;
            }
            self.update(seq, bantime, true);
            return BanOutcome::Already {
                id: ban.id,
                prolonged: true,
            };
        }
        ban.count = ban.count.saturating_add(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(end) = ban.end() {
            self.ends.insert((End(end), seq));
        }
        self.index.insert(ban.id.clone(), seq);
        self.entries.insert(
            seq,
            Entry {
                ban: ban.clone(),
                explicit,
            },
        );
        self.total += 1;
        BanOutcome::New(ban)
    }

    /// Sets a ban's time and count; `explicit`: the time is its own rather
    /// than the jail's.
    pub fn set(&mut self, id: &BanId, bantime: f64, count: u32, explicit: bool) {
        if let Some(&seq) = self.index.get(id) {
            if let Some(ban) = self.update(seq, bantime, explicit) {
                ban.count = count;
            }
        }
    }

    /// Sets a ban's time, keeping the end index; returns the ban.
    fn update(&mut self, seq: u64, bantime: f64, explicit: bool) -> Option<&mut Ban> {
        let entry = self.entries.get_mut(&seq)?;
        if let Some(end) = entry.ban.end() {
            self.ends.remove(&(End(end), seq));
        }
        entry.ban.bantime = bantime;
        entry.explicit = explicit;
        if let Some(end) = entry.ban.end() {
            self.ends.insert((End(end), seq));
        }
        Some(&mut entry.ban)
    }

    /// `set <jail> bantime`: bans without a ban time of their own follow.
    pub fn set_default_bantime(&mut self, bantime: f64) {
        let follow: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.explicit)
            .map(|(s, _)| *s)
            .collect();
        for seq in follow {
            self.update(seq, bantime, false);
        }
    }

    pub fn remove(&mut self, id: &BanId) -> Option<Ban> {
        let seq = *self.index.get(id)?;
        self.remove_seq(seq)
    }

    fn remove_seq(&mut self, seq: u64) -> Option<Ban> {
        let entry = self.entries.remove(&seq)?;
        self.index.remove(&entry.ban.id);
        if let Some(end) = entry.ban.end() {
            self.ends.remove(&(End(end), seq));
        }
        Some(entry.ban)
    }

    fn remove_all(&mut self, mut seqs: Vec<u64>) -> Vec<Ban> {
        seqs.sort_unstable();
        seqs.into_iter()
            .filter_map(|s| self.remove_seq(s))
            .collect()
    }

    /// Every ban whose (network) address lies in `net`, in the order made.
    pub fn remove_in(&mut self, net: &IpNet) -> Vec<Ban> {
        let seqs = self
            .entries
            .iter()
            .filter(|(_, e)| e.ban.id.is_in(net))
            .map(|(s, _)| *s)
            .collect();
        self.remove_all(seqs)
    }

    pub fn flush(&mut self) -> Vec<Ban> {
        self.index.clear();
        self.ends.clear();
        std::mem::take(&mut self.entries)
            .into_values()
            .map(|e| e.ban)
            .collect()
    }

    /// Bans whose end is before `now`, in the order made.
    pub fn expired(&mut self, now: f64) -> Vec<Ban> {
        let seqs = self.ends.range(..(End(now), 0)).map(|(_, s)| *s).collect();
        self.remove_all(seqs)
    }
}
