//! The native nftables backend against real nftables in network namespaces:
//! an attacker namespace connects to a TCP service in the server namespace
//! before a ban, during it and after the unban.

mod common;

use std::io::ErrorKind;

use common::fail2ban::{self, action_defs};
use common::netns::{
    self, block_on_in, connect_from, nft, nft_elements as elements, server_addr, tickets, Monitor,
    Pair,
};
use logban::action::{BackendKind, Cause, JailActions, Settings, StopMode};
use logban::config::ActionDef;

fn jail_local(jail: &str, banaction: &str, extra: &str) -> String {
    fail2ban::jail_local(jail, &format!("banaction = {banaction}\n{extra}"))
}

fn rules_on(set: &str) -> usize {
    nft(&["list", "chain", "inet", "f2b-table", "f2b-chain"])
        .lines()
        .filter(|l| l.contains(&format!("@{set} ")))
        .count()
}

fn web_defs(banaction: &str, extra: &str) -> (tempfile::TempDir, Vec<ActionDef>) {
    action_defs(
        &[("jail.local", &jail_local("web", banaction, extra))],
        "web",
        &[banaction],
    )
}

#[test]
fn allports_rejects_both_families_until_unban() {
    let pair = Pair::new("nfall");
    pair.listen(2222);
    let (_tree, defs) = web_defs("nftables-allports", "");
    let attacker = pair.attacker.clone();
    assert_eq!(pair.connect(false, 2222), Ok(()));
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        assert_eq!(acts.status()[0].kind, BackendKind::Nftables);
        assert!(acts.enforced());

        acts.ban(tickets(&["192.0.2.2"])).await.unwrap();
        assert_eq!(
            connect_from(&attacker, server_addr(false, 2222)),
            Err(ErrorKind::ConnectionRefused)
        );
        assert_eq!(connect_from(&attacker, server_addr(true, 2222)), Ok(()));
        acts.ban(tickets(&["2001:db8::2"])).await.unwrap();
        assert_eq!(
            connect_from(&attacker, server_addr(true, 2222)),
            Err(ErrorKind::ConnectionRefused)
        );

        let table = nft(&["list", "table", "inet", "f2b-table"]);
        assert!(
            table.contains("meta l4proto tcp ip saddr @addr-set-web reject"),
            "{table}"
        );
        assert!(
            table.contains("meta l4proto tcp ip6 saddr @addr6-set-web reject"),
            "{table}"
        );
        assert!(
            table.contains("type filter hook input priority filter - 1; policy accept;"),
            "{table}"
        );
        assert!(table.contains("flags interval"), "{table}");

        acts.unban(tickets(&["192.0.2.2", "2001:db8::2"]))
            .await
            .unwrap();
        assert_eq!(connect_from(&attacker, server_addr(false, 2222)), Ok(()));
        assert_eq!(connect_from(&attacker, server_addr(true, 2222)), Ok(()));
        assert!(acts.enforced());

        acts.stop(vec![], StopMode::Full).await.unwrap();
        assert!(!nft(&["list", "tables"]).contains("f2b-table"));
    });
}

