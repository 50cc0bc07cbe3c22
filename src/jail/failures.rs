//! The failure table: one ticket per failure id, counted the way Fail2ban's
//! FailManager counts (retries, attempts, matches up to `maxmatches`, the
//! rate estimate once a ticket spans more than `findtime`), held compactly in
//! a slab with a least-recently-failed order so that a size cap can drop the
//! stalest tickets first.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::id::BanId;

const NIL: u32 = u32::MAX;

/// The bytes of matched lines, capture data and named ids the table holds
/// on average per ticket the cap allows: a flood of long lines (each ticket
/// keeps up to maxmatches whole lines) evicts sooner instead of growing the
/// table past the cap's memory bound. One ~150-byte line per ticket, the
/// common case, stays well under it.
pub(crate) const BYTES_PER_TICKET: usize = 256;

/// The limits the table counts under (the jail's current settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub findtime: f64,
    pub maxmatches: usize,
    pub cap: usize,
}

/// Failures of one id.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub id: BanId,
    /// The latest failure.
    pub time: f64,
    /// Start of the counted interval (moves when the ticket outlives findtime).
    first: f64,
    /// What is compared with maxretry.
    pub retry: u32,
    /// Fail2ban's `failures`: one per failure.
    pub attempts: u32,
    /// Previous bans, as the known-offender rule set them.
    pub ban_count: u32,
    payload: Payload,
    prev: u32,
    next: u32,
}

impl Ticket {
    pub fn matches(&self) -> Vec<String> {
        self.payload
            .strings()
            .take(self.payload.n_matches())
            .map(str::to_string)
            .collect()
    }

    pub fn data(&self) -> Vec<(String, String)> {
        let mut rest = self.payload.strings().skip(self.payload.n_matches());
        std::iter::from_fn(|| Some((rest.next()?.to_string(), rest.next()?.to_string()))).collect()
    }

    /// Fail2ban's `adjustTime` then `inc`: a failure later than the ticket
    /// whose interval would exceed findtime scales the retry count down to
    /// the rate over the last findtime seconds.
    fn bump(&mut self, time: f64, matches: Option<&[String]>, count: u32, limits: &Limits) {
        if time > self.time {
            let span = time - self.first;
            if self.first < time - limits.findtime && span > 0.0 {
                let scaled = f64::from(self.retry) / span * limits.findtime;
                self.retry = scaled.round_ties_even() as u32;
                self.first = time - limits.findtime;
            }
            self.time = time;
        }
        self.retry = self.retry.saturating_add(count);
        self.attempts = self.attempts.saturating_add(1);
        let old = self.payload.n_matches();
        let added = matches.map_or(0, <[String]>::len);
        let keep = if limits.maxmatches == 0 {
            0
        } else {
            (old + added).min(limits.maxmatches)
        };
        if added > 0 || keep < old {
            let all = self
                .payload
                .strings()
                .take(old)
                .chain(matches.unwrap_or(&[]).iter().map(String::as_str));
            self.payload = self
                .payload
                .with_matches(all.skip(old + added - keep), keep);
        }
    }
}

/// A ticket's matches and capture data in one allocation: the match count,
/// then each string as a length and its bytes (matches, then data keys and
/// values alternating).
#[derive(Debug)]
struct Payload(Box<[u8]>);

