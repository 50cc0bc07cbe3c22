//! Finds failures in log lines: Fail2ban's regex dialect and tags translated to
//! PCRE2 (JIT), a literal prefilter that rejects most lines cheaply, date
//! detection, `prefregex`, multi-line windows and failure ids.
//!
//! [`Filter`] is the entry point (one per jail); [`RegexReport`] keeps the
//! statistics `fail2ban-regex` prints. Inside: `tags` (Fail2ban's `<HOST>`,
//! `<F-*>` tags), `pyre` (Python `re` syntax to PCRE2), `compiled` (one regex
//! and its groups), `prefilter`, `addr` (failure ids as Fail2ban reads and
//! prints them), `dns`, `engine` (the per-line logic).

use std::borrow::Cow;
use std::net::IpAddr;

/// One failure found by a filter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Failure {
    /// The failure id the jail counts: the address, or `<F-ID>`, or a DNS name.
    pub fid: String,
    /// The address when the id is one (IPv4-mapped IPv6 folded to IPv4).
    pub addr: Option<IpAddr>,
    /// Epoch seconds of the failure (the line's date, or now).
    pub time: f64,
    /// The log lines that make up the failure.
    pub matches: Vec<String>,
    /// Named captures under Fail2ban's names (`user`, `ip4`, `ip6`, `dns`,
    /// `fid`, custom `F-NAME` tags lower-cased), in capture order.
    pub data: Vec<(String, String)>,
    /// A `<F-NOFAIL>` match: carries data, is not counted as a failure.
    pub nofail: bool,
    /// The index of the failregex that matched.
    pub regex: usize,
    /// The prefix length when the id is a network (`<SUBNET>`, `/24`).
    pub prefix_len: Option<u8>,
    /// The address text when the failure id is something else (`<F-ID>`
    /// with `<HOST>`): Fail2ban's `ip` entry, the `<ip>` of actions.
    pub ip: Option<String>,
    /// The distinct users of a multi-line connection (`<F-USER>`).
    pub users: Vec<String>,
    /// A multi-line match with no failure id yet (`fid` empty); only with
    /// check-all or without `ignore_pending`.
    pub pending: bool,
    /// False when the line had no date (`fail2ban-regex`): `time` is then now.
    pub dated: bool,
}

/// Decodes a log line: borrowed when it is valid UTF-8, else with each
/// invalid sequence replaced by U+FFFD as Python's `errors='replace'` does.
pub fn decode_line(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` checks ASCII a word at a time; the lossy path is slower.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

mod addr;
mod compiled;
pub mod date;
pub mod dns;
mod engine;
pub mod pcre;
mod prefilter;
mod pyre;
mod report;
pub mod tags;

#[cfg(test)]
mod tests;

pub use engine::{Filter, FilterError, FilterOptions, LineResult};
pub use prefilter::{Hits, Literal, Prefilter};
pub use report::{Hit, RegexReport, ReportOptions};
