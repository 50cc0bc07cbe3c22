//! `fail2ban-regex`'s command line as Python's optparse reads it: long
//! options abbreviated to any unique prefix, `--opt=value` or `--opt value`,
//! short flags combined (`-vr`, `-L5`), options anywhere between the words.

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub config: String,
    pub datepattern: Option<String>,
    pub timezone: Option<String>,
    pub encoding: String,
    pub raw: bool,
    pub usedns: Option<String>,
    /// `-L`; 0 when not given.
    pub maxlines: usize,
    pub journalmatch: Option<String>,
    /// `-l`; empty when not given.
    pub log_level: String,
    pub verbose: i64,
    pub verbose_date: bool,
    pub debuggex: bool,
    pub check_all: bool,
    pub out: Option<String>,
    pub print_no_missed: bool,
    pub print_no_ignored: bool,
    pub print_all_matched: bool,
    pub print_all_missed: bool,
    pub print_all_ignored: bool,
    /// logban: one JSON object per failure instead of the report.
    pub json: bool,
    /// logban: the "now" of year inference and `{NONE}` (epoch seconds).
    pub now: Option<f64>,
    /// LOG, REGEX and the optional IGNOREREGEX.
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: "/etc/fail2ban".into(),
            datepattern: None,
            timezone: None,
            encoding: "UTF-8".into(),
            raw: false,
            usedns: None,
            maxlines: 0,
            journalmatch: None,
            log_level: String::new(),
            verbose: 0,
            verbose_date: false,
            debuggex: false,
            check_all: true,
            out: None,
            print_no_missed: false,
            print_no_ignored: false,
            print_all_matched: false,
            print_all_missed: false,
            print_all_ignored: false,
            json: false,
            now: None,
            args: Vec::new(),
        }
    }
}

/// The outcome of parsing.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Box<Options>),
    /// Print this on stdout and exit 0 (`--help`, `--version`, `-V`).
    Print(String),
    /// A usage error: optparse's message (printed after the usage line, exit 2).
    Usage(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Opt {
    Config,
    DatePattern,
    TimeZone,
    Encoding,
    Raw,
    UseDns,
    MaxLines,
    JournalMatch,
    LogLevel,
    ShortVersion,
    Verbose,
    Verbosity,
    VerboseDate,
    Debuggex,
    NoCheckAll,
    Out,
    PrintNoMissed,
    PrintNoIgnored,
    PrintAllMatched,
    PrintAllMissed,
    PrintAllIgnored,
    LogTraceback,
    FullTraceback,
    Help,
    Version,
    Json,
    Now,
}

/// (short, long names, takes a value, option, help text)
type Spec = (
    Option<char>,
    &'static [&'static str],
    Option<&'static str>,
    Opt,
    &'static str,
);