#[test]
fn multiport_drop_blocks_listed_ports_only() {
    let pair = Pair::new("nfmp");
    pair.listen(143);
    pair.listen(8080);
    let files = [
        (
            "jail.local",
            jail_local("dovecot", "nftables-multiport", "port = imap,imaps"),
        ),
        (
            "action.d/nftables-common.local",
            "[Init]\nblocktype = drop\n".to_string(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let (_tree, defs) = action_defs(&files, "dovecot", &["nftables-multiport"]);
    let attacker = pair.attacker.clone();
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("dovecot", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        acts.ban(tickets(&["192.0.2.2", "2001:db8::2"]))
            .await
            .unwrap();
        for v6 in [false, true] {
            assert_eq!(
                connect_from(&attacker, server_addr(v6, 143)),
                Err(ErrorKind::TimedOut)
            );
            assert_eq!(connect_from(&attacker, server_addr(v6, 8080)), Ok(()));
        }
        let chain = nft(&["list", "chain", "inet", "f2b-table", "f2b-chain"]);
        assert!(
            chain.contains("tcp dport { 143, 993 } ip saddr @addr-set-dovecot drop"),
            "{chain}"
        );
        acts.unban(tickets(&["192.0.2.2", "2001:db8::2"]))
            .await
            .unwrap();
        assert_eq!(connect_from(&attacker, server_addr(false, 143)), Ok(()));
        assert_eq!(connect_from(&attacker, server_addr(true, 143)), Ok(()));
    });
}

#[test]
fn subnets_and_overlapping_bans() {
    let pair = Pair::new("nfsub");
    pair.listen(2222);
    let (_tree, defs) = web_defs("nftables-allports", "");
    let attacker = pair.attacker.clone();
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        let blocked = || connect_from(&attacker, server_addr(false, 2222)).is_err();

        // An address, then the subnet around it: the set holds the subnet only.
        acts.ban(tickets(&["192.0.2.2", "198.51.100.9"]))
            .await
            .unwrap();
        acts.ban(tickets(&["192.0.2.0/24"])).await.unwrap();
        assert_eq!(elements("addr-set-web"), ["192.0.2.0/24", "198.51.100.9"]);
        assert!(blocked());
        // The subnet goes, the address inside it stays banned.
        acts.unban(tickets(&["192.0.2.0/24"])).await.unwrap();
        assert_eq!(elements("addr-set-web"), ["192.0.2.2", "198.51.100.9"]);
        assert!(blocked());
        acts.unban(tickets(&["192.0.2.2"])).await.unwrap();
        assert!(!blocked());

        // The subnet first, then an address inside it: nothing to add.
        acts.ban(tickets(&["192.0.2.0/25"])).await.unwrap();
        acts.ban(tickets(&["192.0.2.2"])).await.unwrap();
        assert_eq!(elements("addr-set-web"), ["192.0.2.0/25", "198.51.100.9"]);
        acts.unban(tickets(&["192.0.2.2"])).await.unwrap();
        assert!(blocked(), "the subnet still covers the address");
        acts.unban(tickets(&["192.0.2.0/25"])).await.unwrap();
        assert!(!blocked());

        // Many unbans at once: the set is refilled in the same transaction.
        let many: Vec<String> = (1..=40).map(|i| format!("203.0.113.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        acts.ban(tickets(&many)).await.unwrap();
        acts.unban(tickets(&many[..30])).await.unwrap();
        let mut left: Vec<String> = many[30..].iter().map(|s| s.to_string()).collect();
        left.push("198.51.100.9".into());
        left.sort();
        assert_eq!(elements("addr-set-web"), left);

        // IPv6 /64.
        acts.ban(tickets(&["2001:db8::/64"])).await.unwrap();
        assert_eq!(
            connect_from(&attacker, server_addr(true, 2222)),
            Err(ErrorKind::ConnectionRefused)
        );
        assert_eq!(elements("addr6-set-web"), ["2001:db8::/64"]);
        assert!(acts.enforced());
    });
}

/// Fail2ban's own nftables commands (run by logban's command runner, with the
/// mail server's `flags interval` set) and the native backend, given the same
/// bans, leave the same `nft list table inet f2b-table`.
#[test]
fn listing_identical_to_fail2ban_mail_server() {
    let native = Pair::new("nfid1");
    let stock = Pair::new("nfid2");
    let local = "[sshd]\nenabled = false\n\n[DEFAULT]\nbanaction = nftables-multiport\n\n\
                 [dovecot]\nenabled = true\nlogpath = /dev/null\n\n\
                 [postfix]\nenabled = true\nmode = extra\nlogpath = /dev/null\n";
    // What the mail server does to Fail2ban's set definition.
    let conf = std::fs::read_to_string("/etc/fail2ban/action.d/nftables.conf")
        .expect("fail2ban installed");
    let patched = conf.replace(
        "<addr_set> \\{ type <addr_type>\\; \\}",
        "<addr_set> \\{ type <addr_type>\\; flags interval\\; \\}",
    );
    assert_ne!(conf, patched, "nftables.conf's set definition changed");
    let files = [
        ("jail.local", local),
        (
            "action.d/nftables-common.local",
            "[Init]\nblocktype = drop\n",
        ),
        ("action.d/nftables.conf", patched.as_str()),
    ];
    let mut defs = Vec::new();
    let mut trees = Vec::new();
    for jail in ["dovecot", "postfix"] {
        let (tree, d) = action_defs(&files, jail, &["nftables-multiport"]);
        trees.push(tree);
        defs.push((jail, d));
    }
    let bans: [(&str, &[&str]); 3] = [
        (
            "dovecot",
            &["192.0.2.77", "2001:db8::77", "198.51.100.0/24"],
        ),
        ("postfix", &["203.0.113.5", "192.0.2.0/28"]),
        ("dovecot", &["203.0.113.9"]),
    ];
    let run = |ns: &str, defs: Vec<(&'static str, Vec<ActionDef>)>, stock: bool| {
        block_on_in(ns, move || async move {
            let mut jails = Vec::new();
            for (jail, mut d) in defs {
                if stock {
                    // Not the nftables file name: its commands run as written.
                    d[0].file = "nftables-stock".into();
                }
                let acts = JailActions::new(jail, &d, &Settings::default());
                acts.start(vec![]).await.unwrap();
                let kind = acts.status()[0].kind;
                assert_eq!(
                    kind,
                    if stock {
                        BackendKind::Command
                    } else {
                        BackendKind::Nftables
                    }
                );
                jails.push((jail, acts));
            }
            for (jail, ips) in bans {
                let acts = &jails.iter().find(|(j, _)| *j == jail).unwrap().1;
                acts.ban(tickets(ips)).await.unwrap();
            }
            nft(&["list", "table", "inet", "f2b-table"])
        })
    };
    let a = run(&native.server, defs.clone(), false);
    let b = run(&stock.server, defs, true);
    assert_eq!(a, b);
    assert!(
        a.contains(
            "tcp dport { 110, 143, 465, 587, 993, 995, 4190 } ip saddr @addr-set-dovecot drop"
        ),
        "{a}"
    );
    assert!(
        a.contains("tcp dport { 25, 465, 587 } ip saddr @addr-set-postfix drop"),
        "{a}"
    );
}

/// A restart reconciles: stale elements go, missing ones come, rules are
/// neither lost nor doubled, a set made without `flags interval` is made
/// again, and elements still banned are never deleted on the way.
#[test]
fn start_reconciles_without_unbanning() {
    let pair = Pair::new("nfrec");
    pair.listen(2222);
    let (_tree, defs) = web_defs("nftables-allports", "");
    let (attacker, ns) = (pair.attacker.clone(), pair.server.clone());
    let defs2 = defs.clone();
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        acts.ban(tickets(&["192.0.2.2", "198.51.100.1"]))
            .await
            .unwrap();
        // The previous run is gone without stopping (kill -9); meanwhile the
        // firewall drifted from the store.
        drop(acts);
        nft(&[
            "add",
            "element",
            "inet",
            "f2b-table",
            "addr-set-web",
            "{ 203.0.113.7 }",
        ]);
        nft(&[
            "delete",
            "element",
            "inet",
            "f2b-table",
            "addr-set-web",
            "{ 198.51.100.1 }",
        ]);
        let monitor = Monitor::start(&ns);
        let acts = JailActions::new("web", &defs2, &Settings::default());
        acts.start(tickets(&["192.0.2.2", "198.51.100.1"]))
            .await
            .unwrap();
        let seen = monitor.finish().join("\n");
        assert_eq!(elements("addr-set-web"), ["192.0.2.2", "198.51.100.1"]);
        assert!(
            seen.contains("delete element inet f2b-table addr-set-web { 203.0.113.7 }"),
            "{seen}"
        );
        assert!(
            seen.contains("add element inet f2b-table addr-set-web { 198.51.100.1 }"),
            "{seen}"
        );
        assert!(
            !seen.contains("192.0.2.2"),
            "a banned element was touched: {seen}"
        );
        assert!(!seen.contains("rule"), "the rule was fine: {seen}");
        assert_eq!(
            connect_from(&attacker, server_addr(false, 2222)),
            Err(ErrorKind::ConnectionRefused)
        );

        // A doubled rule goes; so does the set of a family without bans left.
        acts.ban(tickets(&["2001:db8::2"])).await.unwrap();
        drop(acts);
        nft(&[
            "add",
            "rule",
            "inet",
            "f2b-table",
            "f2b-chain",
            "ip",
            "saddr",
            "@addr-set-web",
            "drop",
        ]);
        assert_eq!(rules_on("addr-set-web"), 2);
        let acts = JailActions::new("web", &defs2, &Settings::default());
        acts.start(tickets(&["192.0.2.2", "198.51.100.1"]))
            .await
            .unwrap();
        assert_eq!(rules_on("addr-set-web"), 1);
        let table = nft(&["list", "table", "inet", "f2b-table"]);
        assert!(
            !table.contains("addr6-set-web"),
            "no IPv6 ban left: {table}"
        );
        assert_eq!(elements("addr-set-web"), ["192.0.2.2", "198.51.100.1"]);

        // Fail2ban's own set (no `flags interval`) is replaced, bans kept.
        drop(acts);
        nft(&["delete", "table", "inet", "f2b-table"]);
        let stock = "add table inet f2b-table\n\
                     add chain inet f2b-table f2b-chain { type filter hook input priority -1 ; }\n\
                     add set inet f2b-table addr-set-web { type ipv4_addr; }\n\
                     add rule inet f2b-table f2b-chain meta l4proto { tcp } ip saddr @addr-set-web reject\n\
                     add element inet f2b-table addr-set-web { 192.0.2.2 }\n";
        netns::nft_script(stock);
        let acts = JailActions::new("web", &defs2, &Settings::default());
        acts.start(tickets(&["192.0.2.2", "192.0.2.0/24"]))
            .await
            .unwrap();
        assert_eq!(elements("addr-set-web"), ["192.0.2.0/24"]);
        assert_eq!(rules_on("addr-set-web"), 1);
        assert!(
            nft(&["list", "set", "inet", "f2b-table", "addr-set-web"]).contains("flags interval")
        );
    });
}

