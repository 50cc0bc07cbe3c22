//! Finds failures in log lines: Fail2ban's regex dialect and tags translated to
//! PCRE2 (JIT), a literal prefilter that rejects most lines cheaply, date
//! detection, `prefregex`, multi-line windows and failure ids.

use std::net::IpAddr;

/// One failure found by a filter.
#[derive(Debug, Clone, PartialEq)]
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
}

pub mod date;
pub mod pcre;
