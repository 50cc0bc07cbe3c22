//! 50,000 bans through the native nftables backend in a network namespace:
//! all reach the set in one call, a restart with the firewall intact changes
//! nothing, a restart on an empty firewall puts them all back, and a firewall
//! left half-way by a killed burst is brought back to the store. Prints
//! timings (`scale:` lines) for bench/firewall.sh; asserts only outcomes.

mod common;

use std::time::Instant;

use common::{fail2ban, netns};
use logban::action::{JailActions, Settings, StopMode, Ticket};

const N: usize = 50_000;

/// The `n`-th test address: 2001:db8:1::/64 (documentation range).
fn addr(n: usize) -> String {
    format!("2001:db8:1::{:x}:{:x}", n >> 16, n & 0xffff)
}

/// Awaits `f`, printing how long it took as a `scale:` line.
async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let t = Instant::now();
    let v = f.await;
    eprintln!("scale: {what}: {:.3} s", t.elapsed().as_secs_f64());
    v
}

fn set_len(set: &str) -> usize {
    netns::nft_elements(set).len()
}

#[test]
fn fifty_thousand_bans_in_one_call_and_back_after_restart() {
    let pair = netns::Pair::new("scale");
    let local = fail2ban::jail_local(
        "custom",
        "banaction = nftables-multiport\nport = smtp,pop3,pop3s,imap,imaps,submission,submissions,sieve",
    );
    let (_tree, defs) = fail2ban::action_defs(
        &[
            ("jail.local", &local),
            (
                "action.d/nftables-common.local",
                "[Init]\nblocktype = drop\n",
            ),
        ],
        "custom",
        &["nftables-multiport"],
    );
    let bans: Vec<Ticket> = (0..N).map(|i| Ticket::new(addr(i))).collect();
    netns::block_on_in(&pair.server, move || async move {
        let acts = JailActions::new("custom", &defs, &Settings::default());
        acts.start(vec![]).await.unwrap();
        timed(&format!("{N} bans in one call"), acts.ban(bans.clone()))
            .await
            .unwrap();
        assert_eq!(set_len("addr6-set-custom"), N);

        // 20,000 unbans in one call.
        timed(
            "20000 unbans in one call",
            acts.unban(bans[..20_000].to_vec()),
        )
        .await
        .unwrap();
        assert_eq!(set_len("addr6-set-custom"), N - 20_000);
        acts.ban(bans[..20_000].to_vec()).await.unwrap();

        // Restart with the firewall intact: nothing to do.
        acts.stop(vec![], StopMode::KeepNative).await.unwrap();
        let acts = JailActions::new("custom", &defs, &Settings::default());
        timed(
            &format!("restart, {N} bans already in place"),
            acts.start(bans.clone()),
        )
        .await
        .unwrap();
        assert_eq!(set_len("addr6-set-custom"), N);

        // Restart on an empty firewall (container recreated).
        acts.stop(vec![], StopMode::Full).await.unwrap();
        let acts = JailActions::new("custom", &defs, &Settings::default());
        timed(
            &format!("restart, {N} bans back into an empty firewall"),
            acts.start(bans.clone()),
        )
        .await
        .unwrap();
        assert_eq!(set_len("addr6-set-custom"), N);

        // A burst of 10,000 killed half-way: the firewall holds 5,000 of them
        // (and 50,000 older ones); the store holds all 10,000 but lost 1,000
        // older unbans. The next start sets the firewall to the store.
        drop(acts);
        let burst: Vec<Ticket> = (N..N + 10_000).map(|i| Ticket::new(addr(i))).collect();
        let mut script = String::new();
        for chunk in burst[..5_000].chunks(1000) {
            let list: Vec<&str> = chunk.iter().map(|t| t.fid.as_str()).collect();
            script.push_str(&format!(
                "add element inet f2b-table addr6-set-custom {{ {} }}\n",
                list.join(", ")
            ));
        }
        netns::nft_script(&script);
        let store: Vec<Ticket> = bans[1_000..].iter().chain(&burst).cloned().collect();
        let acts = JailActions::new("custom", &defs, &Settings::default());
        timed("restart after a killed burst", acts.start(store.clone()))
            .await
            .unwrap();
        assert_eq!(set_len("addr6-set-custom"), store.len());
        assert!(acts.enforced());
    });
}
