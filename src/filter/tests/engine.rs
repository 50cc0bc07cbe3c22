//! Engine behaviour with inline regexes and lines: tags, failure ids,
//! prefregex, ignoreregex, check-all, multi-line windows, `<F-MLFID>`
//! connections, time checks, bad input.

use super::NOW;
use crate::config::{FilterDef, UseDns};
use crate::filter::dns::StaticResolver;
use crate::filter::{decode_line, Failure, Filter, FilterOptions, RegexReport, ReportOptions};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

fn def(fail: &[&str]) -> FilterDef {
    FilterDef {
        name: "test".into(),
        failregex: fail.iter().map(|s| s.to_string()).collect(),
        maxlines: 1,
        usedns: UseDns::Warn,
        ..FilterDef::default()
    }
}

/// The server's options with a fixed clock.
fn server() -> FilterOptions {
    FilterOptions {
        now: Some(NOW),
        ..FilterOptions::server(600.0)
    }
}

/// `fail2ban-regex`'s options with a fixed clock.
fn tool() -> FilterOptions {
    FilterOptions {
        now: Some(NOW),
        ..FilterOptions::regex_tool()
    }
}

fn build(d: &FilterDef, opts: FilterOptions) -> Filter {
    Filter::new(d, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Feeds journal-style lines (no date to find) stamped `NOW`.
fn feed(f: &mut Filter, lines: &[&str]) -> Vec<Failure> {
    let mut out = Vec::new();
    for l in lines {
        f.process_dated("", l, NOW, &mut out);
    }
    out
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn data<'a>(f: &'a Failure, k: &str) -> Option<&'a str> {
    f.data.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn host_tag_reads_addresses() {
    let mut f = build(
        &def(&[r"^auth failed from <HOST>(?: port \d+)?$"]),
        server(),
    );
    let out = feed(
        &mut f,
        &[
            "auth failed from 192.0.2.10 port 22",
            "auth failed from [2001:DB8::a]",
            "auth failed from ::ffff:198.51.100.7",
            "auth failed from 2001:db8:0:0:0:0:0:1",
            "auth succeeded from 192.0.2.11",
        ],
    );
    let ids: Vec<(&str, Option<IpAddr>)> = out.iter().map(|f| (f.fid.as_str(), f.addr)).collect();
    assert_eq!(
        ids,
        [
            ("192.0.2.10", ip("192.0.2.10")),
            ("2001:db8::a", ip("2001:db8::a")),
            ("198.51.100.7", ip("198.51.100.7")),
            ("2001:db8::1", ip("2001:db8::1")),
        ]
    );
    assert_eq!(out[0].matches, ["auth failed from 192.0.2.10 port 22"]);
    assert_eq!(data(&out[0], "ip4"), Some("192.0.2.10"));
    assert!(out.iter().all(|f| f.time == NOW
        && f.dated
        && !f.nofail
        && !f.pending
        && f.regex == 0));
}

#[test]
fn dns_names_follow_usedns() {
    let resolver = StaticResolver {
        names: [(
            "mail.example.com".to_string(),
            vec!["2001:db8::5".parse().unwrap(), "192.0.2.5".parse().unwrap()],
        )]
        .into(),
    };
    let line = [
        "login failed from mail.example.com",
        "login failed from unknown.example.net",
    ];
    let with = |usedns| FilterOptions {
        usedns: Some(usedns),
        resolver: Arc::new(resolver.clone()),
        ..server()
    };
    let d = def(&[r"^login failed from <HOST>$"]);
    for usedns in [UseDns::Yes, UseDns::Warn] {
        let out = feed(&mut build(&d, with(usedns)), &line);
        let ids: Vec<&str> = out.iter().map(|f| f.fid.as_str()).collect();
        assert_eq!(ids, ["192.0.2.5", "2001:db8::5"], "{usedns:?}");
    }
    // No: `<HOST>` takes addresses only.
    assert!(feed(&mut build(&d, with(UseDns::No)), &line).is_empty());
    // Raw: the name is the id, never resolved.
    let out = feed(&mut build(&d, with(UseDns::Raw)), &line);
    let ids: Vec<(&str, Option<IpAddr>)> = out.iter().map(|f| (f.fid.as_str(), f.addr)).collect();
    assert_eq!(
        ids,
        [("mail.example.com", None), ("unknown.example.net", None)]
    );
    // A dotted IPv4 caught by `<DNS>` is taken as an address even without DNS.
    let d = def(&[r"^peer <DNS>$"]);
    let out = feed(
        &mut build(&d, with(UseDns::No)),
        &["peer 192.0.2.77", "peer mail.example.com"],
    );
    assert_eq!(
        out.iter().map(|f| f.fid.as_str()).collect::<Vec<_>>(),
        ["192.0.2.77"]
    );
}

#[test]
fn failure_id_comes_from_fid_then_address() {
    let d = def(&[
        r"^session <F-ID>\S+</F-ID> from <ADDR>$",
        r"^token <F-ID/>$",
        r"^user <F-USER>\w+</F-USER> from <HOST>$",
    ]);
    let out = feed(
        &mut build(&d, server()),
        &[
            "session ab12 from 192.0.2.20",
            "session 192.0.2.21 from 192.0.2.21",
            "token [2001:db8::9]",
            "token x/y",
        ],
    );
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(
        (out[0].fid.as_str(), out[0].ip.as_deref(), out[0].addr),
        ("ab12", Some("192.0.2.20"), ip("192.0.2.20"))
    );
    assert_eq!(
        (out[1].fid.as_str(), out[1].ip.as_deref()),
        ("192.0.2.21", None)
    );
    assert_eq!(
        (out[2].fid.as_str(), out[2].addr),
        ("2001:db8::9", ip("2001:db8::9"))
    );
    // `x/y` is no id Fail2ban can read: the line fails, nothing is reported.
    let out = feed(
        &mut build(
            &d,
            FilterOptions {
                raw_hosts: true,
                ..server()
            },
        ),
        &["token x/y", "token [::1]"],
    );
    assert_eq!(
        out.iter().map(|f| f.fid.as_str()).collect::<Vec<_>>(),
        ["x/y", "[::1]"]
    );
}

#[test]
fn subnets_and_cidr() {
    let d = def(&[r"^block <SUBNET>$", r"^net <ADDR>/<CIDR>$"]);
    let out = feed(
        &mut build(&d, server()),
        &[
            "block 192.0.2.77/24",
            "block 2001:db8::1/64",
            "net 198.51.100.9/32",
            "block 192.0.2.5",
        ],
    );
    let got: Vec<(&str, Option<IpAddr>, Option<u8>)> = out
        .iter()
        .map(|f| (f.fid.as_str(), f.addr, f.prefix_len))
        .collect();
    assert_eq!(
        got,
        [
            ("192.0.2.0/24", ip("192.0.2.0"), Some(24)),
            ("2001:db8::/64", ip("2001:db8::"), Some(64)),
            ("198.51.100.9", ip("198.51.100.9"), None),
            ("192.0.2.5", ip("192.0.2.5"), None),
        ]
    );
}

#[test]
fn regex_without_failure_id_is_a_config_error() {
    let e = Filter::new(&def(&[r"^x <HOST>$", r"^no id here$"]), server())
        .err()
        .unwrap();
    assert_eq!(
        (e.option, e.message.as_str()),
        (
            "failregex",
            "filter 'test': failregex #2: No failure-id group in '^no id here$'"
        )
    );
    let e = Filter::new(&def(&[r"^x (<HOST>$"]), server())
        .err()
        .unwrap();
    assert!(
        e.message
            .starts_with("filter 'test': failregex #1: Unable to compile regular expression '^x ("),
        "{e}"
    );
    let mut d = def(&[r"^x <HOST>$"]);
    d.ignoreregex = vec!["(?P<a>".into()];
    let e = Filter::new(&d, server()).err().unwrap();
    assert_eq!(e.option, "ignoreregex");
    assert!(e.message.starts_with("filter 'test': ignoreregex #1:"));
    // A prefregex with an id makes failregexes without one valid.
    let mut d = def(&[r"^denied$"]);
    d.prefregex = Some(r"^<HOST> <F-CONTENT>.+</F-CONTENT>$".into());
    let out = feed(
        &mut build(&d, server()),
        &["192.0.2.30 denied", "192.0.2.31 allowed"],
    );
    assert_eq!(
        out.iter().map(|f| f.fid.as_str()).collect::<Vec<_>>(),
        ["192.0.2.30"]
    );
}

#[test]
fn first_match_wins_unless_check_all() {
    let d = def(&[
        r"from <HOST>",
        r"failed .* from <ADDR>",
        r"^nothing <HOST>$",
    ]);
    let line = ["failed login from 192.0.2.40"];
    let out = feed(&mut build(&d, server()), &line);
    assert_eq!(out.iter().map(|f| f.regex).collect::<Vec<_>>(), [0]);
    let out = feed(&mut build(&d, tool()), &line);
    assert_eq!(out.iter().map(|f| f.regex).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn ignoreregex_cancels_a_match() {
    // Few ignoreregexes: tried after a failregex matched.
    let mut d = def(&[r"failed from <HOST>"]);
    d.ignoreregex = vec![r"from 192\.0\.2\.1\b".into()];
    let mut f = build(&d, server());
    let mut out = Vec::new();
    let r = f.process_dated("", "failed from 192.0.2.1", NOW, &mut out);
    assert!(out.is_empty() && r.ignored && f.ignore_hits() == [0]);
    let r = f.process_dated("", "failed from 192.0.2.100", NOW, &mut out);
    assert!(out.len() == 1 && !r.ignored && f.ignore_hits().is_empty());
    // Many failregexes: the ignoreregexes are tried first, on every line.
    d.failregex = vec![
        r"a <HOST>".into(),
        r"b <HOST>".into(),
        r"c <HOST>".into(),
        r"d <HOST>".into(),
    ];
    d.ignoreregex = vec![r"^skip".into()];
    let mut f = build(&d, server());
    let mut out = Vec::new();
    assert!(f.process_dated("", "skip this line", NOW, &mut out).ignored);
    assert!(
        f.process_dated("", "skip a 192.0.2.1", NOW, &mut out)
            .ignored
    );
    f.process_dated("", "c 192.0.2.2", NOW, &mut out);
    assert_eq!(out.iter().map(|f| f.regex).collect::<Vec<_>>(), [2]);
}

#[test]
fn prefregex_content_and_groups() {
    let mut d = def(&[
        r"^Failed for <F-USER>\S+</F-USER> from <HOST>$",
        r"^Bad <F-ALT_USER>\w+</F-ALT_USER> <F-PORT>\d+</F-PORT> <F-MYTAG>\w+</F-MYTAG> <HOST>",
    ]);
    d.prefregex = Some(r"^<F-DAEMON>\w+</F-DAEMON>\[\d+\]: <F-CONTENT>.+</F-CONTENT>$".into());
    let mut f = build(&d, server());
    let mut out = Vec::new();
    let r = f.process_dated(
        "",
        "sshd[7]: Failed for root from 192.0.2.50",
        NOW,
        &mut out,
    );
    assert!(r.prefregex && r.failures == 1);
    let r = f.process_dated(
        "",
        "no prefix: Failed for root from 192.0.2.51",
        NOW,
        &mut out,
    );
    assert!(!r.prefregex && r.failures == 0);
    f.process_dated("", "ftpd[8]: Bad eve 21 zap 192.0.2.52", NOW, &mut out);
    assert_eq!(out.len(), 2);
    let keys = |f: &Failure| f.data.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&out[0]), ["daemon", "user", "ip4"]);
    assert_eq!(
        (data(&out[0], "daemon"), data(&out[0], "user")),
        (Some("sshd"), Some("root"))
    );
    assert_eq!(
        keys(&out[1]),
        ["daemon", "alt_user", "fport", "mytag", "ip4", "user"]
    );
    assert_eq!(
        (
            data(&out[1], "user"),
            data(&out[1], "fport"),
            data(&out[1], "mytag")
        ),
        (Some("eve"), Some("21"), Some("zap"))
    );
    assert_eq!(out[1].matches, ["ftpd[8]: Bad eve 21 zap 192.0.2.52"]);
}

/// sshd-style connection lines: one id (`sshd[pid]`) collects the lines.
fn sshd_like() -> FilterDef {
    let mut d = def(&[
        r"^<F-NOFAIL>Connection from</F-NOFAIL> <HOST> port \d+$",
        r"^Failed password for <F-USER>\S+</F-USER> from <HOST> port \d+$",
        r"^Invalid user <F-USER>\S+</F-USER>$",
        r"^<F-MLFFORGET>Disconnecting</F-MLFFORGET>: Too many authentication failures$",
        r"^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST> port \d+$",
    ]);
    d.prefregex = Some(r"^<F-MLFID>sshd\[\d+\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$".into());
    d
}

#[test]
fn mlfid_connection_collects_lines() {
    let lines = [
        "sshd[1]: Connection from 192.0.2.60 port 5000",
        "sshd[1]: Invalid user bob",
        "sshd[1]: Disconnecting: Too many authentication failures",
        "sshd[1]: Invalid user eve",
    ];
    // Server: the connection line gives the address, no failure.
    let out = feed(&mut build(&sshd_like(), server()), &lines);
    let got: Vec<(&str, &[String], &[String])> = out
        .iter()
        .map(|f| (f.fid.as_str(), &f.matches[..], &f.users[..]))
        .collect();
    assert_eq!(
        got,
        [
            (
                "192.0.2.60",
                &[lines[0].to_string(), lines[1].to_string()][..],
                &["bob".to_string()][..]
            ),
            (
                "192.0.2.60",
                &[lines[2].to_string()][..],
                &["bob".to_string()][..]
            ),
        ]
    );
    // Check-all (fail2ban-regex): the no-fail and pending entries show too.
    let out = feed(&mut build(&sshd_like(), tool()), &lines);
    let got: Vec<(&str, bool, bool)> = out
        .iter()
        .map(|f| (f.fid.as_str(), f.nofail, f.pending))
        .collect();
    assert_eq!(
        got,
        [
            ("192.0.2.60", true, false),
            ("192.0.2.60", false, false),
            ("192.0.2.60", false, false),
            ("", false, true)
        ]
    );
}

#[test]
fn mlfid_gained_login_forgets_pending_failures() {
    let accepted = "sshd[2]: Accepted password for bob from 192.0.2.61 port 22";
    let out = feed(
        &mut build(&sshd_like(), server()),
        &["sshd[2]: Invalid user bob", accepted],
    );
    assert!(out.is_empty(), "{out:?}");
    let out = feed(
        &mut build(&sshd_like(), tool()),
        &["sshd[2]: Invalid user bob", accepted],
    );
    let got: Vec<(&str, bool, bool)> = out
        .iter()
        .map(|f| (f.fid.as_str(), f.nofail, f.pending))
        .collect();
    assert_eq!(got, [("", false, true), ("192.0.2.61", true, false)]);
    // Several users on one connection: the login does not excuse them.
    let lines = [
        "sshd[3]: Invalid user a",
        "sshd[3]: Invalid user b",
        "sshd[3]: Accepted password for c from 192.0.2.62 port 22",
    ];
    let out = feed(&mut build(&sshd_like(), server()), &lines);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].fid.as_str(), &out[0].users[..], &out[0].matches[..]),
        (
            "192.0.2.62",
            &["a".to_string(), "b".into(), "c".into()][..],
            &[lines[2].to_string()][..]
        )
    );
    assert!(!out[0].nofail);
}