const SPECS: &[Spec] = &[
    (
        None,
        &["version"],
        None,
        Opt::Version,
        "show the version and exit",
    ),
    (
        Some('h'),
        &["help"],
        None,
        Opt::Help,
        "show this help and exit",
    ),
    (
        Some('c'),
        &["config"],
        Some("CONFIG"),
        Opt::Config,
        "configuration directory (default /etc/fail2ban)",
    ),
    (
        Some('d'),
        &["datepattern"],
        Some("DATEPATTERN"),
        Opt::DatePattern,
        "date pattern instead of the filter's",
    ),
    (
        None,
        &["timezone", "TZ"],
        Some("TIMEZONE"),
        Opt::TimeZone,
        "time zone of dates without one (logtimezone)",
    ),
    (
        Some('e'),
        &["encoding"],
        Some("ENCODING"),
        Opt::Encoding,
        "log encoding: UTF-8 (default), latin-1 or ascii",
    ),
    (
        Some('r'),
        &["raw"],
        None,
        Opt::Raw,
        "take host text as is, never resolve it",
    ),
    (
        None,
        &["usedns"],
        Some("USEDNS"),
        Opt::UseDns,
        "what <HOST> matches: yes, warn, no, raw",
    ),
    (
        Some('L'),
        &["maxlines"],
        Some("MAXLINES"),
        Opt::MaxLines,
        "lines in the multi-line window",
    ),
    (
        Some('m'),
        &["journalmatch"],
        Some("JOURNALMATCH"),
        Opt::JournalMatch,
        "accepted, no effect (the journal is not read)",
    ),
    (
        Some('l'),
        &["log-level"],
        Some("LOG_LEVEL"),
        Opt::LogLevel,
        "level of log messages on stderr (default warning)",
    ),
    (
        Some('V'),
        &[],
        None,
        Opt::ShortVersion,
        "print the version in short form and exit",
    ),
    (
        Some('v'),
        &["verbose"],
        None,
        Opt::Verbose,
        "more detail (repeatable)",
    ),
    (
        None,
        &["verbosity"],
        Some("VERBOSE"),
        Opt::Verbosity,
        "set the verbosity (0..4)",
    ),
    (
        None,
        &["verbose-date", "VD"],
        None,
        Opt::VerboseDate,
        "show the date templates' weights and regexes",
    ),
    (
        Some('D'),
        &["debuggex"],
        None,
        Opt::Debuggex,
        "accepted, not supported (a warning says so)",
    ),
    (
        None,
        &["no-check-all"],
        None,
        Opt::NoCheckAll,
        "stop at the first failregex that matches",
    ),
    (
        Some('o'),
        &["out"],
        Some("OUT"),
        Opt::Out,
        "print only this of each failure (id, ip, msg, row, a tag, or a template with <tags>)",
    ),
    (
        None,
        &["print-no-missed"],
        None,
        Opt::PrintNoMissed,
        "do not print missed lines",
    ),
    (
        None,
        &["print-no-ignored"],
        None,
        Opt::PrintNoIgnored,
        "do not print ignored lines",
    ),
    (
        None,
        &["print-all-matched"],
        None,
        Opt::PrintAllMatched,
        "print every matched line",
    ),
    (
        None,
        &["print-all-missed"],
        None,
        Opt::PrintAllMissed,
        "print every missed line",
    ),
    (
        None,
        &["print-all-ignored"],
        None,
        Opt::PrintAllIgnored,
        "print every ignored line",
    ),
    (
        Some('t'),
        &["log-traceback"],
        None,
        Opt::LogTraceback,
        "accepted, no effect",
    ),
    (
        None,
        &["full-traceback"],
        None,
        Opt::FullTraceback,
        "accepted, no effect",
    ),
    (
        None,
        &["json"],
        None,
        Opt::Json,
        "one JSON object per failure (every failregex tried, ids as written: no DNS)",
    ),
    (
        None,
        &["now"],
        Some("EPOCH"),
        Opt::Now,
        "the current time, in seconds since the epoch",
    ),
];

/// The usage line, with the program name as invoked.
pub fn usage(prog: &str) -> String {
    format!("Usage: {prog} [OPTIONS] <LOG> <REGEX> [IGNOREREGEX]")
}

/// The `--help` text.
pub fn help(prog: &str) -> String {
    let mut s = usage(prog);
    s.push_str(
        "

Tests Fail2ban filters (failregex, ignoreregex, datepattern) against a log.

LOG:
  string                a log line given on the command line
  filename              a log file (/var/log/auth.log)

REGEX:
  string                a failregex
  filter                a filter name, with options if any (sshd[mode=aggressive])
  filename              a filter file (filter.d/sshd.conf)

IGNOREREGEX:
  string                an ignoreregex

Options:
",
    );
    for (short, longs, value, _, text) in SPECS {
        let mut names: Vec<String> = Vec::new();
        if let Some(c) = short {
            names.push(match value {
                Some(v) => format!("-{c} {v}"),
                None => format!("-{c}"),
            });
        }
        for l in *longs {
            names.push(match value {
                Some(v) => format!("--{l}={v}"),
                None => format!("--{l}"),
            });
        }
        let names = names.join(", ");
        if names.len() <= 20 {
            s.push_str(&format!("  {names:<22}{text}\n"));
        } else {
            s.push_str(&format!("  {names}\n  {:<22}{text}\n", ""));
        }
    }
    s
}

