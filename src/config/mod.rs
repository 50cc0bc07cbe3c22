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

/// An action of a jail after layering, parameters and `%()` interpolation.
#[derive(Debug, Clone, Default)]
pub struct ActionDef {
    /// The action's name in its jail (`actname`, else the action.d file name).
    pub name: String,
    /// The action.d file it was read from (`nftables-multiport`).
    pub file: String,
    /// Options in Fail2ban's order: the `[Definition]` commands (`actionstart`,
    /// `actionban`, ...), then the `[Init]` values and parameters, conditional
    /// values under their full key (`addr_set?family=inet6`). Runtime tags
    /// (`<ip>`, `<addr_set>`, `<known/chain>`) are still in the text.
    pub options: Vec<(String, String)>,
}

impl ActionDef {
    /// The value of option `key` (exact key, conditional keys included).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}