#[test]
fn skiplines_in_a_multi_line_window() {
    let mut d = def(&[r"^first <HOST><SKIPLINES>third$"]);
    d.maxlines = 3;
    let mut f = build(&d, server());
    let out = feed(&mut f, &["first 192.0.2.70", "noise", "third"]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].matches, ["first 192.0.2.70", "third"]);
    // The skipped line stays in the window, the matched ones leave it.
    assert_eq!(f.window_texts(), ["noise"]);
    let out = feed(&mut f, &["unrelated"]);
    assert!(out.is_empty());
    assert_eq!(f.window_texts(), ["noise", "unrelated"]);
}

#[test]
fn multi_line_report_counts_taken_lines_as_matched() {
    let mut d = def(&[r"^a <HOST>\nb$"]);
    d.maxlines = 2;
    let mut f = build(&d, tool());
    let mut report = RegexReport::new(
        &f,
        ReportOptions {
            print_all_missed: true,
            ..ReportOptions::default()
        },
    );
    for l in ["a 192.0.2.80", "b", "# comment", "", "c"] {
        report.line(&mut f, l);
    }
    assert_eq!(report.summary(), "3 lines, 0 ignored, 2 matched, 1 missed");
    assert_eq!(report.missed_lines, ["c"]);
    assert_eq!(
        report.failregex[0]
            .iter()
            .map(|h| h.fid.as_str())
            .collect::<Vec<_>>(),
        ["192.0.2.80"]
    );
}