/// Parses the arguments after the program name.
pub fn parse(prog: &str, args: &[String]) -> Parsed {
    let mut o = Options::default();
    let mut i = 0;
    let mut only_words = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_words || a == "-" || !a.starts_with('-') {
            o.args.push(a.clone());
            continue;
        }
        if a == "--" {
            only_words = true;
            continue;
        }
        let step = if let Some(long) = a.strip_prefix("--") {
            long_option(long, args, &mut i, &mut o)
        } else {
            short_options(&a[1..], args, &mut i, &mut o)
        };
        match step {
            Ok(None) => {}
            Ok(Some(Opt::Help)) => return Parsed::Print(help(prog)),
            Ok(Some(Opt::Version)) => {
                return Parsed::Print(format!("{prog} {}", crate::config::FAIL2BAN_VERSION))
            }
            Ok(Some(_)) => return Parsed::Print(crate::config::FAIL2BAN_VERSION.to_string()),
            Err(e) => return Parsed::Usage(e),
        }
    }
    Parsed::Run(Box::new(o))
}

/// Reads `--name[=value]`; returns an option that ends parsing.
fn long_option(
    long: &str,
    args: &[String],
    i: &mut usize,
    o: &mut Options,
) -> Result<Option<Opt>, String> {
    let (name, inline) = match long.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (long, None),
    };
    let exact = SPECS
        .iter()
        .find(|s| s.1.contains(&name))
        .map(|s| (s, name));
    let spec = match exact {
        Some(x) => x,
        None => {
            let hits: Vec<(&Spec, &str)> = SPECS
                .iter()
                .flat_map(|s| s.1.iter().map(move |l| (s, *l)))
                .filter(|(_, l)| l.starts_with(name))
                .collect();
            match hits.len() {
                0 => return Err(format!("no such option: --{name}")),
                1 => hits[0],
                _ => {
                    let mut all: Vec<String> = hits.iter().map(|(_, l)| format!("--{l}")).collect();
                    all.sort();
                    return Err(format!("ambiguous option: --{name} ({}?)", all.join(", ")));
                }
            }
        }
    };
    let ((_, _, takes, opt, _), full) = spec;
    let value = match (takes, inline) {
        (Some(_), Some(v)) => Some(v),
        (Some(_), None) => {
            let v = args
                .get(*i)
                .cloned()
                .ok_or_else(|| format!("--{full} option requires an argument"))?;
            *i += 1;
            Some(v)
        }
        (None, Some(_)) => return Err(format!("--{full} option does not take a value")),
        (None, None) => None,
    };
    apply(*opt, value, &format!("--{full}"), o)
}

/// Reads a cluster of short flags (`vr`, `L5`, `c` then a value).
fn short_options(
    cluster: &str,
    args: &[String],
    i: &mut usize,
    o: &mut Options,
) -> Result<Option<Opt>, String> {
    for (at, c) in cluster.char_indices() {
        let Some((_, _, takes, opt, _)) = SPECS.iter().find(|s| s.0 == Some(c)) else {
            return Err(format!("no such option: -{c}"));
        };
        let value = if takes.is_some() {
            let rest = &cluster[at + c.len_utf8()..];
            if !rest.is_empty() {
                Some(rest.to_string())
            } else {
                let v = args
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| format!("-{c} option requires an argument"))?;
                *i += 1;
                Some(v)
            }
        } else {
            None
        };
        let done = takes.is_some();
        if let Some(stop) = apply(*opt, value, &format!("-{c}"), o)? {
            return Ok(Some(stop));
        }
        if done {
            break;
        }
    }
    Ok(None)
}

fn int_value(v: &str, name: &str) -> Result<i64, String> {
    v.trim()
        .parse()
        .ok()
        .ok_or_else(|| format!("option {name}: invalid integer value: '{v}'"))
}

