//! The daemon's unix socket under `--state` (mode 0600; only root and the
//! daemon's own user are answered): one JSON request line, then the answer
//! as JSON lines. `status` answers once; `events` sends the log from a time
//! on and, with `follow`, each new event as it is written, until either
//! side closes; `resync` makes the daemon run a pass now (as SIGHUP does,
//! for `berth job run`) and answers `{"ok":true}`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::status::DaemonStatus;
use crate::state::events::{Event, EventLog};

/// The longest request line read: requests are a few dozen bytes.
const MAX_REQUEST: u64 = 4096;
/// Connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 32;
/// How often a follower looks for new events.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "get", rename_all = "camelCase")]
pub enum Request {
    Status,
    #[serde(rename_all = "camelCase")]
    Events {
        since_unix_ms: Option<u64>,
        follow: bool,
    },
    /// Read the tree and run a pass now.
    Resync,
}

/// The answer to a request that only asks the daemon to do something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub ok: bool,
}

/// What the serving threads share with the daemon's loop.
#[derive(Clone)]
pub struct Shared {
    pub status: Arc<Mutex<DaemonStatus>>,
    pub events: Arc<EventLog>,
    pub stopping: Arc<AtomicBool>,
    /// Wakes the daemon's loop for a pass now (a `resync` request).
    pub poke: Arc<dyn Fn() + Send + Sync>,
}

/// Listens at `path` (a stale socket of a dead daemon is replaced: the
/// caller holds the daemon lock) and serves in the background.
pub fn serve(path: &Path, shared: Shared) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("socket".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if clients.load(Ordering::SeqCst) >= MAX_CLIENTS || !is_trusted_peer(&stream) {
                    continue;
                }
                clients.fetch_add(1, Ordering::SeqCst);
                let (shared, clients) = (shared.clone(), clients.clone());
                let spawned = std::thread::Builder::new()
                    .name("client".into())
                    .spawn(move || {
                        if let Err(error) = answer(stream, &shared) {
                            tracing::debug!(%error, "socket client");
                        }
                        clients.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    tracing::warn!("cannot start a thread for a socket client");
                }
            }
        })?;
    Ok(())
}

/// Root, or the user the daemon runs as.
fn is_trusted_peer(stream: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials)
        .is_ok_and(|cred| cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw())
}

fn answer(stream: UnixStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let request: Request = serde_json::from_str(&line).map_err(std::io::Error::other)?;
    let mut out = std::io::BufWriter::new(&stream);
    match request {
        Request::Status => {
            let mut status = shared
                .status
                .lock()
                .map_err(|_| std::io::Error::other("status lock poisoned"))?
                .clone();
            status.running = true;
            write_line(&mut out, &status)?;
            out.flush()
        }
        Request::Events {
            since_unix_ms,
            follow,
        } => {
            let mut follower = shared.events.follower();
            for event in shared.events.read_since(since_unix_ms) {
                write_line(&mut out, &event)?;
            }
            out.flush()?;
            while follow && !shared.stopping.load(Ordering::SeqCst) {
                std::thread::sleep(FOLLOW_EVERY);
                for event in follower.next_batch() {
                    write_line(&mut out, &event)?;
                }
                out.flush()?;
            }
            Ok(())
        }
        Request::Resync => {
            (shared.poke)();
            write_line(&mut out, &Done { ok: true })?;
            out.flush()
        }
    }
}

fn write_line<T: Serialize>(out: &mut impl Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// The CLI's side: a connection to the daemon of a state root, when one
/// runs there.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// None when no daemon listens at `path`.
    pub fn connect(path: &Path) -> Option<Client> {
        UnixStream::connect(path)
            .ok()
            .map(|stream| Client { stream })
    }

    pub fn status(self) -> std::io::Result<DaemonStatus> {
        let mut lines = self.send(&Request::Status)?;
        let line = lines
            .next()
            .ok_or_else(|| std::io::Error::other("the daemon closed the connection"))??;
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }

    /// Asks the daemon to read its tree and run a pass now; returns once
    /// it has taken the request (not once the pass is done).
    pub fn resync(self) -> std::io::Result<()> {
        let mut lines = self.send(&Request::Resync)?;
        let line = lines
            .next()
            .ok_or_else(|| std::io::Error::other("the daemon closed the connection"))??;
        let done: Done = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        if done.ok {
            Ok(())
        } else {
            Err(std::io::Error::other("the daemon refused to resync"))
        }
    }

    /// The events from `since_unix_ms` on, and with `follow` new ones as
    /// they come, each handed to `each` until it returns false.
    pub fn events(
        self,
        since_unix_ms: Option<u64>,
        follow: bool,
        each: &mut dyn FnMut(Event) -> bool,
    ) -> std::io::Result<()> {
        for line in self.send(&Request::Events {
            since_unix_ms,
            follow,
        })? {
            let event: Event = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
            if !each(event) {
                break;
            }
        }
        Ok(())
    }

    fn send(mut self, request: &Request) -> std::io::Result<std::io::Lines<BufReader<UnixStream>>> {
        write_line(&mut self.stream, request)?;
        Ok(BufReader::new(self.stream).lines())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_tagged_json_line() {
        let text = serde_json::to_string(&Request::Events {
            since_unix_ms: Some(5),
            follow: true,
        })
        .unwrap();
        assert_eq!(text, r#"{"get":"events","sinceUnixMs":5,"follow":true}"#);
        let status: Request = serde_json::from_str(r#"{"get":"status"}"#).unwrap();
        assert_eq!(status, Request::Status);
        let resync: Request = serde_json::from_str(r#"{"get":"resync"}"#).unwrap();
        assert_eq!(resync, Request::Resync);
    }

    #[test]
    fn a_resync_request_pokes_the_daemon_and_is_answered_ok() {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::state::Layout::new(&dir.path().join("root"), &dir.path().join("state"));
        let poked = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            status: Arc::default(),
            events: Arc::new(EventLog::new(&layout)),
            stopping: Arc::new(AtomicBool::new(false)),
            poke: {
                let poked = poked.clone();
                Arc::new(move || {
                    poked.fetch_add(1, Ordering::SeqCst);
                })
            },
        };
        let path = dir.path().join("daemon.sock");
        serve(&path, shared).unwrap();
        let client = Client::connect(&path).expect("the socket listens");
        client.resync().expect("the daemon answers ok");
        assert_eq!(poked.load(Ordering::SeqCst), 1);
    }
}
