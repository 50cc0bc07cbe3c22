//! The control socket server: one task per connection, each request handed
//! to the core with a reply channel, replies written back in order
//! (docs/protocol.md).

use std::io;
use std::os::unix::net::UnixListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Notify};

use super::core::Event;
use super::protocol::{read_line_async, write_line_async, ErrorKind, Reply};

/// Requests read and not answered yet, so that the last replies (`stop`'s)
/// are written before the server exits.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn begin(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until every request read has been answered, at most `limit`.
    pub async fn wait(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let idle = self.idle.notified();
                if self.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

/// Accepts connections until the runtime ends.
pub(crate) async fn serve(
    listener: StdListener,
    events: mpsc::UnboundedSender<Event>,
    inflight: Arc<InFlight>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, events.clone(), inflight.clone()));
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::error!(target: "fail2ban.server", "control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(
    stream: UnixStream,
    events: mpsc::UnboundedSender<Event>,
    inflight: Arc<InFlight>,
) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        let words = match read_line_async::<Vec<String>, _>(&mut r, &mut buf).await {
            Ok(Some(words)) => words,
            Ok(None) => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let reply = Reply::error(ErrorKind::InvalidCommand, e.to_string());
                let _ = write_line_async(&mut w, &reply).await;
                // After an overlong line the stream is out of step: drop it.
                if buf.len() > super::protocol::MAX_REQUEST {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        inflight.begin();
        let (tx, rx) = oneshot::channel();
        let reply = if events.send(Event::Command { words, reply: tx }).is_ok() {
            rx.await
                .unwrap_or_else(|_| Reply::error(ErrorKind::Failed, "the server is stopping"))
        } else {
            Reply::error(ErrorKind::Failed, "the server is stopping")
        };
        let written = write_line_async(&mut w, &reply).await;
        inflight.end();
        if written.is_err() {
            return;
        }
    }
}