fn apply(
    opt: Opt,
    value: Option<String>,
    name: &str,
    o: &mut Options,
) -> Result<Option<Opt>, String> {
    let v = value.unwrap_or_default();
    match opt {
        Opt::Config => o.config = v,
        Opt::DatePattern => o.datepattern = Some(v),
        Opt::TimeZone => o.timezone = Some(v),
        Opt::Encoding => o.encoding = v,
        Opt::Raw => o.raw = true,
        Opt::UseDns => o.usedns = Some(v),
        Opt::MaxLines => {
            let n = int_value(&v, name)?;
            o.maxlines = usize::try_from(n).unwrap_or(0);
        }
        Opt::JournalMatch => o.journalmatch = Some(v),
        Opt::LogLevel => o.log_level = v,
        Opt::Verbose => o.verbose += 1,
        Opt::Verbosity => o.verbose = int_value(&v, name)?,
        Opt::VerboseDate => o.verbose_date = true,
        Opt::Debuggex => o.debuggex = true,
        Opt::NoCheckAll => o.check_all = false,
        Opt::Out => o.out = Some(v),
        Opt::PrintNoMissed => o.print_no_missed = true,
        Opt::PrintNoIgnored => o.print_no_ignored = true,
        Opt::PrintAllMatched => o.print_all_matched = true,
        Opt::PrintAllMissed => o.print_all_missed = true,
        Opt::PrintAllIgnored => o.print_all_ignored = true,
        Opt::LogTraceback | Opt::FullTraceback => {}
        Opt::Json => o.json = true,
        Opt::Now => {
            let t: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite())
                .ok_or_else(|| format!("option {name}: invalid number of seconds: '{v}'"))?;
            o.now = Some(t);
        }
        Opt::Help | Opt::Version | Opt::ShortVersion => return Ok(Some(opt)),
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Options {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match parse("fail2ban-regex", &words) {
            Parsed::Run(o) => *o,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn usage_error(line: &str) -> String {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match parse("fail2ban-regex", &words) {
            Parsed::Usage(e) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn options_mix_with_words_and_combine() {
        let o = run("-vvr log.txt -c/tmp/conf sshd[mode=aggressive] -L 3 --print-all-mat --TZ=UTC");
        assert_eq!(o.verbose, 2);
        assert!(o.raw && o.print_all_matched);
        assert_eq!(o.config, "/tmp/conf");
        assert_eq!(o.maxlines, 3);
        assert_eq!(o.timezone.as_deref(), Some("UTC"));
        assert_eq!(o.args, ["log.txt", "sshd[mode=aggressive]"]);
        let o = run("-d -%Y -- -x y");
        assert_eq!(o.datepattern.as_deref(), Some("-%Y"));
        assert_eq!(o.args, ["-x", "y"]);
        let o = run("--json --now 1124013600 --no-check-all a b");
        assert!(o.json && !o.check_all);
        assert_eq!(o.now, Some(1124013600.0));
    }

    #[test]
    fn errors_read_as_optparse_writes_them() {
        assert_eq!(
            usage_error("--verb a b"),
            "ambiguous option: --verb (--verbose, --verbose-date, --verbosity?)"
        );
        assert_eq!(
            usage_error("-L x a b"),
            "option -L: invalid integer value: 'x'"
        );
        assert_eq!(usage_error("--frob a b"), "no such option: --frob");
        assert_eq!(usage_error("-q"), "no such option: -q");
        assert_eq!(usage_error("a b -c"), "-c option requires an argument");
        assert_eq!(usage_error("--raw=1"), "--raw option does not take a value");
    }

    #[test]
    fn versions_and_help() {
        let p = |a: &str| parse("fail2ban-regex", &[a.to_string()]);
        assert_eq!(p("-V"), Parsed::Print("1.0.2".into()));
        assert_eq!(p("--version"), Parsed::Print("fail2ban-regex 1.0.2".into()));
        match p("--he") {
            Parsed::Print(h) => {
                assert!(h.contains("--print-all-missed") && h.contains("-L MAXLINES"))
            }
            other => panic!("{other:?}"),
        }
    }
}
