//! The firewall across crashes, restarts and failures, with the real daemon
//! in a server namespace: after `kill -9` (even in the middle of a
//! 10,000-address `banip`) a restart brings the nft sets exactly in line with
//! the store, touching only what differs (`nft monitor` shows no kept
//! element deleted and added again), the sets of a jail removed meanwhile go;
//! a missing `nft` or a missing NET_ADMIN
//! leaves the bans in the store, says so in `status` and once in the log with
//! the fix, and the bans land once nft works.

mod common;

use std::collections::BTreeSet;

use common::daemon::{before_exec, wait_blocked, Sandbox, Server, Tree};
use common::netns::{self, monitor_elements, nft_table, set_elements, Monitor, Pair};
use common::{wait_for, wait_until};

const PORT: u16 = 2222;

/// The elements of both sets of jail `test`, sorted as the store lists them.
fn elements(ns: &str) -> Vec<String> {
    let mut v = set_elements(ns, "addr-set-test");
    v.extend(set_elements(ns, "addr6-set-test"));
    v.sort();
    v
}

/// Waits until the nft sets hold exactly the store's bans (and there are
/// `n` of them).
fn wait_sets_equal_store(pair: &Pair, sb: &Sandbox, n: usize) {
    wait_until(
        &format!("the nft sets to equal the store's {n} bans"),
        || {
            let (sets, store) = (elements(&pair.server), sb.stored_bans());
            if store.len() == n && sets == store {
                Ok(())
            } else {
                Err((sets, store))
            }
        },
        |(sets, store)| {
            let (set, store): (BTreeSet<_>, BTreeSet<_>) =
                (sets.iter().collect(), store.iter().collect());
            format!(
                "store {} / sets {}; only in the store: {:?}; only in the sets: {:?}\n{}",
                store.len(),
                set.len(),
                store.difference(&set).take(10).collect::<Vec<_>>(),
                set.difference(&store).take(10).collect::<Vec<_>>(),
                sb.log()
            )
        },
    );
}

/// The daemon in the server namespace of a new pair listening on `PORT`,
/// with `banaction`, and the attacker banned by three failures.
fn attacker_banned(tag: &str, banaction: &str) -> (Pair, Sandbox, Server) {
    let pair = Pair::new(tag);
    pair.listen(PORT);
    let sb = Sandbox::with_tree(
        Tree::Fail2ban,
        &format!("banaction = {banaction}\nport = {PORT}"),
    );
    let server = sb.start_in(&pair.server, None);
    sb.fail("192.0.2.2", 3);
    wait_blocked(&pair, &sb, false, PORT);
    (pair, sb, server)
}

fn banip(sb: &Sandbox, ips: &[String]) -> String {
    let mut args = vec!["set", "test", "banip"];
    args.extend(ips.iter().map(String::as_str));
    sb.ok(&args)
}