/// The table disappears behind logban's back: the next ban finds out, puts
/// everything back and reports nothing amiss.
#[test]
fn repairs_a_table_deleted_behind_its_back() {
    let pair = Pair::new("nfrep");
    pair.listen(2222);
    let (_tree, defs) = web_defs("nftables-allports", "");
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        acts.ban(tickets(&["192.0.2.2"])).await.unwrap();
        nft(&["delete", "table", "inet", "f2b-table"]);
        acts.ban(tickets(&["198.51.100.3"])).await.unwrap();
        assert_eq!(elements("addr-set-web"), ["192.0.2.2", "198.51.100.3"]);
        assert_eq!(rules_on("addr-set-web"), 1);
        assert!(acts.enforced());
    });
}

#[test]
fn missing_nft_is_loud() {
    let pair = Pair::new("nfmiss");
    let (_tree, defs) = web_defs("nftables-allports", "");
    let empty = tempfile::tempdir().unwrap();
    let settings = Settings {
        path: Some(empty.path().as_os_str().to_owned()),
        ..Settings::default()
    };
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &settings);
        let err = acts.ban(tickets(&["192.0.2.2"])).await.unwrap_err();
        assert_eq!(err.0[0].1.cause, Cause::MissingTool);
        let status = &acts.status()[0];
        assert!(!status.enforced);
        let msg = status.last_error.as_ref().unwrap().to_string();
        assert!(
            msg.contains("not installed") && msg.contains("iptables"),
            "{msg}"
        );
        assert!(!acts.enforced());
    });
}