#[test]
fn nofail_lines_count_as_ignored_in_the_report() {
    let mut f = build(&sshd_like(), tool());
    let mut report = RegexReport::new(&f, ReportOptions::default());
    for l in [
        "sshd[1]: Connection from 192.0.2.60 port 5000",
        "sshd[1]: Invalid user bob",
        "sshd[1]: other",
        "x",
    ] {
        report.line(&mut f, l);
    }
    assert_eq!(report.summary(), "4 lines, 1 ignored, 1 matched, 2 missed");
    assert_eq!(report.prefregex, 3);
    assert_eq!(
        report.failregex.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 0, 1, 0, 0]
    );
}

#[test]
fn prefilter_rejects_without_changing_results() {
    let d = sshd_like();
    let (mut with, mut without) = super::with_and_without_prefilter(&d, server());
    assert!(with.prefilter_rejects() && !without.prefilter_rejects());
    let lines = [
        "sshd[4]: Connection from 192.0.2.90 port 1",
        "sshd[4]: Server listening on 0.0.0.0",
        "cron[5]: (root) CMD (run-parts /etc/cron.hourly)",
        "sshd[4]: Failed password for root from 192.0.2.90 port 2",
        "sshd[4]: FAILED PASSWORD for root from 192.0.2.90 port 2",
    ];
    let mut rejected = 0;
    for l in lines {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = with.process_dated("", l, NOW, &mut a);
        let rb = without.process_dated("", l, NOW, &mut b);
        assert_eq!(a, b, "{l}");
        assert_eq!((ra.failures, ra.ignored), (rb.failures, rb.ignored), "{l}");
        rejected += ra.rejected as usize;
    }
    // The listening, cron and upper-case lines.
    assert_eq!(rejected, 3);
    // The literals are what the scan looks for.
    assert!(
        with.prefilter()
            .literals()
            .iter()
            .any(|l| l.text == "Failed password for "),
        "{:?}",
        with.prefilter().literals()
    );
}