fn put(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

impl Payload {
    fn new(matches: &[String], data: &[(String, String)]) -> Payload {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(matches.len() as u32).to_le_bytes());
        matches.iter().for_each(|m| put(&mut buf, m));
        data.iter().for_each(|(k, v)| {
            put(&mut buf, k);
            put(&mut buf, v);
        });
        Payload(buf.into_boxed_slice())
    }

    /// The same data with other matches.
    fn with_matches<'a>(&self, matches: impl Iterator<Item = &'a str>, n: usize) -> Payload {
        let mut data = self.0.get(4..).unwrap_or(&[]);
        for _ in 0..self.n_matches() {
            let len = data
                .first_chunk::<4>()
                .map_or(0, |l| u32::from_le_bytes(*l) as usize);
            data = data.get(4 + len..).unwrap_or(&[]);
        }
        let mut buf = Vec::new();
        buf.extend_from_slice(&(n as u32).to_le_bytes());
        matches.for_each(|m| put(&mut buf, m));
        buf.extend_from_slice(data);
        Payload(buf.into_boxed_slice())
    }

    fn n_matches(&self) -> usize {
        self.0
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn strings(&self) -> impl Iterator<Item = &str> {
        let mut rest = self.0.get(4..).unwrap_or(&[]);
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (s, tail) = tail.split_at_checked(len)?;
            rest = tail;
            // Only whole &str values are ever written, so this always holds.
            std::str::from_utf8(s).ok()
        })
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.0.len()
    }
}

/// The outcome of counting one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Added {
    pub retry: u32,
    /// The failure opened a new ticket.
    pub created: bool,
    /// Tickets dropped to stay under the cap.
    pub evicted: u64,
}

#[derive(Debug, Default)]
pub(crate) struct FailureTable {
    slots: Vec<Option<Ticket>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: RandomState,
    /// Least recently failed end of the order.
    head: u32,
    tail: u32,
    len: usize,
    /// Payload and name bytes of the tickets held (see [`BYTES_PER_TICKET`]).
    bytes: usize,
}

/// What a ticket counts against the table's byte budget.
fn ticket_bytes(t: &Ticket) -> usize {
    entry_bytes(&t.id, &t.payload)
}

fn entry_bytes(id: &BanId, payload: &Payload) -> usize {
    payload.0.len()
        + match id {
            BanId::Name(n) => n.len(),
            _ => 0,
        }
}

impl FailureTable {
    pub fn new() -> FailureTable {
        FailureTable {
            head: NIL,
            tail: NIL,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn find(&self, id: &BanId) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&i| {
                self.slots[i as usize].as_ref().is_some_and(|t| t.id == *id)
            })
            .copied()
    }

    #[cfg(test)]
    pub fn get(&self, id: &BanId) -> Option<&Ticket> {
        self.slots[self.find(id)? as usize].as_ref()
    }

    /// Fail2ban's `addFailure` for a new failure: a new ticket starts at
    /// `count` retries, an existing one is bumped.
    pub fn add(
        &mut self,
        id: &BanId,
        time: f64,
        matches: &[String],
        data: &[(String, String)],
        count: u32,
        limits: &Limits,
    ) -> Added {
        let budget = limits.cap.max(1).saturating_mul(BYTES_PER_TICKET);
        if let Some(i) = self.find(id) {
            let retry = self.bump_at(i, time, Some(matches), count, limits);
            // The bumped ticket is the most recent: the others go first.
            let mut evicted = 0;
            while self.bytes > budget && self.head != i {
                self.remove_at(self.head);
                evicted += 1;
            }
            return Added {
                retry,
                created: false,
                evicted,
            };
        }
        let payload = Payload::new(matches, data);
        let size = entry_bytes(id, &payload);
        let mut evicted = 0;
        while (self.len >= limits.cap.max(1) || self.bytes + size > budget) && self.head != NIL {
            self.remove_at(self.head);
            evicted += 1;
        }
        let ticket = Ticket {
            id: id.clone(),
            time,
            first: time,
            retry: count.max(1),
            attempts: 1,
            ban_count: 0,
            payload,
            prev: NIL,
            next: NIL,
        };
        self.insert(ticket);
        Added {
            retry: count.max(1),
            created: true,
            evicted,
        }
    }

