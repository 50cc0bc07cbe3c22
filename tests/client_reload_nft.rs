//! A reload that changes a jail's nftables action (another port list) in a
//! network namespace: the new rule is in place, the attacker banned before
//! is kept out of the new port too, and no set element is deleted on the way
//! (`nft monitor` watches, and the set is listed again and again meanwhile).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::daemon::Sandbox;
use common::fail2ban;
use common::netns::{nft_table, Monitor, Pair};

const ACTIONS: &str = "/etc/fail2ban/action.d";

fn jail_local(ports: &str) -> String {
    format!("[test]\naction = nftables-multiport[port=\"{ports}\", protocol=tcp]\n")
}

#[test]
fn a_changed_nftables_action_takes_over_without_unbanning() {
    fail2ban::installed(&format!("{ACTIONS}/nftables-multiport.conf"));
    let pair = Pair::new("rld");
    pair.listen(25);
    pair.listen(587);
    let sb = Sandbox::new("");
    common::sh("cp", &["-r", ACTIONS, sb.path("etc").to_str().unwrap()]);
    sb.write("etc/jail.local", &jail_local("25"));
    let server = sb.start_in(&pair.server, None);
    let table = || nft_table(&pair.server).expect("table inet f2b-table");
    assert_eq!(sb.ok(&["set", "test", "banip", "192.0.2.2"]), "1\n");
    assert!(table().contains("elements = { 192.0.2.2 }"), "{}", table());
    assert!(pair.connect(false, 25).is_err(), "banned on port 25");
    assert!(
        pair.connect(false, 587).is_ok(),
        "587 is not in the rule yet"
    );

    // While the reload runs, the set is listed again and again: the banned
    // address must be in every listing (and `nft monitor` must not see it
    // deleted).
    let monitor = Monitor::start(&pair.server);
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (ns, stop) = (pair.server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut listings = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let out = Command::new("ip")
                    .args(["netns", "exec", &ns, "nft", "list", "set", "inet"])
                    .args(["f2b-table", "addr-set-test"])
                    .output()
                    .unwrap();
                listings.push(common::text(&out.stdout));
            }
            listings
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    sb.write("etc/jail.local", &jail_local("25,587"));
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let listings = poller.join().unwrap();
    let seen = monitor.finish().join("\n");
    assert!(listings.len() >= 5, "{} listings", listings.len());
    for l in &listings {
        assert!(
            l.contains("elements = { 192.0.2.2 }"),
            "a listing without the ban:\n{l}"
        );
    }
    assert!(!seen.contains("delete element"), "{seen}");
    assert!(!seen.contains("delete set"), "{seen}");
    let t = table();
    assert!(t.contains("tcp dport { 25, 587 }"), "{t}");
    assert!(t.contains("elements = { 192.0.2.2 }"), "{t}");
    assert!(
        pair.connect(false, 587).is_err(),
        "the new port is closed to the banned address"
    );
    assert_eq!(sb.status("test").banned, ["192.0.2.2"]);
    server.stop(&sb);
    // Stopped: the table is gone, as after Fail2ban's stop.
    assert_eq!(nft_table(&pair.server), None, "table left behind");
}