#[test]
fn case_insensitive_literals_are_never_missed() {
    let d = def(&[
        r"(?i)user unknown from <HOST>",
        r"((?i)bad) login from <HOST>",
        r"(?i:ask) <HOST>",
    ]);
    let out = feed(
        &mut build(&d, tool()),
        &[
            "USER Unknown from 192.0.2.1",
            "BAD login from 192.0.2.2",
            "bad LOGIN from 192.0.2.3",
            "A\u{17f}\u{212a} 192.0.2.4",
            "a\u{17f}k 192.0.2.5",
        ],
    );
    assert_eq!(
        out.iter().map(|f| f.fid.as_str()).collect::<Vec<_>>(),
        ["192.0.2.1", "192.0.2.2", "192.0.2.4", "192.0.2.5"]
    );
}

#[test]
fn time_checks_of_the_server() {
    let d = def(&[r"fail <HOST>"]);
    let mut f = build(&d, server());
    let mut out = Vec::new();
    // Reading the backlog at start: lines older than findtime are skipped.
    f.set_in_operation(false);
    let r = f.process_dated("Jan 1 ", "fail 192.0.2.1", NOW - 601.0, &mut out);
    assert!(r.skipped && out.is_empty());
    f.process_dated("Jan 1 ", "fail 192.0.2.2", NOW - 599.0, &mut out);
    assert_eq!(out[0].time, NOW - 599.0);
    // In operation: a date far from now is taken as now.
    f.set_in_operation(true);
    out.clear();
    f.process_dated("", "fail 192.0.2.3", NOW + 3600.0, &mut out);
    f.process_dated("", "fail 192.0.2.4", NOW - 30.0, &mut out);
    f.process_dated("", "fail 192.0.2.5", NOW + 30.0, &mut out);
    assert_eq!(
        out.iter().map(|f| f.time).collect::<Vec<_>>(),
        [NOW, NOW - 30.0, NOW]
    );
    // fail2ban-regex keeps dates as they are.
    let mut f = build(&d, tool());
    out.clear();
    f.process_dated("", "fail 192.0.2.5", 1000.0, &mut out);
    assert_eq!(out[0].time, 1000.0);
}

