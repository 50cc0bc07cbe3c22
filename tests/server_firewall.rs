//! Bans enforced by the daemon: the real `logban server` runs inside a server
//! namespace on a copy of Fail2ban's configuration tree, follows a log to
//! which the test appends failures of the attacker's address, and the
//! attacker, in its own namespace, connects to a TCP service of the server:
//! it gets through before maxretry failures, not after the ban, and again
//! after `set test unbanip`. One test per backend (native nftables, allports
//! and multiport, both address families; iptables-multiport; iptables-ipset;
//! hostsdeny, by its file).

mod common;

use std::io::ErrorKind;

use common::daemon::{wait_blocked, Sandbox, Server, Tree};
use common::netns::{nft_table, set_elements, Pair, ATTACKER_V4, ATTACKER_V6};
use common::wait_for;

const PORT: u16 = 2222;
/// A port the multiport actions do not list.
const OTHER_PORT: u16 = 2223;

fn attacker(v6: bool) -> String {
    if v6 {
        ATTACKER_V6.to_string()
    } else {
        ATTACKER_V4.to_string()
    }
}

/// The attacker fails maxretry - 1 times and still gets through, once more
/// and is blocked on `PORT` (and on `OTHER_PORT` unless `multiport`), then
/// `unbanip` lets it through again. Returns how the blocked connection failed.
fn ban_cycle(pair: &Pair, sb: &Sandbox, v6: bool, multiport: bool) -> ErrorKind {
    let ip = attacker(v6);
    assert_eq!(pair.connect(v6, PORT), Ok(()), "before any failure");
    let before = sb.status("test").total_failed;
    sb.fail(&ip, 2);
    let st = sb.wait_status("test", "two failures counted", |s| {
        s.total_failed >= before + 2
    });
    assert!(st.banned.is_empty(), "{}", st.text);
    assert_eq!(pair.connect(v6, PORT), Ok(()), "below maxretry");
    sb.fail(&ip, 1);
    let how = wait_blocked(pair, sb, v6, PORT);
    let st = sb.status("test");
    assert_eq!(st.banned, std::slice::from_ref(&ip), "{}", st.text);
    assert_eq!(sb.not_enforced(), None, "{}", st.text);
    if multiport {
        assert_eq!(pair.connect(v6, OTHER_PORT), Ok(()), "a port not listed");
    } else {
        assert!(pair.connect(v6, OTHER_PORT).is_err(), "every port");
    }
    // The other family is not affected.
    assert_eq!(pair.connect(!v6, PORT), Ok(()));
    // unbanip answers once the actions have carried it out.
    assert_eq!(sb.ok(&["set", "test", "unbanip", &ip]), "1\n");
    assert_eq!(pair.connect(v6, PORT), Ok(()), "after unbanip");
    assert!(sb.status("test").banned.is_empty());
    how
}

/// [`ban_cycle`] for IPv4, then IPv6.
fn ban_cycles(pair: &Pair, sb: &Sandbox, multiport: bool) -> [ErrorKind; 2] {
    [false, true].map(|v6| ban_cycle(pair, sb, v6, multiport))
}

fn pair_listening(tag: &str) -> Pair {
    let pair = Pair::new(tag);
    pair.listen(PORT);
    pair.listen(OTHER_PORT);
    pair
}

/// A [`pair_listening`], and the daemon started in the server's namespace
/// on a copy of Fail2ban's tree with jail `test` and `options`.
fn start(tag: &str, options: &str) -> (Pair, Sandbox, Server) {
    let pair = pair_listening(tag);
    let sb = Sandbox::with_tree(Tree::Fail2ban, options);
    let server = sb.start_in(&pair.server, None);
    (pair, sb, server)
}

