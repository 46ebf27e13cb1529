//! Terminals for `berth run -t`: runc hands the pseudo-terminal's master to a
//! unix socket we listen on (`--console-socket`); we relay it to the user's
//! terminal, in raw mode, and follow window resizes.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("the runtime did not send a terminal within {0:?}")]
    Timeout(Duration),
    #[error("receiving the terminal: {0}")]
    Receive(nix::Error),
    #[error("the runtime's message held no terminal")]
    NoFd,
    #[error("terminal: {0}")]
    Terminal(nix::Error),
}

/// Listens where runc will connect.
pub fn listen(path: &Path) -> Result<UnixListener, ConsoleError> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|source| ConsoleError::Socket {
        path: path.display().to_string(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ConsoleError::Socket {
            path: path.display().to_string(),
            source,
        })?;
    Ok(listener)
}

/// Waits for runc's connection and takes the terminal master it sends.
/// `gave_up` is polled meanwhile (the container may fail before runc connects).
pub fn receive_master(
    listener: &UnixListener,
    timeout: Duration,
    gave_up: impl Fn() -> bool,
) -> Result<OwnedFd, ConsoleError> {
    let deadline = Instant::now() + timeout;
    let stream: UnixStream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline || gave_up() {
                    return Err(ConsoleError::Timeout(timeout));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(source) => {
                return Err(ConsoleError::Socket {
                    path: "accept".into(),
                    source,
                })
            }
        }
    };
    stream
        .set_nonblocking(false)
        .map_err(|source| ConsoleError::Socket {
            path: "stream".into(),
            source,
        })?;
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(ConsoleError::Receive)?;
    for cmsg in message.cmsgs().map_err(ConsoleError::Receive)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY-free: the kernel just installed this descriptor for
                // us (SCM_RIGHTS), so we are its only owner.
                return Ok(owned(fd));
            }
        }
    }
    Err(ConsoleError::NoFd)
}

#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was received through SCM_RIGHTS a moment ago: it is open,
    // and nothing else in this process knows it, so taking ownership is sound.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The user's terminal in raw mode until dropped.
pub struct RawMode {
    original: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> Self {
        let stdin = std::io::stdin();
        let Ok(original) = tcgetattr(stdin.as_fd()) else {
            return RawMode { original: None }; // not a terminal: nothing to do
        };
        let mut raw = original.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode {
            original: Some(original),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(original) = &self.original {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, original);
        }
    }
}

/// Copies the window size of `from` (the user's terminal) to `to` (the
/// container's), when `from` is a terminal.
#[allow(unsafe_code)]
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own and
    // TIOCSWINSZ reads one from it; both fds are valid for the call.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Relays between the user's terminal and the container's until the
/// container side closes. `on_signal` gets SIGINT/SIGTERM/SIGHUP/SIGQUIT
/// that arrive meanwhile (SIGWINCH is handled here).
pub fn relay(master: OwnedFd, on_signal: &mut dyn FnMut(i32)) -> Result<(), ConsoleError> {
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        signals.add(signal);
    }
    signals.thread_block().map_err(ConsoleError::Terminal)?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(ConsoleError::Terminal)?;
    let stdin = std::io::stdin();
    copy_window_size(stdin.as_fd(), master.as_fd());
    let mut master_file = std::fs::File::from(master);
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        let master_fd = master_file.as_fd();
        let mut fds = vec![
            PollFd::new(master_fd, PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ConsoleError::Terminal(e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (master_ready, signal_ready, stdin_ready) =
            (ready(0), ready(1), stdin_open && ready(2));
        drop(fds);
        if signal_ready {
            while let Ok(Some(info)) = signal_fd.read_signal() {
                if info.ssi_signo as i32 == Signal::SIGWINCH as i32 {
                    copy_window_size(stdin.as_fd(), master_file.as_fd());
                } else {
                    on_signal(info.ssi_signo as i32);
                }
            }
        }
        if master_ready {
            match master_file.read(&mut buf) {
                // EIO: every process on the terminal is gone.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = stdout.write_all(&buf[..n]);
                    let _ = stdout.flush();
                }
            }
        }
        if stdin_ready {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master_file.write_all(&buf[..n]);
                }
            }
        }
    }
    Ok(())
}
