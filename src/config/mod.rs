//! Reads a Fail2ban configuration tree (or logban's embedded one) and builds the
//! settings of the server, the jails, their filters and their actions.
//!
//! The INI dialect, `.conf`/`.d/`/`.local` layering, `[INCLUDES]`, `%(x)s`
//! interpolation, `<tag>` substitution and `name[k=v]` parameters all live here;
//! the other modules only see the resolved definitions below.

use std::collections::BTreeMap;

/// How a filter's `<HOST>` tag treats DNS names (`usedns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UseDns {
    Yes,
    #[default]
    Warn,
    No,
    Raw,
}

/// A filter after layering, parameters, `%()` interpolation and `<tag>`
/// substitution. The regexes still hold Fail2ban's match tags (`<HOST>`,
/// `<F-USER>`, ...), which the filter engine expands.
#[derive(Debug, Clone, Default)]
pub struct FilterDef {
    /// The filter's name as given (`postfix`), without parameters.
    pub name: String,
    pub prefregex: Option<String>,
    pub failregex: Vec<String>,
    pub ignoreregex: Vec<String>,
    pub maxlines: usize,
    /// `datepattern`, one pattern per line as in the config (`{^LN-BEG}`), None for the default set.
    pub datepattern: Option<String>,
    /// `journalmatch` terms, each a list of `FIELD=value` joined by `+` in the config.
    pub journalmatch: Vec<String>,
    pub usedns: UseDns,
    /// Every combined option, for `-d` dumps and diagnostics.
    pub options: BTreeMap<String, String>,
}