/// `kill -9` while a 10,000-address `set test banip` is being carried out,
/// twice (as soon as the command is sent, and once the ban is committed and
/// logged, while nft works), then restarts: the sets equal the store every
/// time; a clean stop and start too.
#[test]
fn kill_9_during_a_10k_burst_then_restart_sets_equal_store() {
    let pair = Pair::new("srburst");
    let sb = Sandbox::with_tree(Tree::Fail2ban, "banaction = nftables-allports");
    let server = sb.start_in(&pair.server, None);
    let before: Vec<String> = (1..=20).map(|i| format!("192.0.2.{}", i + 100)).collect();
    assert_eq!(banip(&sb, &before), "20\n");
    let mut server = Some(server);
    let mut expected = before.len();
    for (round, after_commit) in [(1, false), (2, true)] {
        let burst: Vec<String> = (0..10_000)
            .map(|i| format!("2001:db8:{round}::{:x}", i + 1))
            .collect();
        let mut client = sb.client_command();
        client
            .args(["set", "test", "banip"])
            .args(&burst)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut client = client.spawn().unwrap();
        if after_commit {
            let first = format!("Ban {}\n", burst[0]);
            wait_for(
                "the burst's first Ban line",
                || sb.log().contains(&first),
                || sb.log(),
            );
        } else {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        server.take().unwrap().kill9();
        let _ = client.wait();
        let stored = sb.stored_bans().len();
        if after_commit {
            // The ban was logged, so it was committed.
            assert_eq!(stored, expected + burst.len());
        }
        expected = stored;
        server = Some(sb.start_in(&pair.server, None));
        wait_sets_equal_store(&pair, &sb, expected);
        assert_eq!(sb.not_enforced(), None);
    }
    // A clean stop removes the table, a start puts everything back.
    server.take().unwrap().stop(&sb);
    assert_eq!(nft_table(&pair.server), None);
    let server = sb.start_in(&pair.server, None);
    wait_sets_equal_store(&pair, &sb, expected);
    server.stop(&sb);
}

/// The events of `nft monitor` on `inet f2b-table`: elements added, deleted
/// (sorted), and the other lines.
fn changes(events: &[String]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut deleted, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for line in events {
        if line.starts_with("add element") {
            added.extend(monitor_elements(line));
        } else if line.starts_with("delete element") {
            deleted.extend(monitor_elements(line));
        } else {
            other.push(line.clone());
        }
    }
    added.sort();
    deleted.sort();
    (added, deleted, other)
}

/// After `kill -9` the table drifted; the restart repairs exactly that, in
/// place: an element removed behind the daemon's back comes back, stale ones
/// go, a duplicated rule goes, nothing kept is deleted and added again, and
/// the attacker never gets through. Reloads then change nothing at all.
#[test]
fn restart_after_kill_9_reconciles_without_unban_and_reban() {
    let (pair, sb, server) = attacker_banned("srmon", "nftables-allports");
    let mut kept: Vec<String> = (10..40).map(|i| format!("198.51.100.{i}")).collect();
    kept.extend(["203.0.113.0/24".to_string(), "2001:db8:7::/64".into()]);
    kept.extend((1..=5).map(|i| format!("2001:db8::{i:x}0")));
    assert_eq!(banip(&sb, &kept), format!("{}\n", kept.len()));
    kept.push("192.0.2.2".into());
    wait_sets_equal_store(&pair, &sb, kept.len());
    server.kill9();

    // Elements drift while the daemon is down.
    let removed = "198.51.100.10";
    let stale = ["198.51.100.200", "198.51.100.201", "2001:db8:9::1"];
    netns::in_netns(&pair.server, move || {
        netns::nft_script(&format!(
            "delete element inet f2b-table addr-set-test {{ {removed} }}\n\
             add element inet f2b-table addr-set-test {{ {}, {} }}\n\
             add element inet f2b-table addr6-set-test {{ {} }}\n",
            stale[0], stale[1], stale[2]
        ));
    });
    let monitor = Monitor::start(&pair.server);
    let server = sb.start_in(&pair.server, None);
    wait_sets_equal_store(&pair, &sb, kept.len());
    assert!(pair.connect(false, PORT).is_err());
    let events = monitor.finish();
    let (added, deleted, other) = changes(&events);
    assert_eq!(added, [removed], "{events:#?}");
    assert_eq!(deleted, stale, "{events:#?}");
    assert!(other.is_empty(), "{events:#?}");
    server.kill9();

    // A rule duplicated while the daemon is down.
    netns::in_netns(&pair.server, || {
        netns::nft_script(
            "add rule inet f2b-table f2b-chain meta l4proto tcp ip saddr @addr-set-test reject\n",
        );
    });
    let monitor = Monitor::start(&pair.server);
    let server = sb.start_in(&pair.server, None);
    let rules = || {
        nft_table(&pair.server)
            .unwrap_or_default()
            .matches("saddr @addr-set-test")
            .count()
    };
    wait_for("the duplicate rule to go", || rules() == 1, || sb.log());
    let events = monitor.finish();
    let (added, deleted, other) = changes(&events);
    assert!(added.is_empty() && deleted.is_empty(), "{events:#?}");
    assert_eq!(other.len(), 1, "{events:#?}");
    assert!(
        other[0].starts_with("delete rule inet f2b-table f2b-chain"),
        "{events:#?}"
    );
    assert_eq!(elements(&pair.server), sb.stored_bans());
    assert!(pair.connect(false, PORT).is_err());

    // Reloads, unchanged and with the jail changed (rebuilt with its bans):
    // the firewall is left alone.
    let monitor = Monitor::start(&pair.server);
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    let local = std::fs::read_to_string(sb.path("etc/jail.local")).unwrap();
    sb.write(
        "etc/jail.local",
        &local.replace("maxretry = 3", "maxretry = 4"),
    );
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    sb.wait_status("test", "the reloaded jail", |s| {
        s.banned.len() == kept.len()
    });
    assert_eq!(sb.ok(&["get", "test", "maxretry"]), "4\n");
    assert_eq!(monitor.finish(), Vec::<String>::new());
    assert_eq!(elements(&pair.server), sb.stored_bans());
    assert!(pair.connect(false, PORT).is_err());
    server.stop(&sb);
}

/// A jail removed from the configuration while the daemon was down after
/// `kill -9`: the restart removes its sets and rules (its addresses get
/// through again) and says so once per set; the remaining jail keeps its
/// bans, and a set named otherwise in the table and a set of another table
/// stay as they are.
#[test]
fn restart_after_kill_9_removes_the_sets_of_a_removed_jail() {
    let pair = Pair::new("srgone");
    pair.listen(PORT);
    let sb = Sandbox::with_tree(Tree::Fail2ban, "banaction = nftables-allports");
    let local = std::fs::read_to_string(sb.path("etc/jail.local")).unwrap();
    sb.append(
        "etc/jail.local",
        &format!(
            "\n[gone]\nenabled = true\nfilter = test-auth\nlogpath = {}\n\
             banaction = nftables-allports\n",
            sb.path("auth.log").display()
        ),
    );
    let server = sb.start_in(&pair.server, None);
    assert_eq!(banip(&sb, &["198.51.100.7".into()]), "1\n");
    assert_eq!(
        sb.ok(&["set", "gone", "banip", "192.0.2.2", "2001:db8::5"]),
        "2\n"
    );
    wait_blocked(&pair, &sb, false, PORT);
    server.kill9();

    sb.write("etc/jail.local", &local);
    netns::in_netns(&pair.server, || {
        netns::nft_script(
            "add set inet f2b-table mine { type ipv4_addr; }\n\
             add element inet f2b-table mine { 203.0.113.9 }\n\
             add table ip keep\n\
             add set ip keep addr-set-gone { type ipv4_addr; }\n\
             add element ip keep addr-set-gone { 192.0.2.50 }\n",
        );
    });
    let server = sb.start_in(&pair.server, None);
    let table = || nft_table(&pair.server).unwrap_or_default();
    wait_for(
        "the removed jail's sets to go",
        || !table().contains("set-gone"),
        || format!("{}\n{}", table(), sb.log()),
    );
    assert_eq!(pair.connect(false, PORT), Ok(()), "{}", table());
    assert_eq!(elements(&pair.server), ["198.51.100.7"]);
    assert_eq!(sb.stored_bans(), ["198.51.100.7"]);
    assert_eq!(table().matches("saddr @addr-set-test").count(), 1);
    assert_eq!(set_elements(&pair.server, "mine"), ["203.0.113.9"]);
    let other = pair.server_sh("nft", &["list", "set", "ip", "keep", "addr-set-gone"]);
    assert!(other.contains("192.0.2.50"), "{other}");
    for (set, n) in [("addr-set-gone", 1), ("addr6-set-gone", 1)] {
        let line = format!(
            "NOTICE  nft set {set} in inet f2b-table belongs to no configured jail \
             (left by an unclean stop): removed with 1 rule and {n} address\n"
        );
        assert_eq!(sb.log().matches(&line).count(), 1, "{line}\n{}", sb.log());
    }
    assert_eq!(sb.not_enforced(), None);
    server.stop(&sb);
    // A clean stop leaves what is not logban's.
    assert_eq!(set_elements(&pair.server, "mine"), ["203.0.113.9"]);
}

/// A directory holding only an `nft` link while `on`: the daemon's PATH.
struct NftPath {
    dir: tempfile::TempDir,
    nft: std::path::PathBuf,
}

impl NftPath {
    fn new() -> NftPath {
        let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .expect("nft is installed (apt-get install nftables)");
        NftPath {
            dir: tempfile::tempdir().unwrap(),
            nft,
        }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn install(&self) {
        std::os::unix::fs::symlink(&self.nft, self.dir.path().join("nft")).unwrap();
    }
}

/// Without nft in PATH: bans are recorded and listed, `status` says they are
/// not enforced and why, one ERROR line names the fix however many bans
/// fail; once nft is there the daemon catches up by itself.
#[test]
fn missing_nft_is_shown_and_logged_once_then_bans_land() {
    let pair = Pair::new("srnonft");
    pair.listen(PORT);
    let sb = Sandbox::with_tree(Tree::Fail2ban, "banaction = nftables-allports");
    let bin = NftPath::new();
    let server = sb.start_in(&pair.server, Some(bin.path()));
    sb.fail("192.0.2.2", 3);
    let st = sb.wait_status("test", "the attacker banned", |s| s.banned == ["192.0.2.2"]);
    let why = sb
        .not_enforced()
        .unwrap_or_else(|| panic!("enforced without nft?\n{}", st.text));
    assert!(why.contains("not installed or not in PATH"), "{why}");
    assert_eq!(banip(&sb, &["198.51.100.7".into()]), "1\n");
    assert_eq!(pair.connect(false, PORT), Ok(()), "nothing can block it");
    let errors = sb.log_lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("install nftables")
            && errors[0].contains("iptables-multiport")
            && errors[0].contains("NOT enforced"),
        "{}",
        errors[0]
    );

    bin.install();
    wait_blocked(&pair, &sb, false, PORT);
    wait_sets_equal_store(&pair, &sb, 2);
    wait_for(
        "the status to be clean",
        || sb.not_enforced().is_none(),
        || sb.status("test").text,
    );
    assert_eq!(sb.log_lines("ERROR").len(), 1);
    server.stop(&sb);
}

/// A daemon without NET_ADMIN (a container without `--cap-add=NET_ADMIN`):
/// nft is refused, the status and one ERROR line say what to add.
#[test]
fn without_net_admin_the_status_names_the_capability() {
    let pair = Pair::new("srcap");
    let sb = Sandbox::with_tree(Tree::Fail2ban, "banaction = nftables-allports");
    let mut cmd = sb.server_in(&pair.server);
    before_exec(&mut cmd, || {
        const CAP_NET_ADMIN: libc::c_ulong = 12;
        // SAFETY: prctl on the child's own bounding set, before exec.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    let server = sb.start_with(cmd);
    for ip in ["192.0.2.2", "198.51.100.3"] {
        assert_eq!(banip(&sb, &[ip.into()]), "1\n");
    }
    let why = sb
        .not_enforced()
        .expect("nothing enforced without NET_ADMIN");
    assert!(why.contains("NET_ADMIN"), "{why}");
    let errors = sb.log_lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("cap-add=NET_ADMIN"), "{}", errors[0]);
    assert_eq!(sb.stored_bans(), ["192.0.2.2", "198.51.100.3"]);
    server.stop(&sb);
}

/// iptables-multiport after `kill -9`: the chain survives with its rules
/// (and one of an address unbanned meanwhile); the restart brings it in line
/// with the store: every banned address in it once, so that one `unbanip`
/// lets it through, the stale rule gone, the jump from INPUT not doubled;
/// restarted with another blocktype, the rules are replaced.
#[test]
fn kill_9_restart_with_iptables_keeps_one_rule_per_ban() {
    let (pair, sb, server) = attacker_banned("sript", "iptables-multiport");
    assert_eq!(banip(&sb, &["198.51.100.7".into()]), "1\n");
    server.kill9();
    pair.server_sh(
        "iptables",
        &[
            "-w",
            "-I",
            "f2b-test",
            "1",
            "-s",
            "203.0.113.5",
            "-j",
            "DROP",
        ],
    );
    let server = sb.start_in(&pair.server, None);
    sb.wait_status("test", "bans restored", |s| s.banned.len() == 2);
    let chain = || pair.server_sh("iptables", &["-S", "f2b-test"]);
    wait_for(
        "the chain in line with the store",
        || !chain().contains("203.0.113.5"),
        chain,
    );
    for ip in ["192.0.2.2", "198.51.100.7"] {
        assert_eq!(
            chain().matches(&format!("-s {ip}/32 ")).count(),
            1,
            "{}",
            chain()
        );
    }
    let input = pair.server_sh("iptables", &["-S", "INPUT"]);
    assert_eq!(input.matches("-j f2b-test").count(), 1, "{input}");
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.2"]), "1\n");
    assert_eq!(pair.connect(false, PORT), Ok(()), "{}", chain());
    // Restarted with another blocktype: the rules are replaced.
    server.kill9();
    let local = std::fs::read_to_string(sb.path("etc/jail.local")).unwrap();
    sb.write(
        "etc/jail.local",
        &local.replace(
            "banaction = iptables-multiport\n",
            "banaction = iptables-multiport[blocktype=DROP]\n",
        ),
    );
    let server = sb.start_in(&pair.server, None);
    wait_for(
        "the rule of the new blocktype",
        || chain().contains("-s 198.51.100.7/32 -j DROP"),
        chain,
    );
    assert_eq!(chain().matches("198.51.100.7").count(), 1, "{}", chain());
    assert!(!chain().contains("REJECT"), "{}", chain());
    server.stop(&sb);
}

/// iptables-ipset after `kill -9`: the ipset survives with its entries (and
/// one of an address unbanned meanwhile); the restart leaves it holding the
/// store's bans exactly.
#[test]
fn kill_9_restart_with_ipset_matches_the_store() {
    let (pair, sb, server) = attacker_banned("sripset", "iptables-ipset[type=multiport]");
    assert_eq!(banip(&sb, &["198.51.100.7".into()]), "1\n");
    server.kill9();
    pair.server_sh("ipset", &["add", "f2b-test", "203.0.113.5"]);
    let members = || {
        let mut v: Vec<String> = pair
            .server_sh("ipset", &["save", "f2b-test"])
            .lines()
            .filter_map(|l| l.strip_prefix("add f2b-test "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(members(), ["192.0.2.2", "198.51.100.7", "203.0.113.5"]);
    let server = sb.start_in(&pair.server, None);
    wait_for(
        "the ipset in line with the store",
        || members() == sb.stored_bans(),
        || format!("{:?} vs {:?}\n{}", members(), sb.stored_bans(), sb.log()),
    );
    assert_eq!(sb.not_enforced(), None);
    assert!(pair.connect(false, PORT).is_err());
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.2"]), "1\n");
    assert_eq!(pair.connect(false, PORT), Ok(()));
    server.stop(&sb);
}
