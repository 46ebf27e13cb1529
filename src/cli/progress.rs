//! Progress for pulls and unpacks: on a terminal one redrawn line with the
//! bytes, the layers, the rate and (downloading) the time left; plain lines
//! otherwise (logs and CI).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::image::{Progress, ProgressEvent};

pub struct CliProgress {
    terminal: bool,
    state: Mutex<Totals>,
}

/// How often the terminal line is redrawn at most (chunks of a fetch
/// arrive far more often).
const REDRAW: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Totals {
    stored_blobs: u64,
    stored_bytes: u64,
    unpacked_layers: u64,
    unpacked_bytes: u64,
    layer_count: usize,
    /// Each blob being fetched: bytes done of its size.
    fetching: HashMap<String, (u64, u64)>,
    /// When the first fetch and the first unpack began (for the rates).
    fetch_started: Option<Instant>,
    unpack_started: Option<Instant>,
    last_draw: Option<Instant>,
    /// A redrawn line is on the terminal, not yet ended.
    drawn: bool,
}

impl Totals {
    /// `downloading 12.0 MiB of 47.0 MiB (2 blobs), 3.1 MiB/s, 11s left`.
    fn download_line(&self, now: Instant) -> String {
        let (done, total) = self
            .fetching
            .values()
            .fold((0, 0), |(d, t), (done, total)| (d + done, t + total));
        let mut line = format!(
            "downloading {} of {} ({} blob{})",
            human_bytes(done),
            human_bytes(total),
            self.fetching.len(),
            if self.fetching.len() == 1 { "" } else { "s" }
        );
        if let Some(rate) = rate(done, self.fetch_started, now) {
            line.push_str(&format!(", {}/s", human_bytes(rate as u64)));
            if rate > 0.0 && total > done {
                let left = (total - done) as f64 / rate;
                line.push_str(&format!(", {} left", human_seconds(left)));
            }
        }
        line
    }

    /// `unpacked 1 of 3 layers, 80.2 MiB, 40.1 MiB/s`: how far the layers
    /// got (their unpacked size is not known before, so no time left).
    fn unpack_line(&self, now: Instant) -> String {
        let mut line = format!(
            "unpacked {} of {} layers, {}",
            self.unpacked_layers,
            self.layer_count,
            human_bytes(self.unpacked_bytes)
        );
        if let Some(rate) = rate(self.unpacked_bytes, self.unpack_started, now) {
            line.push_str(&format!(", {}/s", human_bytes(rate as u64)));
        }
        line
    }
}

/// Bytes per second since `started`, once long enough has passed to tell.
fn rate(bytes: u64, started: Option<Instant>, now: Instant) -> Option<f64> {
    let elapsed = now.saturating_duration_since(started?).as_secs_f64();
    (elapsed >= 0.5).then(|| bytes as f64 / elapsed)
}

/// `42s`, `3m05s`.
fn human_seconds(seconds: f64) -> String {
    let whole = seconds.ceil() as u64;
    if whole < 60 {
        format!("{whole}s")
    } else {
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

impl CliProgress {
    pub fn new() -> Self {
        CliProgress {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(Totals::default()),
        }
    }

    /// Ends the redrawn line, if one is drawn, so later output starts on a
    /// fresh one.
    pub fn finish(&self) {
        let Ok(mut totals) = self.state.lock() else {
            return;
        };
        if self.terminal && totals.drawn {
            eprintln!();
            totals.drawn = false;
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
                let now = Instant::now();
                totals.fetch_started.get_or_insert(now);
                totals.fetching.insert(digest.to_string(), (done, total));
                let drawn_lately = totals
                    .last_draw
                    .is_some_and(|last| now.saturating_duration_since(last) < REDRAW);
                if drawn_lately && done < total {
                    return;
                }
                totals.last_draw = Some(now);
                totals.download_line(now)
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
                totals.unpack_started.get_or_insert_with(Instant::now);
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
                    totals.unpack_line(Instant::now())
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
            totals.drawn = true;
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_line_says_bytes_blobs_rate_and_time_left() {
        let start = Instant::now();
        let mut totals = Totals {
            fetch_started: Some(start),
            ..Totals::default()
        };
        totals.fetching.insert("a".into(), (4 << 20, 8 << 20));
        totals.fetching.insert("b".into(), (0, 8 << 20));
        assert_eq!(
            totals.download_line(start + Duration::from_secs(2)),
            "downloading 4.0 MiB of 16.0 MiB (2 blobs), 2.0 MiB/s, 6s left"
        );
        assert_eq!(
            totals.download_line(start),
            "downloading 4.0 MiB of 16.0 MiB (2 blobs)",
            "no rate before there is one to tell"
        );
    }

    #[test]
    fn the_unpack_line_says_layers_bytes_and_rate() {
        let start = Instant::now();
        let totals = Totals {
            unpacked_layers: 1,
            layer_count: 3,
            unpacked_bytes: 80 << 20,
            unpack_started: Some(start),
            ..Totals::default()
        };
        assert_eq!(
            totals.unpack_line(start + Duration::from_secs(4)),
            "unpacked 1 of 3 layers, 80.0 MiB, 20.0 MiB/s"
        );
    }

    #[test]
    fn time_left_reads_in_minutes_past_a_minute() {
        assert_eq!(human_seconds(41.2), "42s");
        assert_eq!(human_seconds(185.0), "3m05s");
    }
}