/// While nft refuses, bans are recorded and the status says they are not
/// enforced; once nft works again the action catches up on its own.
#[test]
fn catches_up_once_nft_works_again() {
    let pair = Pair::new("nfheal");
    let dir = tempfile::tempdir().unwrap();
    let (wrapper, refuse) = (dir.path().join("nft"), dir.path().join("refuse"));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e {} ] && {{ echo 'Error: Could not process rule: Operation not permitted' >&2; exit 1; }}\n\
             exec nft \"$@\"\n",
            refuse.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(&refuse, "").unwrap();
    let (_tree, defs) = web_defs(
        "nftables-allports",
        &format!("action = nftables-allports[nftables={}]", wrapper.display()),
    );
    let settings = Settings {
        retry_every: std::time::Duration::from_millis(100),
        ..Settings::default()
    };
    block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &settings);
        assert_eq!(acts.status()[0].kind, BackendKind::Nftables);
        let e = acts.start(tickets(&["192.0.2.2"])).await.unwrap_err();
        assert_eq!(e.0[0].1.cause, Cause::NoPermission);
        let e = acts.ban(tickets(&["198.51.100.2"])).await.unwrap_err();
        assert_eq!(e.0[0].1.cause, Cause::NoPermission);
        assert!(!acts.enforced());
        std::fs::remove_file(&refuse).unwrap();
        for _ in 0..200 {
            if acts.enforced() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(acts.enforced(), "{:?}", acts.status());
        assert_eq!(elements("addr-set-web"), ["192.0.2.2", "198.51.100.2"]);
    });
}

