//! A reload that changes a jail's nftables action (another port list) in a
//! network namespace: the new rule is in place, the attacker banned before
//! is kept out of the new port too, and no set element is deleted on the way
//! (`nft monitor` watches; a probe ban and unban shows it sees deletions).

#[path = "common/netns.rs"]
mod netns;
mod server_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use netns::Pair;
use server_support::*;

const ACTIONS: &str = "/etc/fail2ban/action.d";

fn jail_local(ports: &str) -> String {
    format!("[test]\naction = nftables-multiport[port=\"{ports}\", protocol=tcp]\n")
}

#[test]
fn a_changed_nftables_action_takes_over_without_unbanning() {
    assert!(
        std::path::Path::new(ACTIONS)
            .join("nftables-multiport.conf")
            .exists(),
        "{ACTIONS}: these tests read Fail2ban's installed actions (apt-get install fail2ban)"
    );
    let pair = Pair::new("rld");
    pair.listen(25);
    pair.listen(587);
    let sb = Sandbox::new("");
    netns::sh("cp", &["-r", ACTIONS, sb.path("etc").to_str().unwrap()]);
    sb.write("etc/jail.local", &jail_local("25"));
    sb.write("auth.log", "");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &pair.server, BIN, "server", "-c"])
        .arg(sb.path("etc"))
        .arg("-s")
        .arg(sb.socket())
        .arg("-p")
        .arg(sb.path("run/server.pid"))
        .args(["-xf", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let server = sb.start_with(cmd);
    let table = || pair.server_sh("nft", &["list", "table", "inet", "f2b-table"]);
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
    let monitor_out = sb.path("monitor.out");
    let mut monitor = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.server,
            "stdbuf",
            "-oL",
            "nft",
            "monitor",
        ])
        .stdout(std::fs::File::create(&monitor_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("nft monitor");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (ns, stop) = (pair.server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut listings = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &ns,
                        "nft",
                        "list",
                        "set",
                        "inet",
                        "f2b-table",
                        "addr-set-test",
                    ])
                    .output()
                    .unwrap();
                listings.push(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            listings
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    sb.write("etc/jail.local", &jail_local("25,587"));
    assert_eq!(sb.ok(&["reload"]), "OK\n");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let listings = poller.join().unwrap();
    let _ = monitor.kill();
    let _ = monitor.wait();
    assert!(listings.len() >= 5, "{} listings", listings.len());
    for l in &listings {
        assert!(
            l.contains("elements = { 192.0.2.2 }"),
            "a listing without the ban:\n{l}"
        );
    }
    let seen = std::fs::read_to_string(&monitor_out).unwrap();
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
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.server,
            "nft",
            "list",
            "table",
            "inet",
            "f2b-table",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "table left behind");
}