#[test]
fn nftables_allports_both_families() {
    let (pair, sb, server) = start("sfall", "banaction = nftables-allports");
    assert_eq!(
        ban_cycles(&pair, &sb, false),
        [ErrorKind::ConnectionRefused; 2]
    );
    let table = nft_table(&pair.server).expect("the table stays while the jail runs");
    assert!(
        table.contains("meta l4proto tcp ip saddr @addr-set-test reject"),
        "{table}"
    );
    assert!(
        table.contains("meta l4proto tcp ip6 saddr @addr6-set-test reject"),
        "{table}"
    );
    // Stop removes the table, as Fail2ban's actionstop does.
    server.stop(&sb);
    assert_eq!(nft_table(&pair.server), None);
}

#[test]
fn nftables_multiport_both_families_with_drop() {
    let pair = pair_listening("sfmulti");
    let sb = Sandbox::with_tree(
        Tree::Fail2ban,
        &format!("banaction = nftables-multiport\nport = {PORT},2230:2240"),
    );
    sb.write(
        "etc/action.d/nftables-common.local",
        "[Init]\nblocktype = drop\n",
    );
    let server = sb.start_in(&pair.server, None);
    assert_eq!(ban_cycles(&pair, &sb, true), [ErrorKind::TimedOut; 2]);
    let table = nft_table(&pair.server).unwrap();
    assert!(
        table.contains(&format!(
            "tcp dport {{ {PORT}, 2230-2240 }} ip saddr @addr-set-test drop"
        )),
        "{table}"
    );
    server.stop(&sb);
    assert_eq!(nft_table(&pair.server), None);
}

/// `set test banip` of a subnet and of an address inside it, unbanned in
/// either order: the set always holds what is banned.
#[test]
fn nftables_subnets_and_addresses_inside_them() {
    let (pair, sb, server) = start("sfnet", "banaction = nftables-allports");
    assert_eq!(
        sb.ok(&["set", "test", "banip", "192.0.2.0/24", "192.0.2.2"]),
        "2\n"
    );
    assert_eq!(
        set_elements(&pair.server, "addr-set-test"),
        ["192.0.2.0/24"]
    );
    assert!(pair.connect(false, PORT).is_err());
    // The address stays banned without its subnet.
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.0/24"]), "1\n");
    assert_eq!(set_elements(&pair.server, "addr-set-test"), ["192.0.2.2"]);
    assert!(pair.connect(false, PORT).is_err());
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.2"]), "1\n");
    assert!(set_elements(&pair.server, "addr-set-test").is_empty());
    assert_eq!(pair.connect(false, PORT), Ok(()));
    server.stop(&sb);
}

#[test]
fn iptables_multiport_both_families() {
    let (pair, sb, server) = start(
        "sfiptm",
        &format!("banaction = iptables-multiport\nport = {PORT},2230"),
    );
    assert_eq!(
        ban_cycles(&pair, &sb, true),
        [ErrorKind::ConnectionRefused; 2]
    );
    let rules = pair.server_sh("iptables", &["-S"]);
    assert!(rules.contains("-A f2b-test -j RETURN"), "{rules}");
    server.stop(&sb);
    // actionstop took the chain and its jump away.
    let rules = pair.server_sh("iptables", &["-S"]);
    assert!(!rules.contains("f2b-test"), "{rules}");
}

/// Fail2ban's stock iptables-ipset with `type=multiport`: the addresses go
/// into the ipset, one rule per family matches it.
#[test]
fn iptables_ipset_both_families() {
    let (pair, sb, server) = start(
        "sfipset",
        &format!("banaction = iptables-ipset[type=multiport]\nport = {PORT},2230"),
    );
    assert_eq!(
        ban_cycles(&pair, &sb, true),
        [ErrorKind::ConnectionRefused; 2]
    );
    // Several addresses at once: one `ipset restore`, all of them listed.
    let many: Vec<String> = (10..40).map(|i| format!("198.51.100.{i}")).collect();
    let mut args = vec!["set", "test", "banip"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(sb.ok(&args), "30\n");
    let listed = pair.server_sh("ipset", &["list", "f2b-test"]);
    for ip in &many {
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ip)),
            "{ip} missing:\n{listed}"
        );
    }
    server.stop(&sb);
    let sets = pair.server_sh("ipset", &["list", "-n"]);
    assert!(!sets.contains("f2b-test"), "{sets}");
}