    /// The observer's second count of a known offender's failure: only an
    /// existing ticket grows (a banned one is gone). `same_ticket`: the
    /// failure opened this ticket, so its matches are already in it.
    pub fn add_known(
        &mut self,
        id: &BanId,
        same_ticket: bool,
        matches: &[String],
        count: u32,
        ban_count: u32,
        limits: &Limits,
    ) -> Option<u32> {
        let i = self.find(id)?;
        let time = self.ticket_mut(i).time;
        let retry = self.bump_at(i, time, (!same_ticket).then_some(matches), count, limits);
        if same_ticket {
            let t = self.ticket_mut(i);
            t.ban_count = t.ban_count.max(ban_count);
        }
        Some(retry)
    }

    /// Bumps the ticket in slot `i`, keeping the byte count, and makes it the
    /// most recent; returns its retry count.
    fn bump_at(
        &mut self,
        i: u32,
        time: f64,
        matches: Option<&[String]>,
        count: u32,
        limits: &Limits,
    ) -> u32 {
        let t = self.ticket_mut(i);
        let before = ticket_bytes(t);
        t.bump(time, matches, count, limits);
        let (retry, after) = (t.retry, ticket_bytes(t));
        self.bytes = self.bytes - before + after;
        self.touch(i);
        retry
    }

    /// Fail2ban's `toBan`: takes the ticket out once it reached maxretry.
    pub fn take_reached(&mut self, id: &BanId, maxretry: u32) -> Option<Ticket> {
        let i = self.find(id)?;
        if self.ticket_mut(i).retry < maxretry {
            return None;
        }
        self.remove_at(i)
    }

