//! The action worker of a jail: one tokio task that takes the jail's action
//! work in order (start with the restored bans, ban batches, unbans, stop)
//! and carries it out through the jail's [`JailActions`], so that a slow
//! firewall never holds up the core. Requests may carry a `done` signal (a
//! command's reply waits for it). What the actions report about enforcement
//! is kept for `status <jail>`.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::action::{BackendKind, JailActions, Merged, Settings, StopMode, Ticket};
use crate::config::ActionDef;
use crate::jail::Ban;
use crate::store::MergedBans;

/// Action work, in the jail's order.
#[derive(Debug)]
pub(crate) enum Op {
    /// Start the actions with the bans restored from the store (one batch).
    Start(Vec<Ticket>),
    Ban(Vec<Ticket>),
    Unban(Vec<Ticket>),
    /// Stop the actions with the bans still in force: `Full` unbans them
    /// (server or jail stop); `KeepNative` leaves native firewall state for
    /// the actions that take over (reload).
    Stop(Vec<Ticket>, StopMode),
}

struct Req {
    op: Op,
    done: Option<oneshot::Sender<()>>,
}

/// A ban as the actions see it; `merged`: the address's bans over all jails
/// and in this jail, from the store, for actions that use `<ipmatches>` and
/// the like.
pub(crate) fn ticket(b: &Ban, merged: Option<(Option<MergedBans>, Option<MergedBans>)>) -> Ticket {
    let to = |m: Option<MergedBans>| {
        m.map(|m| Merged {
            matches: m.matches(),
            failures: u32::try_from(m.failures()).unwrap_or(u32::MAX),
        })
    };
    let (merged_all, merged_jail) = match merged {
        Some((all, jail)) => (to(all), to(jail)),
        None => (None, None),
    };
    Ticket {
        fid: b.id.to_string(),
        failures: b.failures,
        time: b.time,
        bantime: b.bantime as i64,
        bancount: b.count,
        restored: b.restored,
        matches: b.matches.clone(),
        data: b.data.iter().cloned().collect(),
        merged_all,
        merged_jail,
    }
}

/// Whether some action of the jail uses the merged information of an
/// address (`<ipmatches>`, `<ipjailmatches>`, `<ipfailures>`,
/// `<ipjailfailures>`), which the store then computes for each ban.
pub(crate) fn uses_merged(defs: &[ActionDef]) -> bool {
    const TAGS: [&str; 4] = [
        "<ipmatches>",
        "<ipjailmatches>",
        "<ipfailures>",
        "<ipjailfailures>",
    ];
    defs.iter()
        .flat_map(|d| d.options.iter())
        .any(|(_, v)| TAGS.iter().any(|t| v.contains(t)))
}

/// The handle the core holds for a jail's action worker.
pub(crate) struct ActionWorker {
    tx: mpsc::UnboundedSender<Req>,
    actions: Arc<Mutex<Option<Arc<JailActions>>>>,
}

impl ActionWorker {
    /// Builds the jail's actions and starts the task (inside the runtime).
    /// An empty `action =` bans without touching anything. With `after`,
    /// the task takes its first request once that fires (the actions it
    /// replaces have stopped).
    pub fn start(
        jail: &str,
        defs: &[ActionDef],
        after: Option<oneshot::Receiver<()>>,
    ) -> ActionWorker {
        let actions = (!defs.is_empty())
            .then(|| Arc::new(JailActions::new(jail, defs, &Settings::default())));
        let shared = Arc::new(Mutex::new(actions));
        let (tx, mut rx) = mpsc::unbounded_channel::<Req>();
        let held = shared.clone();
        tokio::spawn(async move {
            if let Some(after) = after {
                let _ = after.await;
            }
            while let Some(req) = rx.recv().await {
                let stop = matches!(req.op, Op::Stop(..));
                let current = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(a) = current {
                    // Failures are logged by the actions (once per cause)
                    // and shown by `status`.
                    let _ = match req.op {
                        Op::Start(t) => a.start(t).await,
                        Op::Ban(t) => a.ban(t).await,
                        Op::Unban(t) => a.unban(t).await,
                        Op::Stop(t, mode) => {
                            held.lock().unwrap_or_else(|e| e.into_inner()).take();
                            // `status` only borrows the handle for a moment,
                            // so this is the last one now.
                            match Arc::try_unwrap(a) {
                                Ok(a) => a.stop(t, mode).await,
                                Err(a) => a.flush(t).await,
                            }
                        }
                    };
                }
                if let Some(done) = req.done {
                    let _ = done.send(());
                }
                if stop {
                    return;
                }
            }
        });
        ActionWorker {
            tx,
            actions: shared,
        }
    }

    /// A sender that can be moved to another thread (the store thread hands
    /// committed bans over with it).
    pub fn sender(&self) -> ActionSender {
        ActionSender(self.tx.clone())
    }

    /// How each action carries bans out (none once stopped).
    pub fn kinds(&self) -> Vec<BackendKind> {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        actions
            .as_ref()
            .map(|a| a.status().into_iter().map(|s| s.kind).collect())
            .unwrap_or_default()
    }

    /// None when bans are carried out, else which actions fail and why.
    pub fn not_enforced(&self) -> Option<String> {
        let actions = self
            .actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let failing: Vec<String> = actions
            .status()
            .into_iter()
            .filter(|s| !s.enforced)
            .map(|s| match s.last_error {
                Some(e) => format!("{}: {e}", s.name),
                None => s.name,
            })
            .collect();
        (!failing.is_empty()).then(|| failing.join("; "))
    }
}

/// Queues work for a jail's action worker from any thread.
#[derive(Clone)]
pub(crate) struct ActionSender(mpsc::UnboundedSender<Req>);

impl ActionSender {
    pub fn send(&self, op: Op, done: Option<oneshot::Sender<()>>) {
        // A stopped worker has nothing left to do; `done` is then dropped,
        // which the waiting side takes as done too.
        let _ = self.0.send(Req { op, done });
    }
}

/// How the actions a reload replaces stop: native firewall state stays when
/// the new actions carry bans out the same way (they reconcile it, nothing
/// is unbanned in between); otherwise they stop as on a jail stop.
pub(crate) fn stop_mode_for(old: &[BackendKind], new: &[BackendKind]) -> StopMode {
    let kept = old
        .iter()
        .filter(|k| **k != BackendKind::Command)
        .all(|k| new.contains(k));
    if kept {
        StopMode::KeepNative
    } else {
        StopMode::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_state_is_kept_only_for_the_same_kind_of_firewall() {
        use BackendKind::*;
        assert_eq!(
            stop_mode_for(&[Nftables], &[Nftables]),
            StopMode::KeepNative
        );
        assert_eq!(
            stop_mode_for(&[Nftables, Command], &[Nftables]),
            StopMode::KeepNative
        );
        assert_eq!(stop_mode_for(&[Command], &[Nftables]), StopMode::KeepNative);
        assert_eq!(stop_mode_for(&[Nftables], &[Command]), StopMode::Full);
        assert_eq!(stop_mode_for(&[HostsDeny], &[Nftables]), StopMode::Full);
        assert_eq!(stop_mode_for(&[Nftables], &[]), StopMode::Full);
    }
}