#[test]
fn lines_without_a_date() {
    let d = def(&[r"fail <HOST>"]);
    let mut out = Vec::new();
    // The server stamps them now; fail2ban-regex reports them undated.
    build(&d, server()).process_line("fail 192.0.2.1", &mut out);
    build(&d, tool()).process_line("fail 192.0.2.2", &mut out);
    assert_eq!(
        out.iter().map(|f| (f.time, f.dated)).collect::<Vec<_>>(),
        [(NOW, true), (NOW, false)]
    );
}

/// Collects the warnings logged while `f` runs.
fn warnings(f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let s2 = sink.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || s2.clone())
        .finish();
    tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_string).collect()
}

#[test]
fn huge_and_hostile_lines_end_with_one_warning() {
    let d = FilterDef {
        name: "hostile".into(),
        ..def(&[r"^(\w+\s?)*$ <HOST>", r"^x (a|aa)+$ <HOST>", r"fail <HOST>"])
    };
    let mut f = build(&d, server());
    let big = "word ".repeat(2 << 20) + "!";
    let mut out = Vec::new();
    let logged = warnings(|| {
        f.process_dated("", &big, NOW, &mut out);
        f.process_dated("", &format!("x {}b", "a".repeat(100_000)), NOW, &mut out);
        f.process_dated("", &format!("{big} fail 192.0.2.1"), NOW, &mut out);
    });
    let limits: Vec<&String> = logged.iter().filter(|l| l.contains("gave up")).collect();
    assert_eq!(limits.len(), 1, "{logged:#?}");
    assert!(limits[0].contains("[hostile]"), "{}", limits[0]);
    // The plain regex still finds the failure at the end of a 10 MB line.
    assert_eq!(
        out.iter().map(|f| f.fid.as_str()).collect::<Vec<_>>(),
        ["192.0.2.1"]
    );
}