    /// Drops tickets whose latest failure is at or before `cutoff`
    /// (now - findtime); returns how many.
    pub fn cleanup(&mut self, cutoff: f64) -> usize {
        let old: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| {
                self.slots[i as usize]
                    .as_ref()
                    .is_some_and(|t| t.time <= cutoff)
            })
            .collect();
        for &i in &old {
            self.remove_at(i);
        }
        if self.slots.len() > 1024 && self.len < self.slots.len() / 4 {
            self.compact();
        }
        old.len()
    }

    /// Rebuilds the slab without holes after a mass cleanup, so memory goes
    /// back down with the number of tickets.
    fn compact(&mut self) {
        let mut order = Vec::with_capacity(self.len);
        let mut i = self.head;
        while i != NIL {
            let mut t = self.slots[i as usize]
                .take()
                .expect("linked slot holds a ticket");
            i = t.next;
            (t.prev, t.next) = (NIL, NIL);
            order.push(t);
        }
        *self = FailureTable {
            hasher: std::mem::take(&mut self.hasher),
            ..FailureTable::new()
        };
        self.slots.reserve_exact(order.len());
        for t in order {
            self.insert(t);
        }
    }

    /// Stores `ticket` in a free slot (else a new one), indexed by its id,
    /// last in the age order.
    fn insert(&mut self, ticket: Ticket) {
        let hash = self.hasher.hash_one(&ticket.id);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(ticket);
                i
            }
            None => {
                self.slots.push(Some(ticket));
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            slots[j as usize]
                .as_ref()
                .map_or(0, |t| hasher.hash_one(&t.id))
        });
        self.len += 1;
        self.bytes += self.slots[i as usize].as_ref().map_or(0, ticket_bytes);
        self.link_tail(i);
    }

    fn ticket_mut(&mut self, i: u32) -> &mut Ticket {
        self.slots[i as usize]
            .as_mut()
            .expect("indexed slot holds a ticket")
    }

    fn remove_at(&mut self, i: u32) -> Option<Ticket> {
        let t = self.slots[i as usize].as_ref()?;
        let hash = self.hasher.hash_one(&t.id);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.unlink(i);
        self.free.push(i);
        self.len -= 1;
        let t = self.slots[i as usize].take()?;
        self.bytes -= ticket_bytes(&t);
        Some(t)
    }

    fn touch(&mut self, i: u32) {
        if self.tail != i {
            self.unlink(i);
            self.link_tail(i);
        }
    }

    fn link_tail(&mut self, i: u32) {
        let tail = self.tail;
        {
            let t = self.ticket_mut(i);
            (t.prev, t.next) = (tail, NIL);
        }
        match tail {
            NIL => self.head = i,
            _ => self.ticket_mut(tail).next = i,
        }
        self.tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let t = self.ticket_mut(i);
            (t.prev, t.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.ticket_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.ticket_mut(n).prev = prev,
        }
    }

    /// Memory held by the table: slab, hash index and payloads.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        let names: usize = self
            .slots
            .iter()
            .flatten()
            .map(|t| {
                t.payload.bytes()
                    + if let BanId::Name(n) = &t.id {
                        n.len()
                    } else {
                        0
                    }
            })
            .sum();
        self.slots.capacity() * std::mem::size_of::<Option<Ticket>>()
            + self.free.capacity() * 4
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + names
    }

    /// The ids from least to most recently failed.
    #[cfg(test)]
    pub fn order(&self) -> Vec<BanId> {
        let mut out = Vec::new();
        let mut i = self.head;
        while i != NIL {
            let t = self.slots[i as usize].as_ref().expect("linked");
            out.push(t.id.clone());
            i = t.next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            findtime: 600.0,
            maxmatches: 3,
            cap: 100,
        }
    }

    fn id(s: &str) -> BanId {
        BanId::parse(s)
    }

    fn m(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    #[test]
    fn counts_retries_and_attempts() {
        let mut t = FailureTable::new();
        let l = limits();
        assert_eq!(
            t.add(&id("192.0.2.1"), 10.0, &m("a"), &[], 1, &l),
            Added {
                retry: 1,
                created: true,
                evicted: 0
            }
        );
        assert_eq!(t.add(&id("192.0.2.1"), 20.0, &m("b"), &[], 1, &l).retry, 2);
        let tk = t.get(&id("192.0.2.1")).unwrap();
        assert_eq!((tk.retry, tk.attempts, tk.time), (2, 2, 20.0));
        assert_eq!(tk.matches(), ["a", "b"]);
        assert!(t.take_reached(&id("192.0.2.1"), 3).is_none());
        assert_eq!(t.take_reached(&id("192.0.2.1"), 2).unwrap().retry, 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn keeps_the_last_maxmatches() {
        let mut t = FailureTable::new();
        let l = limits();
        let data = [("user".to_string(), "root".to_string())];
        // The opening failure keeps all its lines, as in Fail2ban.
        t.add(
            &id("x"),
            1.0,
            &["1".into(), "2".into(), "3".into(), "4".into()],
            &data,
            1,
            &l,
        );
        assert_eq!(t.get(&id("x")).unwrap().matches().len(), 4);
        t.add(
            &id("x"),
            2.0,
            &m("5"),
            &[("user".into(), "other".into())],
            1,
            &l,
        );
        let tk = t.get(&id("x")).unwrap();
        assert_eq!(tk.matches(), ["3", "4", "5"]);
        assert_eq!(tk.data(), data, "the first failure's data stays");
        let none = Limits { maxmatches: 0, ..l };
        t.add(&id("x"), 3.0, &m("6"), &[], 1, &none);
        assert!(t.get(&id("x")).unwrap().matches().is_empty());
        assert_eq!(t.get(&id("x")).unwrap().data(), data);
    }

    #[test]
    fn rate_estimate_beyond_findtime() {
        let mut t = FailureTable::new();
        let l = Limits {
            findtime: 100.0,
            ..limits()
        };
        let x = id("192.0.2.7");
        for time in [0.0, 10.0, 20.0] {
            t.add(&x, time, &[], &[], 1, &l);
        }
        // 3 failures over 150 s, scaled to 100 s: round(2.0) = 2, then +1.
        assert_eq!(t.add(&x, 150.0, &[], &[], 1, &l).retry, 3);
        // Older failures do not move the time and are simply counted.
        assert_eq!(t.add(&x, 5.0, &[], &[], 1, &l).retry, 4);
        assert_eq!(t.get(&x).unwrap().time, 150.0);
        // round half to even: 1 failure over 200 s scaled to 100 s is 0.5 -> 0.
        let y = id("192.0.2.8");
        t.add(&y, 0.0, &[], &[], 1, &l);
        assert_eq!(t.add(&y, 200.0, &[], &[], 1, &l).retry, 1);
    }

    #[test]
    fn cleanup_drops_at_and_before_cutoff() {
        let mut t = FailureTable::new();
        let l = limits();
        t.add(&id("192.0.2.1"), 100.0, &[], &[], 1, &l);
        t.add(&id("192.0.2.2"), 101.0, &[], &[], 1, &l);
        assert_eq!(t.cleanup(100.0), 1);
        assert!(t.get(&id("192.0.2.1")).is_none());
        assert!(t.get(&id("192.0.2.2")).is_some());
        // Freed slots are reused.
        t.add(&id("192.0.2.3"), 102.0, &[], &[], 1, &l);
        assert_eq!(t.slots.len(), 2);
    }

    #[test]
    fn long_lines_evict_by_bytes_before_the_count_cap() {
        let mut t = FailureTable::new();
        let l = Limits {
            cap: 10,
            ..limits()
        };
        let budget = 10 * BYTES_PER_TICKET;
        // Each ticket keeps a line of half the budget: two fit, not three.
        let long = vec!["x".repeat(budget / 2 - 64)];
        for (i, s) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            t.add(&id(s), i as f64, &long, &[], 1, &l);
        }
        assert_eq!(t.order(), [id("192.0.2.2"), id("192.0.2.3")]);
        assert!(t.bytes <= budget, "{}", t.bytes);
        // A known ticket that grows pushes out the older one, never itself.
        let added = t.add(&id("192.0.2.3"), 5.0, &long, &[], 1, &l);
        assert_eq!((added.retry, added.evicted), (2, 1));
        assert_eq!(t.order(), [id("192.0.2.3")]);
        // Short lines fill the table up to the count cap again; the byte
        // count follows every removal.
        assert_eq!(t.cleanup(10.0), 1);
        assert_eq!(t.bytes, 0);
        for i in 0..10 {
            let s = format!("192.0.2.{}", 10 + i);
            t.add(&id(&s), 20.0 + i as f64, &m("short line"), &[], 1, &l);
        }
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn cap_evicts_least_recently_failed() {
        let mut t = FailureTable::new();
        let l = Limits { cap: 3, ..limits() };
        for (i, s) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            t.add(&id(s), i as f64, &[], &[], 1, &l);
        }
        t.add(&id("192.0.2.1"), 5.0, &[], &[], 1, &l);
        let added = t.add(&id("192.0.2.4"), 6.0, &[], &[], 1, &l);
        assert_eq!(added.evicted, 1);
        assert_eq!(
            t.order(),
            [id("192.0.2.3"), id("192.0.2.1"), id("192.0.2.4")]
        );
        assert_eq!(t.get(&id("192.0.2.1")).unwrap().retry, 2);
        let shrunk = Limits { cap: 1, ..l };
        assert_eq!(
            t.add(&id("192.0.2.5"), 7.0, &[], &[], 1, &shrunk).evicted,
            3
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn compaction_keeps_order_and_index() {
        let mut t = FailureTable::new();
        let l = Limits {
            cap: 10_000,
            ..limits()
        };
        for i in 0..2000u32 {
            let a = std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i),
            );
            t.add(
                &BanId::from(std::net::IpAddr::V6(a)),
                f64::from(i),
                &m("line"),
                &[],
                1,
                &l,
            );
        }
        assert_eq!(t.cleanup(1899.0), 1900);
        assert_eq!(t.slots.len(), 100);
        let first = BanId::parse("2001:db8::76c");
        assert_eq!(t.order()[0], first);
        assert_eq!(t.add(&first, 2000.0, &[], &[], 1, &l).retry, 2);
        assert_eq!(t.order().last(), Some(&first));
    }
}
