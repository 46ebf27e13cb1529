//! Container logs: the CRI log format and size-based rotation.
//!
//! Every line a container writes becomes one record
//! `2026-11-27T10:42:08.123456789Z stdout F text` in `container.log` of the
//! container's log directory (under `--root`: logs survive a reboot and do
//! not take memory).
//! A line longer than [`MAX_LINE`] bytes is cut into `P` (partial) records
//! followed by a final `F` record, as kubelet and containerd do. When the
//! next record would push the file past `max_bytes`, the file is rotated:
//! `container.log` -> `container.log.1` -> ... -> `container.log.(max_files-1)`,
//! the oldest is dropped, so at most `max_files` files exist.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::container_dir::LogConfig;

/// The longest line written as one record; longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The current time as a CRI timestamp.
pub fn now_timestamp() -> String {
    format_timestamp(crate::state::clock::since_epoch())
}

/// RFC 3339, UTC, nanoseconds: `2026-11-27T10:42:08.123456789Z`.
pub fn format_timestamp(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        since_epoch.subsec_nanos()
    )
}

/// RFC 3339, UTC, to the second (`2026-11-27T10:42:08Z`): for people
/// reading `status`, `jobs`, `events` and plans.
pub fn format_seconds(unix_ms: u64) -> String {
    let text = format_timestamp(Duration::from_secs(unix_ms / 1000));
    match text.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => text,
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends one CRI record (with its newline) to `out`.
pub fn format_record(
    out: &mut Vec<u8>,
    timestamp: &str,
    stream: Stream,
    partial: bool,
    text: &[u8],
) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(text);
    out.push(b'\n');
}

fn record_len(timestamp: &str, stream: Stream, text: &[u8]) -> usize {
    timestamp.len() + 1 + stream.as_str().len() + 3 + text.len() + 1
}

/// Cuts one stream's bytes into lines: complete lines (without their
/// newline) as full records, and [`MAX_LINE`]-byte pieces of overlong lines
/// as partial records. A trailing piece without a newline waits for more
/// input (or [`LineSplitter::finish`]).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit(text, partial)` for every record it completes.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let window = &rest[..rest.len().min(MAX_LINE + 1)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                emit(&rest[..i], false);
                start += i + 1;
            } else if rest.len() > MAX_LINE {
                emit(&rest[..MAX_LINE], true);
                start += MAX_LINE;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    /// End of stream: a pending unterminated line becomes a full record.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.buf.is_empty() {
            emit(&self.buf, false);
            self.buf.clear();
        }
    }
}

/// The file a container's output is written to now, in its log directory.
pub const CURRENT_LOG: &str = "container.log";

/// `DIR/container.log`: the current log file of log directory `dir`.
pub fn current_log(dir: &Path) -> PathBuf {
    dir.join(CURRENT_LOG)
}

/// `container.log.N`: the Nth most recent rotated file (0 = the current one).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

/// Writes CRI records to a size-rotated log file. Records are gathered in
/// memory while one read is processed and written by [`LogWriter::flush`],
/// which the shim calls after every read, so followers see lines promptly.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    config: LogConfig,
    file: File,
    size: u64,
    pending: Vec<u8>,
}

