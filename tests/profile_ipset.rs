//! Our iptables-ipset action blocks the jail's whole port list (the mail
//! jails list several ports), read from defaults/ by logban's own config
//! reader and run against real iptables and ipset in network namespaces;
//! `type` passed as with Fail2ban still picks one port or every port.

mod common;

use std::io::ErrorKind;

use common::netns::{self, connect_from, server_addr, tickets, Pair};
use logban::action::{JailActions, Settings, StopMode};
use logban::config::ConfigTree;

/// The dovecot jail of a copy of defaults/ with `jail_local` added and
/// `files` written into the copy; its actions as logban reads them.
fn dovecot_actions(jail_local: &str, files: &[(&str, &str)]) -> Vec<logban::config::ActionDef> {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path();
    common::copy_defaults(conf);
    let local = format!("[dovecot]\nlogpath = /dev/null\n{jail_local}\n");
    std::fs::write(conf.join("jail.local"), local).unwrap();
    for (rel, text) in files {
        std::fs::write(conf.join(rel), text).unwrap();
    }
    let jail = ConfigTree::open(conf).unwrap().jail("dovecot").unwrap();
    assert_eq!(jail.actions.len(), 1, "{:?}", jail.actions);
    assert_eq!(jail.actions[0].file, "iptables-ipset");
    jail.actions
}

/// Bans the attacker (both families) with the dovecot jail's action from
/// `jail_local`/`files` and returns which of IMAP (143), IMAPS (993) and a
/// port outside the jail's list (8081) it can still reach; unbans and
/// checks that everything is reachable again.
fn reachable_while_banned(tag: &str, jail_local: &str, files: &[(&str, &str)]) -> [bool; 3] {
    const PORTS: [u16; 3] = [143, 993, 8081];
    let pair = Pair::new(tag);
    for port in PORTS {
        pair.listen(port);
    }
    let defs = dovecot_actions(jail_local, files);
    let attacker = pair.attacker.clone();
    netns::block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("dovecot", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        let bans = tickets(&["192.0.2.2", "2001:db8::2"]);
        acts.ban(bans.clone()).await.unwrap();
        assert!(acts.enforced(), "{:?}", acts.status());
        let open = |v6: bool| PORTS.map(|p| connect_from(&attacker, server_addr(v6, p)));
        let v4 = open(false);
        assert_eq!(v4, open(true), "IPv4 and IPv6 differ");
        for r in v4 {
            assert!(
                matches!(r, Ok(()) | Err(ErrorKind::ConnectionRefused)),
                "{r:?}"
            );
        }
        acts.unban(bans).await.unwrap();
        assert_eq!(open(false), [Ok(()); 3]);
        assert_eq!(open(true), [Ok(()); 3]);
        acts.stop(vec![], StopMode::Full).await.unwrap();
        v4.map(|r| r.is_ok())
    })
}

#[test]
fn the_jails_port_list_is_blocked_by_default() {
    let open = reachable_while_banned("ipl", "banaction = iptables-ipset", &[]);
    assert_eq!(open, [false, false, true], "143, 993 blocked; 8081 open");
}

#[test]
fn type_passed_as_with_fail2ban_still_counts() {
    let every = reachable_while_banned("ipa", "banaction = iptables-ipset[type=allports]", &[]);
    assert_eq!(every, [false, false, false]);
    // A jail whose port is one port, with Fail2ban's oneport rule.
    let one = reachable_while_banned(
        "ipo",
        "port = imap\nbanaction = iptables-ipset[type=oneport]",
        &[],
    );
    assert_eq!(one, [false, true, true]);
    // The .local file the README shows, for every jail at once.
    let local = reachable_while_banned(
        "ipi",
        "banaction = iptables-ipset",
        &[("action.d/iptables-ipset.local", "[Init]\ntype = allports\n")],
    );
    assert_eq!(local, [false, false, false]);
}
