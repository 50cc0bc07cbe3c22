use std::process::Command;

use serde_json::json;

use super::*;
use crate::jail::tests::python;

fn id(s: &str) -> BanId {
    BanId::parse(s)
}

fn no_self() -> Ignore {
    Ignore::with_self_addresses(Arc::new(PrefixSet::default()))
}

#[test]
fn prefix_set_smallest_mark_wins() {
    let mut s = PrefixSet::default();
    s.insert("10.0.0.0/8".parse().unwrap(), 5);
    s.insert("10.1.0.0/16".parse().unwrap(), 2);
    s.insert("0.0.0.0/0".parse().unwrap(), 9);
    s.insert("2001:db8::/32".parse().unwrap(), 1);
    s.insert("::ffff:198.51.100.0/120".parse().unwrap(), 0);
    s.insert("::ffff:0:0/80".parse().unwrap(), 0);
    let ip = |a: &str| a.parse::<IpAddr>().unwrap();
    assert_eq!(s.lookup(ip("10.1.2.3")), Some(2));
    assert_eq!(s.lookup(ip("10.2.2.3")), Some(5));
    assert_eq!(s.lookup(ip("192.0.2.1")), Some(9));
    assert_eq!(s.lookup(ip("2001:db8:1::1")), Some(1));
    assert_eq!(s.lookup(ip("2001:db9::1")), None);
    assert_eq!(
        s.lookup(ip("::ffff:10.1.0.1")),
        Some(2),
        "mapped addresses are IPv4"
    );
}

#[test]
fn ignoreip_addresses_networks_names() {
    let mut l = IgnoreList::default();
    l.add_all(
        "127.0.0.1/8 ::1, 192.0.2.5\n2001:db8:1::/48,,198.51.100.0/255.255.255.128 localhost",
    )
    .unwrap();
    assert!(!l.add("192.0.2.5/32").unwrap(), "the same address");
    assert!(!l.add("127.1.2.3/8").unwrap(), "the same network");
    assert_eq!(l.entries().count(), 6);
    let kind = |s: &str| l.lookup(&id(s));
    assert_eq!(kind("127.0.0.2"), Some(EntryKind::Net));
    assert_eq!(kind("::1"), Some(EntryKind::Single));
    assert_eq!(kind("192.0.2.5"), Some(EntryKind::Single));
    assert_eq!(kind("::ffff:192.0.2.5"), Some(EntryKind::Single));
    assert_eq!(kind("192.0.2.6"), None);
    assert_eq!(kind("2001:db8:1:ffff::9"), Some(EntryKind::Net));
    assert_eq!(kind("2001:db8:2::9"), None);
    assert_eq!(kind("198.51.100.127"), Some(EntryKind::Net));
    assert_eq!(kind("198.51.100.128"), None);
    // A network id is inside when its base address is.
    assert_eq!(kind("2001:db8:1:2::/64"), Some(EntryKind::Net));
    assert_eq!(kind("user"), None);
    assert!(l.remove("127.0.0.0/8"));
    assert!(!l.remove("127.0.0.0/8"));
    // localhost (resolved when added) still covers 127.0.0.1.
    assert_eq!(l.lookup(&id("127.0.0.2")), None);
    assert_eq!(l.lookup(&id("127.0.0.1")), Some(EntryKind::Dns));
    let e = l.add("192.0.2.0/33").unwrap_err();
    assert_eq!(
        e.to_string(),
        "ignoreip: invalid address or network \"192.0.2.0/33\": the prefix length is too long"
    );
    assert!(
        l.add("host.invalid").unwrap(),
        "a name that does not resolve is kept"
    );
    assert_eq!(l.lookup(&id("192.0.2.99")), None);
}

