//! Fail2ban's legacy actions run by the command runner against real
//! iptables, ipset and routes in network namespaces: iptables-multiport and
//! iptables-ipset (ban batches go through `iptables-restore` / `ipset
//! restore`), route.

mod common;

use std::io::ErrorKind;
use std::process::Command;

use common::fail2ban::{self, action_defs};
use common::netns::{self, connect_from, server_addr, tickets, Captured, Pair};
use logban::action::{BackendKind, JailActions, Settings, StopMode};

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn jail_local(banaction: &str) -> String {
    fail2ban::jail_local("web", &format!("port = 2222\nbanaction = {banaction}"))
}

/// Bans and unbans in batches of two addresses per family with `banaction`,
/// checking the service on port 2222 (and that port 8081 stays open), then
/// `check` on the firewall while the bans hold; returns the log.
fn ban_cycle(tag: &str, banaction: &str, check: fn(bool)) -> String {
    let pair = Pair::new(tag);
    pair.listen(2222);
    pair.listen(8081);
    let (_tree, defs) = action_defs(
        &[("jail.local", &jail_local(banaction))],
        "web",
        &[banaction],
    );
    let attacker = pair.attacker.clone();
    let log = Captured::default();
    netns::block_on_logged_in(&pair.server, &log, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        assert_eq!(acts.status()[0].kind, BackendKind::Command);
        acts.start(vec![]).await.unwrap();
        let bans = tickets(&["192.0.2.2", "198.51.100.4", "2001:db8::2", "2001:db8::99"]);
        acts.ban(bans.clone()).await.unwrap();
        for v6 in [false, true] {
            assert_eq!(
                connect_from(&attacker, server_addr(v6, 2222)),
                Err(ErrorKind::ConnectionRefused),
                "v6: {v6}"
            );
            assert_eq!(connect_from(&attacker, server_addr(v6, 8081)), Ok(()));
        }
        check(true);
        acts.unban(bans).await.unwrap();
        for v6 in [false, true] {
            assert_eq!(connect_from(&attacker, server_addr(v6, 2222)), Ok(()));
        }
        check(false);
        assert!(acts.enforced());
        acts.stop(vec![], StopMode::Full).await.unwrap();
    });
    log.text()
}

#[test]
fn iptables_multiport_bans_in_one_restore_per_family() {
    let log = ban_cycle("ipt", "iptables-multiport", |banned| {
        let (ok, v4) = run("iptables", &["-S", "f2b-web"]);
        assert!(ok);
        assert_eq!(
            v4.contains("-A f2b-web -s 192.0.2.2/32 -j REJECT"),
            banned,
            "{v4}"
        );
        assert_eq!(
            v4.contains("-A f2b-web -s 198.51.100.4/32 -j REJECT"),
            banned,
            "{v4}"
        );
        let (_, v6) = run("ip6tables", &["-S", "f2b-web"]);
        assert_eq!(
            v6.contains("-A f2b-web -s 2001:db8::2/128 -j REJECT"),
            banned,
            "{v6}"
        );
        let (_, input) = run("iptables", &["-S", "INPUT"]);
        assert!(
            input.contains("-p tcp -m multiport --dports 2222 -j f2b-web"),
            "{input}"
        );
    });
    assert!(
        !log.contains("one by one"),
        "the batches fell back to single commands:\n{log}"
    );
    assert!(
        log.contains("2 x actionban in one iptables-restore"),
        "{log}"
    );
    assert!(
        log.contains("2 x actionban in one ip6tables-restore"),
        "{log}"
    );
    assert!(
        log.contains("2 x actionunban in one iptables-restore"),
        "{log}"
    );
}

#[test]
fn iptables_ipset_bans_in_one_restore_per_family() {
    let log = ban_cycle("ips", "iptables-ipset", |banned| {
        let (ok, v4) = run("ipset", &["list", "f2b-web"]);
        assert!(ok);
        assert_eq!(v4.contains("192.0.2.2 timeout 0"), banned, "{v4}");
        let (_, v6) = run("ipset", &["list", "f2b-web6"]);
        assert_eq!(v6.contains("2001:db8::99 timeout 0"), banned, "{v6}");
        let (_, input) = run("iptables", &["-S", "INPUT"]);
        assert!(
            input.contains("--match-set f2b-web src -j REJECT"),
            "{input}"
        );
    });
    assert!(
        !log.contains("one by one"),
        "the batches fell back to single commands:\n{log}"
    );
    assert!(log.contains("2 x actionban in one ipset"), "{log}");
    assert!(log.contains("2 x actionunban in one ipset"), "{log}");
}

#[test]
fn route_blackholes_until_unban() {
    let pair = Pair::new("rte");
    pair.listen(2222);
    let (_tree, defs) = action_defs(&[("jail.local", &jail_local("route"))], "web", &["route"]);
    let attacker = pair.attacker.clone();
    netns::block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("web", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        acts.ban(tickets(&["192.0.2.2"])).await.unwrap();
        let (_, routes) = run("ip", &["route", "show", "type", "unreachable"]);
        assert!(routes.contains("unreachable 192.0.2.2"), "{routes}");
        assert!(connect_from(&attacker, server_addr(false, 2222)).is_err());
        acts.unban(tickets(&["192.0.2.2"])).await.unwrap();
        assert_eq!(connect_from(&attacker, server_addr(false, 2222)), Ok(()));
        // Unbanning what is not banned fails as in Fail2ban, loudly.
        acts.ban(tickets(&["198.51.100.1"])).await.unwrap();
        run("ip", &["route", "del", "unreachable", "198.51.100.1"]);
        let err = acts.unban(tickets(&["198.51.100.1"])).await.unwrap_err();
        assert!(err.to_string().contains("actionunban returned 2"), "{err}");
    });
}
