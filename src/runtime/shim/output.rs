//! The container's stdout and stderr: the pipes the runtime hands the
//! container, read by the shim's loop into the CRI-format log.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use super::Diag;
use crate::runtime::container_dir::LogConfig;
use crate::runtime::logs::{now_timestamp, LineSplitter, LogWriter, Stream};

/// Bytes read from a pipe per wakeup.
const READ_CHUNK: usize = 32 * 1024;

/// The log and the pipes that feed it.
pub(super) struct Output {
    log: LogWriter,
    pipes: Vec<Pipe>,
    buf: Vec<u8>,
}

/// A pipe the container writes one stream to.
struct Pipe {
    fd: OwnedFd,
    stream: Stream,
    lines: LineSplitter,
}

impl Output {
    pub fn open(path: &Path, config: LogConfig) -> io::Result<Output> {
        Ok(Output {
            log: LogWriter::open(path, config)?,
            pipes: Vec::new(),
            buf: vec![0; READ_CHUNK],
        })
    }

    /// Starts reading a run's stdout and stderr pipes.
    pub fn add(&mut self, stdout: OwnedFd, stderr: OwnedFd) {
        for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
            self.pipes.push(Pipe {
                fd,
                stream,
                lines: LineSplitter::default(),
            });
        }
    }

    /// The pipes to poll, in the order [`Output::read_ready`] takes.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pipes.iter().map(|pipe| pipe.fd.as_fd())
    }

    /// Reads once from each pipe poll found `ready` (one flag per
    /// [`Output::fds`] entry).
    pub fn read_ready(&mut self, ready: &[bool], diag: &Diag) {
        // From the back: a pipe at end of file is removed.
        for index in (0..ready.len().min(self.pipes.len())).rev() {
            if ready[index] {
                self.read(index, false, diag);
            }
        }
    }

    /// Logs everything the pipes hold right now.
    pub fn drain(&mut self, diag: &Diag) {
        for index in (0..self.pipes.len()).rev() {
            self.read(index, true, diag);
        }
    }

    /// Everything the pipes hold, each stream's unterminated last line
    /// included, written and flushed: the log is complete.
    pub fn complete(&mut self, diag: &Diag) {
        self.drain(diag);
        let timestamp = now_timestamp();
        for mut pipe in std::mem::take(&mut self.pipes) {
            let (log, stream) = (&mut self.log, pipe.stream);
            pipe.lines.finish(|text, partial| {
                let _ = log.record(&timestamp, stream, partial, text);
            });
        }
        self.flush(diag);
    }

    /// Reads once from pipe `index` (or until it would block, with
    /// `drain`); drops it at end of file.
    fn read(&mut self, index: usize, drain: bool, diag: &Diag) {
        let timestamp = now_timestamp();
        let mut eof = false;
        loop {
            let pipe = &mut self.pipes[index];
            match nix::unistd::read(&pipe.fd, &mut self.buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    let (log, stream) = (&mut self.log, pipe.stream);
                    pipe.lines.push(&self.buf[..n], |text, partial| {
                        if let Err(e) = log.record(&timestamp, stream, partial, text) {
                            diag.note(format_args!("write log: {e}"));
                        }
                    });
                    if !drain {
                        break;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(error) => {
                    diag.note(format_args!("read log pipe: {error}"));
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            let mut pipe = self.pipes.remove(index);
            let (log, stream) = (&mut self.log, pipe.stream);
            pipe.lines.finish(|text, partial| {
                let _ = log.record(&timestamp, stream, partial, text);
            });
        }
        self.flush(diag);
    }

    fn flush(&mut self, diag: &Diag) {
        if let Err(e) = self.log.flush() {
            diag.note(format_args!("write log: {e}"));
        }
    }
}