#[test]
fn ignoreip_agrees_with_fail2ban() {
    let list = "127.0.0.1/8 ::1 192.0.2.5 2001:db8:1::/48 198.51.100.0/255.255.255.128 ::ffff:203.0.113.9 localhost 203.0.113.64/26";
    let probes = [
        "127.0.0.1",
        "127.9.9.9",
        "128.0.0.1",
        "::1",
        "::2",
        "192.0.2.5",
        "::ffff:192.0.2.5",
        "192.0.2.4",
        "2001:db8:1::1",
        "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
        "2001:db8:2::",
        "198.51.100.1",
        "198.51.100.200",
        "203.0.113.9",
        "203.0.113.64",
        "203.0.113.127",
        "203.0.113.128",
        "someuser",
    ];
    let script = r#"
import sys, json
from fail2ban.server.filter import Filter
from fail2ban.tests.dummyjail import DummyJail
spec = json.loads(sys.stdin.read())
f = Filter(DummyJail())
f.ignoreSelf = False
for e in spec['list'].split():
    f.addIgnoreIP(e)
print(json.dumps([bool(f.inIgnoreIPList(p, log_ignore=False)) for p in spec['probes']]))
"#;
    let theirs: Vec<bool> = serde_json::from_str(&python(
        script,
        &json!({"list": list, "probes": probes}).to_string(),
    ))
    .unwrap();
    let mut ig = no_self();
    ig.ignoreself = false;
    ig.list.add_all(list).unwrap();
    for (p, want) in probes.iter().zip(theirs) {
        let got = matches!(ig.check(&id(p), &[], 0.0), IgnoreCheck::Ignored(_));
        assert_eq!(got, want, "{p}");
    }
}

/// Addresses `ip -o addr` lists for this machine.
fn ip_addr_show() -> Vec<IpAddr> {
    let out = Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .expect("iproute2's `ip` is needed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l
                .split_whitespace()
                .skip_while(|w| *w != "inet" && *w != "inet6");
            w.next()?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn ignoreself_covers_this_machine() {
    let set = self_addresses();
    let mine = ip_addr_show();
    assert!(!mine.is_empty());
    for a in &mine {
        assert!(set.contains(*a), "interface address {a}");
    }
    // Everything Fail2ban itself counts as own addresses.
    let theirs: Vec<String> = serde_json::from_str(&python(
        "import json\nfrom fail2ban.server.ipdns import DNSUtils\nprint(json.dumps([str(i) for i in DNSUtils.getSelfIPs()]))",
        "",
    ))
    .unwrap();
    for a in theirs {
        assert!(
            set.contains(a.parse().unwrap()),
            "fail2ban's own address {a}"
        );
    }
    assert!(set.contains("127.0.0.1".parse().unwrap()));
    assert!(!set.contains("192.0.2.200".parse().unwrap()));
    let mut ig = Ignore::default();
    assert_eq!(
        ig.check(&BanId::from(mine[0]), &[], 0.0),
        IgnoreCheck::Ignored(IgnoredBy::SelfAddress)
    );
    ig.ignoreself = false;
    assert_eq!(
        ig.check(&BanId::from(mine[0]), &[], 0.0),
        IgnoreCheck::Clear
    );
}

/// NETWORK_INTERFACE=tap0 under rootless Podman: slirp4netns configures
/// tap0 after the container's processes started. Own addresses that appear
/// (or go) after the set was made are known at the next lookup.
#[test]
fn ignoreself_follows_interfaces_configured_later() {
    // A network namespace of this thread alone; it goes with the thread.
    std::thread::spawn(|| {
        // SAFETY: unshare affects only the calling thread here.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) needs root: {}",
            std::io::Error::last_os_error()
        );
        let ip = |args: &str| {
            let st = Command::new("ip")
                .args(args.split_whitespace())
                .status()
                .expect("iproute2's `ip` is needed");
            assert!(st.success(), "ip {args}");
        };
        let own = SelfAddresses::watched();
        let v4: IpAddr = "192.0.2.77".parse().unwrap();
        let v6: IpAddr = "2001:db8::77".parse().unwrap();
        assert!(!own.contains(v4) && !own.contains(v6));
        ip("link add tap0 type veth peer name tap0-peer");
        ip("addr add 192.0.2.77/24 dev tap0");
        ip("-6 addr add 2001:db8::77/64 dev tap0 nodad");
        ip("link set tap0 up");
        assert!(own.contains(v4), "address added after start");
        assert!(own.contains(v6), "IPv6 address added after start");
        assert!(!own.contains("192.0.2.78".parse().unwrap()));
        ip("addr del 192.0.2.77/24 dev tap0");
        assert!(!own.contains(v4), "address removed");
        assert!(own.contains(v6));
        // A fixed set does not follow.
        let fixed = SelfAddresses::fixed(Arc::new(PrefixSet::default()));
        assert!(!fixed.contains(v6));
    })
    .join()
    .unwrap();
}

fn ask(ig: &mut Ignore, s: &str, data: &[(String, String)]) -> IgnoreCommandCall {
    match ig.check(&id(s), data, 0.0) {
        IgnoreCheck::AskCommand(call) => call,
        other => panic!("expected the command to be asked, got {other:?}"),
    }
}

#[test]
fn ignorecommand_exit_codes() {
    let mut ig = no_self();
    ig.command = IgnoreCommand::new(
        r#"case <ip> in 192.0.2.1) exit 0;; 192.0.2.2) exit 1;; *) echo "no idea" >&2; exit 3;; esac"#,
    );
    assert!(ask(&mut ig, "192.0.2.1", &[])
        .run(IGNORE_COMMAND_TIMEOUT)
        .unwrap());
    assert!(!ask(&mut ig, "192.0.2.2", &[])
        .run(IGNORE_COMMAND_TIMEOUT)
        .unwrap());
    let e = ask(&mut ig, "192.0.2.3", &[])
        .run(IGNORE_COMMAND_TIMEOUT)
        .unwrap_err();
    assert!(
        matches!(&e, CommandError::Failed { stderr, .. } if stderr == "no idea"),
        "{e}"
    );
    assert!(IgnoreCommand::new("  ").is_none());
    // A background process holding stderr does not hold up the verdict.
    let mut bg = no_self();
    bg.command = IgnoreCommand::new("sleep 5 & exit 0");
    let call = ask(&mut bg, "192.0.2.1", &[]);
    assert!(call.run(Duration::from_secs(3)).unwrap());
    let mut slow = no_self();
    slow.command = IgnoreCommand::new("sleep 30; exit 0");
    let e = ask(&mut slow, "192.0.2.1", &[])
        .run(Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, CommandError::Timeout(_)), "{e}");
}

