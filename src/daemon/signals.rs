//! SIGTERM and SIGINT ask the daemon to stop (after the action in flight),
//! SIGHUP to read the tree and resync now. The handler only sets a flag
//! and writes a byte to a pipe, the two things a handler may safely do; a
//! thread turns the bytes into wake-ups. No signal is blocked, so the
//! shims the daemon starts inherit an ordinary signal mask.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The write end of the pipe, for the handler (-1 before [`install`]).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// Set by the handler on SIGTERM or SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Stop,
    Resync,
}

#[allow(unsafe_code)] // reason: write(2) from a signal handler, which nix does not wrap for raw fds
extern "C" fn handle(signal: libc::c_int) {
    let byte: u8 = if signal == libc::SIGHUP { b'h' } else { b's' };
    if byte == b's' {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte outlives the call.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

#[allow(unsafe_code)] // reason: sigaction(2) is unsafe in nix; the handler is async-signal-safe
/// Installs the handlers; `on_signal` is called from a thread of its own
/// for each signal, and `stop` is set as soon as a stop is asked (even
/// while the daemon's loop is busy in a pass).
pub fn install(
    stop: Arc<AtomicBool>,
    on_signal: impl Fn(Asked) + Send + 'static,
) -> std::io::Result<()> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    PIPE.store(write.as_raw_fd(), Ordering::SeqCst);
    // The write end lives as long as the process.
    std::mem::forget(write);
    let action = SigAction::new(
        SigHandler::Handler(handle),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls write(2).
        unsafe { sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || relay(read, &stop, on_signal))?;
    Ok(())
}

fn relay(read: OwnedFd, stop: &AtomicBool, on_signal: impl Fn(Asked)) {
    let mut byte = [0u8; 1];
    while let Ok(1) = nix::unistd::read(&read, &mut byte) {
        if byte[0] == b's' || STOP.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            on_signal(Asked::Stop);
        } else {
            on_signal(Asked::Resync);
        }
    }
}