impl LogWriter {
    /// Opens (appends to) `path`, creating its directory (0700) when
    /// berth has not.
    pub fn open(path: &Path, config: LogConfig) -> io::Result<LogWriter> {
        if let Some(parent) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            config,
            file,
            size,
            pending: Vec::new(),
        })
    }

    /// Adds one record; rotates first when it would not fit in the current file.
    pub fn record(
        &mut self,
        timestamp: &str,
        stream: Stream,
        partial: bool,
        text: &[u8],
    ) -> io::Result<()> {
        let used = self.size + self.pending.len() as u64;
        let len = record_len(timestamp, stream, text) as u64;
        if used > 0 && used + len > self.config.max_bytes {
            self.flush()?;
            self.rotate()?;
        }
        format_record(&mut self.pending, timestamp, stream, partial, text);
        Ok(())
    }

    /// Writes the gathered records.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        self.size += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.config.max_files.max(1);
        // The oldest falls off; the rest move up by one.
        let oldest = rotated_path(&self.path, keep - 1);
        if keep > 1 {
            match fs::remove_file(&oldest) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..keep - 1).rev() {
                let from = rotated_path(&self.path, n);
                match fs::rename(&from, rotated_path(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(&self.path, rotated_path(&self.path, 1))?;
        } else {
            fs::remove_file(&self.path)?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Container output may hold secrets: readable by root and the log
/// group at most (0640), and a link in the log's place is refused.
const LOG_MODE: u32 = 0o640;

fn open_append(path: &Path) -> io::Result<File> {
    crate::state::nofollow::open_append_nofollow(path, LOG_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, |t, p| out.push((t.to_vec(), p)));
        }
        splitter.finish(|t, p| out.push((t.to_vec(), p)));
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_nanoseconds() {
        assert_eq!(
            format_timestamp(Duration::new(0, 0)),
            "1970-01-01T00:00:00.000000000Z"
        );
        // 2026-11-27T10:42:08Z
        assert_eq!(
            format_timestamp(Duration::new(1_795_776_128, 123_456_789)),
            "2026-11-27T10:42:08.123456789Z"
        );
        // A leap day.
        assert_eq!(
            format_timestamp(Duration::new(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
    }

    #[test]
    fn cri_record_has_timestamp_stream_tag_and_text() {
        let mut out = Vec::new();
        let ts = "2026-11-27T10:42:08.123456789Z";
        format_record(&mut out, ts, Stream::Stdout, false, b"hello world");
        format_record(&mut out, ts, Stream::Stderr, true, b"part");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-27T10:42:08.123456789Z stdout F hello world\n\
             2026-11-27T10:42:08.123456789Z stderr P part\n"
        );
        assert_eq!(record_len(ts, Stream::Stdout, b"hello world"), 52);
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let got = split(&[b"hel", b"lo\nwor", b"ld\n\n"]);
        assert_eq!(
            got,
            vec![
                (b"hello".to_vec(), false),
                (b"world".to_vec(), false),
                (b"".to_vec(), false)
            ]
        );
    }

    #[test]
    fn unterminated_last_line_is_full_at_end_of_stream() {
        assert_eq!(
            split(&[b"a\nb"]),
            vec![(b"a".to_vec(), false), (b"b".to_vec(), false)]
        );
    }

    #[test]
    fn lines_longer_than_16k_become_partial_records() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        // Feed in odd chunk sizes to cross the boundaries.
        let chunks: Vec<&[u8]> = input.chunks(5000).collect();
        let got = split(&chunks);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (vec![b'x'; MAX_LINE], true));
        assert_eq!(got[1], (vec![b'x'; MAX_LINE], true));
        assert_eq!(got[2], (vec![b'x'; 10], false));
    }

    #[test]
    fn a_line_of_exactly_16k_is_one_full_record() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let got = split(&[&input[..MAX_LINE], &input[MAX_LINE..]]);
        assert_eq!(got, vec![(vec![b'y'; MAX_LINE], false)]);
    }

    #[test]
    fn rotated_names_count_up_from_one() {
        let p = Path::new("/x/logs/container.log");
        assert_eq!(rotated_path(p, 0), Path::new("/x/logs/container.log"));
        assert_eq!(rotated_path(p, 1), Path::new("/x/logs/container.log.1"));
        assert_eq!(rotated_path(p, 4), Path::new("/x/logs/container.log.4"));
    }

    /// Regression: logs were created 0644 (container output may hold
    /// secrets) and a link in a log's place was written through.
    #[test]
    fn logs_are_0640_and_a_planted_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/container.log");
        let config = LogConfig {
            max_bytes: 1 << 20,
            max_files: 2,
            ..LogConfig::default()
        };
        LogWriter::open(&path, config.clone()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let target = dir.path().join("elsewhere");
        fs::write(&target, "untouched").unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let error = LogWriter::open(&path, config).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    }

    #[test]
    fn rotation_keeps_max_files_and_no_file_passes_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/container.log");
        let config = LogConfig {
            max_bytes: 200,
            max_files: 3,
            ..LogConfig::default()
        };
        let ts = "2026-11-27T10:42:08.123456789Z";
        let mut writer = LogWriter::open(&path, config).unwrap();
        // Each record is 30 + 1 + 6 + 3 + 9 + 1 = 50 bytes: 4 per file.
        for i in 0..30 {
            let text = format!("line {i:04}");
            writer
                .record(ts, Stream::Stdout, false, text.as_bytes())
                .unwrap();
            if i % 3 == 0 {
                writer.flush().unwrap();
            }
        }
        writer.flush().unwrap();
        let mut names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["container.log", "container.log.1", "container.log.2"]
        );
        for name in &names {
            let len = fs::metadata(dir.path().join("logs").join(name))
                .unwrap()
                .len();
            assert!(len <= 200, "{name} is {len} bytes");
        }
        // The newest lines are in container.log, the ones before in .1, .2.
        let current = fs::read_to_string(&path).unwrap();
        assert!(current.ends_with("stdout F line 0029\n"), "{current}");
        assert_eq!(current.lines().count(), 2); // 30 = 7 * 4 + 2
        let first = fs::read_to_string(rotated_path(&path, 1)).unwrap();
        assert!(
            first.starts_with(&format!("{ts} stdout F line 0024\n")),
            "{first}"
        );
        let oldest = fs::read_to_string(rotated_path(&path, 2)).unwrap();
        assert!(oldest.contains("line 0020\n"), "{oldest}");
    }

    #[test]
    fn one_file_rotation_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let config = LogConfig {
            max_bytes: 100,
            max_files: 1,
            ..LogConfig::default()
        };
        let mut writer = LogWriter::open(&path, config).unwrap();
        for i in 0..5 {
            writer
                .record("T", Stream::Stderr, false, format!("{i:040}").as_bytes())
                .unwrap();
            writer.flush().unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let content = fs::read_to_string(&path).unwrap();
        assert!(
            content.ends_with("4\n") && content.lines().count() <= 2,
            "{content}"
        );
    }
}