#[test]
fn nul_bytes_and_undecodable_bytes() {
    let d = def(&[r"user <F-USER>\S+</F-USER> from <HOST>", r"id <F-ID/>"]);
    let mut f = build(&d, server());
    let raw = b"user ro\0ot\xff\xfe from 192.0.2.9";
    let line = decode_line(raw);
    assert!(matches!(line, Cow::Owned(_)));
    assert_eq!(line, "user ro\0ot\u{fffd}\u{fffd} from 192.0.2.9");
    let mut out = Vec::new();
    f.process_dated("", &line, NOW, &mut out);
    assert_eq!(data(&out[0], "user"), Some("ro\0ot\u{fffd}\u{fffd}"));
    // Fail2ban cannot read an id with a NUL byte: the line fails, no panic.
    out.clear();
    f.process_dated("", "id a\0b", NOW, &mut out);
    assert!(out.is_empty());
    assert!(matches!(
        decode_line(b"plain line"),
        Cow::Borrowed("plain line")
    ));
    assert_eq!(decode_line(b"a\xf0\x9f\x98b\xc3"), "a\u{fffd}b\u{fffd}");
}

mod alloc {
    //! Counts the allocations of the current thread.
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    pub struct Counting;

    // SAFETY: forwards to the system allocator; only counts.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            System.alloc(layout)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            System.realloc(ptr, layout, size)
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn count() -> usize {
        COUNT.with(Cell::get)
    }
}

#[test]
fn the_miss_path_allocates_nothing() {
    let misses = [
        "cron[5]: (root) CMD (run-parts /etc/cron.hourly)",
        "sshd[4]: Server listening on 0.0.0.0 port 22.",
        "sshd[4]: Failed password for",
        "sshd[9]: Connection from nowhere",
    ];
    let mut window = sshd_like();
    window.maxlines = 3;
    for d in [sshd_like(), window] {
        for opts in [
            server(),
            tool(),
            FilterOptions {
                prefilter: false,
                ..server()
            },
        ] {
            let mut f = build(&d, opts);
            let mut out = Vec::with_capacity(4);
            // Lines whose date the filter finds itself, a new second each.
            let dated: Vec<String> = (0..4)
                .flat_map(|s| misses.map(|l| format!("Jan 10 00:00:0{s} host {l}")))
                .collect();
            // Warm up: buffers grow to the longest line once.
            for l in misses.iter().chain(misses.iter()) {
                f.process_dated("Jan 10 00:00:00", l, NOW, &mut out);
                f.process_line(l, &mut out);
            }
            for l in &dated {
                f.process_line(l, &mut out);
            }
            assert!(out.is_empty(), "{out:?}");
            let before = alloc::count();
            for _ in 0..100 {
                for l in misses {
                    f.process_dated("Jan 10 00:00:00", l, NOW, &mut out);
                }
                for l in &dated {
                    f.process_line(l, &mut out);
                }
            }
            assert_eq!(alloc::count() - before, 0, "maxlines {}", d.maxlines);
            assert!(out.is_empty());
            // The counter does count: a failure allocates. (The prefregex is
            // not multi-line: it only matches a window of one line.)
            if d.maxlines == 1 {
                f.process_dated(
                    "",
                    "sshd[1]: Failed password for x from 192.0.2.1 port 1",
                    NOW,
                    &mut out,
                );
                assert!(out.len() == 1 && alloc::count() > before);
            }
        }
    }
}
