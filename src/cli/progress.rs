//! Progress for pulls and unpacks: one redrawn line on a terminal, plain
//! lines otherwise (logs and CI).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use crate::image::{Progress, ProgressEvent};

pub struct CliProgress {
    terminal: bool,
    state: Mutex<Totals>,
}

#[derive(Default)]
struct Totals {
    stored_blobs: u64,
    stored_bytes: u64,
    unpacked_layers: u64,
    unpacked_bytes: u64,
    layer_count: usize,
}

impl CliProgress {
    pub fn new() -> Self {
        CliProgress {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(Totals::default()),
        }
    }

    /// Ends the redrawn line so later output starts on a fresh one.
    pub fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

impl Default for CliProgress {
    fn default() -> Self {
        Self::new()
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn short(digest: &crate::image::Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}

impl Progress for CliProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        let Ok(mut totals) = self.state.lock() else {
            return;
        };
        let line = match event {
            ProgressEvent::Fetch {
                digest,
                done,
                total,
            } => {
                if !self.terminal {
                    return;
                }
                format!(
                    "fetching {} {}/{}",
                    short(digest),
                    human_bytes(done),
                    human_bytes(total)
                )
            }
            ProgressEvent::Stored { digest, size } => {
                totals.stored_blobs += 1;
                totals.stored_bytes += size;
                if self.terminal {
                    format!(
                        "stored {} blobs, {}",
                        totals.stored_blobs,
                        human_bytes(totals.stored_bytes)
                    )
                } else {
                    format!("stored {} ({})", short(digest), human_bytes(size))
                }
            }
            ProgressEvent::UnpackStart {
                digest,
                index,
                count,
            } => {
                totals.layer_count = count;
                if self.terminal {
                    return;
                }
                format!("unpacking layer {}/{count} {}", index + 1, short(digest))
            }
            ProgressEvent::Unpacked {
                digest,
                bytes,
                entries,
            } => {
                totals.unpacked_layers += 1;
                totals.unpacked_bytes += bytes;
                if self.terminal {
                    format!(
                        "unpacked {}/{} layers, {}",
                        totals.unpacked_layers,
                        totals.layer_count,
                        human_bytes(totals.unpacked_bytes)
                    )
                } else {
                    format!(
                        "unpacked {} ({}, {entries} entries)",
                        short(digest),
                        human_bytes(bytes)
                    )
                }
            }
            // Nothing was done; saying so would clutter `berth run`'s stderr.
            ProgressEvent::LayerExists { .. } => return,
        };
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}