#[test]
fn ignorecommand_values_are_data_never_code() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x; touch {m}"),
        format!("x' ; touch {m} ; '"),
        format!("x\" ; touch {m} ; \""),
        format!("x\ntouch {m}"),
        format!("x && touch {m} #"),
        "*".to_string(),
    ];
    let out = dir.path().join("seen");
    let o = out.display();
    let mut ig = no_self();
    // The value arrives intact wherever the tag stands: bare, in double
    // quotes, and from a filter capture.
    ig.command = IgnoreCommand::new(&format!(
        r#"printf '%s|%s|' <ip> "<fid>" >> {o}; sh -c 'printf "%s\n" "<F-USER>"' >> {o}; exit 1"#
    ));
    for h in &hostile {
        let data = [("user".to_string(), h.clone())];
        let call = ask(&mut ig, h, &data);
        assert!(
            !call.script().contains(h.as_str()) || h == "*",
            "value in script text: {}",
            call.script()
        );
        assert!(!call.run(IGNORE_COMMAND_TIMEOUT).unwrap());
    }
    assert!(!marker.exists(), "a hostile value ran as code");
    let seen = std::fs::read_to_string(&out).unwrap();
    let want: String = hostile.iter().map(|h| format!("{h}|{h}|{h}\n")).collect();
    assert_eq!(seen, want);
}

#[test]
fn ignorecommand_refuses_values_where_the_shell_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let mut ig = no_self();
    ig.command = IgnoreCommand::new("test $(( <F-COUNT> + 1 )) -gt 3");
    let data = [(
        "count".to_string(),
        format!("a[$(touch {})]", marker.display()),
    )];
    let e = ask(&mut ig, "192.0.2.1", &data)
        .run(IGNORE_COMMAND_TIMEOUT)
        .unwrap_err();
    assert!(
        matches!(&e, CommandError::Refused(TagError::Arithmetic(t)) if t == "F-COUNT"),
        "{e}"
    );
    assert!(!marker.exists());
}

#[test]
fn ignorecommand_tags() {
    let mut ig = no_self();
    ig.command = IgnoreCommand::new(
        r#"check <ip> <family> <F-USER> <F-ID> <F-MISSING> <unknown> <ip "<ip>" '<ip>' \"<ip>"#,
    );
    let data = [
        ("user".to_string(), "bob".to_string()),
        ("fid".to_string(), "conn7".to_string()),
    ];
    let call = ask(&mut ig, "2001:db8::1", &data);
    assert_eq!(
        call.script(),
        r#"check "${f2bV_ip}" "${f2bV_family}" "${f2bV_F_USER}" "${f2bV_F_ID}" "${f2bV_F_MISSING}" <unknown> <ip "${f2bV_ip}" '${f2bV_ip}' \""${f2bV_ip}""#
    );
    let env: Vec<(&str, &str)> = call
        .script
        .as_ref()
        .unwrap()
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("f2bV_ip", "2001:db8::1"),
            ("f2bV_family", "inet6"),
            ("f2bV_F_USER", "bob"),
            ("f2bV_F_ID", "conn7"),
            ("f2bV_F_MISSING", "")
        ]
    );
}

