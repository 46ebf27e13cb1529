//! The container's stdout and stderr, where the log driver sends them:
//! `file`, the pipes the runtime hands the container, read by the shim's
//! loop into the CRI-format log; `none`, /dev/null; `binary`, the pipes of
//! a program started with each run ([`LogProgram`]).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::log_program::LogProgram;
use super::runtime_calls::{output_pipe, RunIo};
use super::Diag;
use crate::runtime::container_dir::{LogDriverConfig, ShimConfig};
use crate::runtime::logs::{now_timestamp, LineSplitter, LogWriter, Stream};

/// Bytes read from a pipe per wakeup.
const READ_CHUNK: usize = 32 * 1024;

/// The log and the pipes that feed it.
pub(super) struct Output {
    /// The log file (driver `file` only).
    log: Option<LogWriter>,
    /// The program that reads the output (driver `binary` only).
    program: Option<LogProgram>,
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
    /// The output of the container `config` describes: its log file opened
    /// (created) only with driver `file`.
    pub fn open(config: &ShimConfig) -> io::Result<Output> {
        let (log, program) = match &config.log.driver {
            LogDriverConfig::File => (
                Some(LogWriter::open(&config.log_file(), config.log.clone())?),
                None,
            ),
            LogDriverConfig::None => (None, None),
            LogDriverConfig::Binary { path, args } => {
                (None, Some(LogProgram::new(path, args, &config.id)))
            }
        };
        Ok(Output {
            log,
            program,
            pipes: Vec::new(),
            buf: vec![0; READ_CHUNK],
        })
    }

    /// The stdout and stderr for the next run of the container: the log's
    /// pipes, /dev/null, or a newly started program's pipes.
    pub fn prepare_run(&mut self, diag: &Diag) -> Result<RunIo, String> {
        if let Some(program) = self.program.as_mut() {
            let inputs = program.start(diag)?;
            return Ok(RunIo {
                stdout: inputs.stdout,
                stderr: inputs.stderr,
                readers: None,
            });
        }
        if self.log.is_none() {
            // Driver none: the container writes where nobody reads.
            return Ok(RunIo {
                stdout: dev_null()?,
                stderr: dev_null()?,
                readers: None,
            });
        }
        let (out_read, out_write) = output_pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_read, err_write) = output_pipe().map_err(|e| format!("pipe: {e}"))?;
        Ok(RunIo {
            stdout: out_write,
            stderr: err_write,
            readers: Some((out_read, err_read)),
        })
    }

    /// The loop reaped `pid`: whether it was the log program.
    pub fn reaped(&mut self, pid: Pid) -> bool {
        self.program.as_mut().is_some_and(|p| p.reaped(pid))
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
    /// The log program, if any, is stopped: it had all there was.
    pub fn complete(&mut self, diag: &Diag) {
        self.drain(diag);
        let timestamp = now_timestamp();
        for mut pipe in std::mem::take(&mut self.pipes) {
            let (log, stream) = (&mut self.log, pipe.stream);
            pipe.lines.finish(|text, partial| {
                let _ = record(log, &timestamp, stream, partial, text);
            });
        }
        self.flush(diag);
        if let Some(program) = self.program.as_mut() {
            program.stop(diag);
        }
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
                        if let Err(e) = record(log, &timestamp, stream, partial, text) {
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
                let _ = record(log, &timestamp, stream, partial, text);
            });
        }
        self.flush(diag);
    }

    fn flush(&mut self, diag: &Diag) {
        if let Some(Err(e)) = self.log.as_mut().map(LogWriter::flush) {
            diag.note(format_args!("write log: {e}"));
        }
    }
}

fn dev_null() -> Result<OwnedFd, String> {
    OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| format!("open /dev/null: {e}"))
}

/// One record in the log, if there is one (pipes exist only with a log).
fn record(
    log: &mut Option<LogWriter>,
    timestamp: &str,
    stream: Stream,
    partial: bool,
    text: &[u8],
) -> io::Result<()> {
    match log.as_mut() {
        Some(log) => log.record(timestamp, stream, partial, text),
        None => Ok(()),
    }
}