/// Without NET_ADMIN nft is refused: the error names the fix, is logged once
/// however many bans fail, and the status says bans are not enforced.
#[test]
fn without_net_admin_bans_are_not_enforced_and_it_says_so() {
    let pair = Pair::new("nfcap");
    let (_tree, defs) = web_defs("nftables-allports", "");
    let log = netns::Captured::default();
    netns::block_on_logged_in(&pair.server, &log, move || {
        // Programs this thread starts can never hold NET_ADMIN.
        // SAFETY: prctl on the calling thread's bounding set.
        const CAP_NET_ADMIN: libc::c_ulong = 12;
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "cannot drop CAP_NET_ADMIN: {}",
            std::io::Error::last_os_error()
        );
        async move {
            let acts = JailActions::new("web", &defs, &Settings::default());
            let e = acts.start(tickets(&["192.0.2.2"])).await.unwrap_err();
            assert_eq!(e.0[0].1.cause, Cause::NoPermission, "{e}");
            for ip in ["198.51.100.1", "198.51.100.2"] {
                let e = acts.ban(tickets(&[ip])).await.unwrap_err();
                assert_eq!(e.0[0].1.cause, Cause::NoPermission);
            }
            let status = &acts.status()[0];
            assert!(!status.enforced);
            assert!(status
                .last_error
                .as_ref()
                .unwrap()
                .message
                .contains("NET_ADMIN"));
        }
    });
    let text = log.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("NET_ADMIN") && errors[0].contains("NOT enforced"),
        "{text}"
    );
}

/// A port that /etc/services does not know is a configuration error that the
/// status shows, not a silent non-ban.
#[test]
fn unknown_port_name_is_reported() {
    let (_tree, defs) = web_defs("nftables-multiport", "port = smtp,no-such-port");
    netns::rt().block_on(async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        let status = &acts.status()[0];
        assert_eq!(status.kind, BackendKind::Nftables);
        assert!(!status.enforced);
        let e = acts.ban(tickets(&["192.0.2.2"])).await.unwrap_err();
        assert_eq!(e.0[0].1.cause, Cause::Config);
        assert!(e.0[0].1.message.contains("\"no-such-port\""), "{e}");
    });
}