/// The mail jails' port lists (`smtp,465,submission`) through iptables-ipset.
/// Fail2ban's stock action without `type=multiport` makes the rule
/// `--dport smtp,465,submission`, which iptables refuses, so nothing is
/// blocked, and the status and one ERROR line say so with the fix; with it,
/// and with logban's defaults as they are (`type = multiport` there), every
/// listed port is blocked and only those.
#[test]
fn iptables_ipset_with_the_mail_port_lists() {
    let pair = Pair::new("sfipmail");
    for port in [25, 465, 587, PORT] {
        pair.listen(port);
    }
    let sb = Sandbox::with_tree(
        Tree::Fail2ban,
        "banaction = iptables-ipset\nport = smtp,465,submission",
    );
    let server = sb.start_in(&pair.server, None);
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.2"]), "1\n");
    let why = sb.not_enforced().unwrap_or_else(|| {
        panic!(
            "oneport with a port list cannot work\n{}",
            sb.status("test").text
        )
    });
    // The refusal, with the fix.
    assert!(
        why.contains("smtp,465,submission")
            && why.contains("banaction = iptables-ipset[type=multiport]"),
        "{why}"
    );
    let errors = sb.log_lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(pair.connect(false, 25), Ok(()));
    server.stop(&sb);

    for (tree, action) in [
        (Tree::Fail2ban, "iptables-ipset[type=multiport]"),
        (Tree::Logban, "iptables-ipset"),
    ] {
        let sb = Sandbox::with_tree(
            tree,
            &format!("banaction = {action}\nport = smtp,465,submission"),
        );
        let server = sb.start_in(&pair.server, None);
        assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.2"]), "1\n");
        assert_eq!(sb.not_enforced(), None, "{tree:?}");
        for port in [25, 465, 587] {
            assert!(pair.connect(false, port).is_err(), "{tree:?}: port {port}");
        }
        assert_eq!(pair.connect(false, PORT), Ok(()), "{tree:?}");
        server.stop(&sb);
        assert_eq!(pair.connect(false, 25), Ok(()), "{tree:?}: after stop");
    }
}

/// hostsdeny writes `ALL: <ip>` lines to the file it is given.
#[test]
fn hostsdeny_file_content() {
    let pair = pair_listening("sfhosts");
    let sb = Sandbox::with_tree(Tree::Fail2ban, "");
    let file = sb.path("hosts.deny");
    std::fs::write(&file, "# hosts.deny of the test\nsshd: 203.0.113.1\n").unwrap();
    sb.write(
        "etc/jail.local",
        &std::fs::read_to_string(sb.path("etc/jail.local"))
            .unwrap()
            .replace(
                "[test]\n",
                &format!("[test]\naction = hostsdeny[file=\"{}\"]\n", file.display()),
            ),
    );
    let server = sb.start_in(&pair.server, None);
    let read = || std::fs::read_to_string(&file).unwrap();
    sb.fail("192.0.2.2", 3);
    wait_for(
        "192.0.2.2 in hosts.deny",
        || read().contains("ALL: 192.0.2.2\n"),
        || format!("{}\n{}", read(), sb.log()),
    );
    sb.fail("2001:db8::2", 3);
    wait_for(
        "2001:db8::2 in hosts.deny",
        || read().contains("ALL: [2001:db8::2]\n"),
        || format!("{}\n{}", read(), sb.log()),
    );
    assert_eq!(
        read(),
        "# hosts.deny of the test\nsshd: 203.0.113.1\nALL: 192.0.2.2\nALL: [2001:db8::2]\n"
    );
    assert_eq!(sb.ok(&["set", "test", "unbanip", "192.0.2.2"]), "1\n");
    assert_eq!(
        read(),
        "# hosts.deny of the test\nsshd: 203.0.113.1\nALL: [2001:db8::2]\n"
    );
    // hosts.deny is for TCP wrappers, the kernel lets everything through.
    assert_eq!(pair.connect(true, PORT), Ok(()));
    server.stop(&sb);
    assert_eq!(read(), "# hosts.deny of the test\nsshd: 203.0.113.1\n");
}