#[test]
fn ignorecache_remembers_verdicts() {
    let mut ig = no_self();
    ig.command = IgnoreCommand::new("exit 0");
    ig.cache = Some(IgnoreCache::new("<ip>", 2, 300.0));
    let call = ask(&mut ig, "192.0.2.1", &[]);
    assert_eq!(
        ig.verdict(&call, true, 0.0),
        IgnoreCheck::Ignored(IgnoredBy::Command)
    );
    assert_eq!(
        ig.check(&id("192.0.2.1"), &[], 10.0),
        IgnoreCheck::Ignored(IgnoredBy::Cache)
    );
    let call = ask(&mut ig, "192.0.2.2", &[]);
    ig.verdict(&call, false, 20.0);
    assert_eq!(ig.check(&id("192.0.2.2"), &[], 30.0), IgnoreCheck::Clear);
    // Full (2 entries): the oldest goes.
    let call = ask(&mut ig, "192.0.2.3", &[]);
    ig.verdict(&call, true, 40.0);
    assert!(matches!(
        ig.check(&id("192.0.2.1"), &[], 50.0),
        IgnoreCheck::AskCommand(_)
    ));
    assert_eq!(
        ig.check(&id("192.0.2.3"), &[], 50.0),
        IgnoreCheck::Ignored(IgnoredBy::Cache)
    );
    // Entries expire after max-time.
    assert!(matches!(
        ig.check(&id("192.0.2.3"), &[], 340.0),
        IgnoreCheck::AskCommand(_)
    ));
    // ignoreip verdicts are cached too (a network), single addresses not.
    ig.list.add_all("198.51.100.0/24 203.0.113.5").unwrap();
    assert_eq!(
        ig.check(&id("198.51.100.1"), &[], 400.0),
        IgnoreCheck::Ignored(IgnoredBy::Ip)
    );
    ig.list.remove("198.51.100.0/24");
    assert_eq!(
        ig.check(&id("198.51.100.1"), &[], 401.0),
        IgnoreCheck::Ignored(IgnoredBy::Cache)
    );
    assert_eq!(
        ig.check(&id("203.0.113.5"), &[], 402.0),
        IgnoreCheck::Ignored(IgnoredBy::Ip)
    );
    assert!(!ig.cache.as_ref().unwrap().map.contains_key("203.0.113.5"));
}

#[test]
fn ignorecache_set_follows_fail2ban() {
    // Fail2ban's Utils.Cache: when full, expired entries at the front go,
    // then one live one; an existing key keeps its place.
    let mut c = IgnoreCache::new("<ip>", 3, 10.0);
    let keys = |c: &IgnoreCache| c.order.values().cloned().collect::<Vec<_>>();
    c.set("a".into(), true, 0.0);
    c.set("b".into(), true, 1.0);
    c.set("a".into(), false, 2.0);
    assert_eq!(keys(&c), ["a", "b"]);
    assert_eq!(c.get("a", 11.9), Some(false));
    c.set("c".into(), true, 6.0);
    // Full: "a" (live) is dropped and comes back last.
    c.set("a".into(), true, 7.0);
    assert_eq!(keys(&c), ["b", "c", "a"]);
    c.set("d".into(), true, 12.0);
    // Expired "b" (11) goes, then live "c".
    assert_eq!(keys(&c), ["a", "d"]);
    c.set("x".into(), true, 13.0);
    // Expired "a" (17) goes, then live "d".
    c.set("e".into(), true, 20.0);
    assert_eq!(keys(&c), ["x", "e"]);
    assert_eq!(c.get("x", 22.9), Some(true));
    assert_eq!(c.get("e", 30.0), None);
    assert_eq!(keys(&c), ["x"]);
}

#[test]
fn dns_entries_label_dns() {
    let mut ig = no_self();
    ig.list.add("localhost").unwrap();
    assert_eq!(
        ig.check(&id("127.0.0.1"), &[], 0.0),
        IgnoreCheck::Ignored(IgnoredBy::Dns)
    );
}
