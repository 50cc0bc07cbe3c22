//! The action worker of a jail: one tokio task that takes the jail's action
//! work in order (start with the restored bans, ban batches, unbans, stop)
//! and carries it out through the jail's actions, so that a slow firewall
//! never holds up the core. Requests may carry a `done` signal (a command's
//! reply waits for it). What the actions report about enforcement is kept
//! for `status <jail>`.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::config::ActionDef;
use crate::jail::Ban;

/// Action work, in the jail's order.
#[derive(Debug)]
pub(crate) enum Op {
    /// Start the actions with the bans restored from the store (one batch).
    Start(Vec<Ban>),
    Ban(Vec<Ban>),
    Unban(Vec<Ban>),
    /// Unban what is still banned and stop the actions (server stop).
    Stop(Vec<Ban>),
}

impl Op {
    fn bans(&self) -> &[Ban] {
        match self {
            Op::Start(b) | Op::Ban(b) | Op::Unban(b) | Op::Stop(b) => b,
        }
    }
}

struct Req {
    op: Op,
    done: Option<oneshot::Sender<()>>,
}

/// How the jail's bans are carried out.
enum Backend {
    /// `action =` empty: bans are decisions only, nothing to touch.
    Nothing,
    /// Actions are configured but this build cannot run them.
    Unavailable(String),
}

impl Backend {
    fn new(jail: &str, defs: &[ActionDef]) -> Backend {
        if defs.is_empty() {
            return Backend::Nothing;
        }
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        let reason = format!(
            "actions {} cannot run: this build has no action backend",
            names.join(", ")
        );
        tracing::error!(target: "fail2ban.actions",
            "[{jail}] {reason} -- bans are recorded but NOT enforced");
        Backend::Unavailable(reason)
    }

    async fn run(&mut self, jail: &str, op: &Op) {
        match self {
            Backend::Nothing => {}
            Backend::Unavailable(_) => {
                if !op.bans().is_empty() {
                    tracing::debug!(target: "fail2ban.actions",
                        "[{jail}] {} ticket(s) not carried out", op.bans().len());
                }
            }
        }
    }

    /// None when every ban is carried out, else why not.
    fn not_enforced(&self) -> Option<String> {
        match self {
            Backend::Nothing => None,
            Backend::Unavailable(reason) => Some(reason.clone()),
        }
    }
}

/// The handle the core holds for a jail's action worker.
pub(crate) struct ActionWorker {
    tx: mpsc::UnboundedSender<Req>,
    state: Arc<Mutex<Option<String>>>,
}

impl ActionWorker {
    /// Builds the jail's actions and starts the task (inside the runtime).
    pub fn start(jail: &str, defs: &[ActionDef]) -> ActionWorker {
        let mut backend = Backend::new(jail, defs);
        let state = Arc::new(Mutex::new(backend.not_enforced()));
        let (tx, mut rx) = mpsc::unbounded_channel::<Req>();
        let shared = state.clone();
        let jail = jail.to_string();
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                backend.run(&jail, &req.op).await;
                *shared.lock().unwrap_or_else(|e| e.into_inner()) = backend.not_enforced();
                if let Some(done) = req.done {
                    let _ = done.send(());
                }
                if matches!(req.op, Op::Stop(_)) {
                    return;
                }
            }
        });
        ActionWorker { tx, state }
    }

    /// A sender that can be moved to another thread (the store thread hands
    /// committed bans over with it).
    pub fn sender(&self) -> ActionSender {
        ActionSender(self.tx.clone())
    }

    /// None when bans are enforced, else the reason.
    pub fn not_enforced(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
