//! Reading a container's CRI-format log files (`TIMESTAMP STREAM P|F TEXT`),
//! across rotations, for `berth logs` and foreground `berth run`.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One complete log line (partial `P` records joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: String,
    pub stream: Stream,
    pub text: String,
}

/// Parses one CRI record; None for a malformed one.
pub fn parse_record(line: &str) -> Option<(String, Stream, bool, String)> {
    let mut parts = line.splitn(4, ' ');
    let timestamp = parts.next()?.to_string();
    let stream = match parts.next()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    Some((
        timestamp,
        stream,
        partial,
        parts.next().unwrap_or_default().to_string(),
    ))
}

/// The log files oldest first: container.log.N ... container.log.1, container.log.
pub fn log_files(current: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (current.parent(), current.file_name()) {
        let prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if let Some(n) = file.strip_prefix(&prefix).and_then(|n| n.parse().ok()) {
                    rotated.push((n, entry.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if current.exists() {
        files.push(current.to_path_buf());
    }
    files
}

/// Joins partial records into lines.
#[derive(Default)]
pub struct LineAssembler {
    pending: Option<(String, Stream, String)>,
}

impl LineAssembler {
    pub fn push(&mut self, record: &str) -> Option<LogLine> {
        let (timestamp, stream, partial, text) = parse_record(record)?;
        let (first_timestamp, mut joined) = match self.pending.take() {
            Some((ts, s, pending)) if s == stream => (ts, pending),
            _ => (timestamp, String::new()),
        };
        joined.push_str(&text);
        if partial {
            self.pending = Some((first_timestamp, stream, joined));
            None
        } else {
            Some(LogLine {
                timestamp: first_timestamp,
                stream,
                text: joined,
            })
        }
    }
}

/// Every complete line in the files, oldest first.
pub fn read_all(current: &Path) -> Vec<LogLine> {
    let mut assembler = LineAssembler::default();
    let mut lines = Vec::new();
    for path in log_files(current) {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        for record in BufReader::new(file).lines().map_while(Result::ok) {
            if let Some(line) = assembler.push(&record) {
                lines.push(line);
            }
        }
    }
    lines
}

/// Follows the current log file: returns new complete lines on each call,
/// reopening the file when it was rotated.
pub struct Follower {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    inode: u64,
    assembler: LineAssembler,
    partial: String,
}

impl Follower {
    /// Starts at the end of the current file (`from_start` = at its beginning).
    pub fn new(path: &Path, from_start: bool) -> Self {
        let mut follower = Follower {
            path: path.to_path_buf(),
            reader: None,
            inode: 0,
            assembler: LineAssembler::default(),
            partial: String::new(),
        };
        follower.open(!from_start);
        follower
    }

    fn open(&mut self, at_end: bool) {
        if let Ok(mut file) = File::open(&self.path) {
            self.inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
            if at_end {
                let _ = file.seek(SeekFrom::End(0));
            }
            self.reader = Some(BufReader::new(file));
        }
    }

    pub fn poll(&mut self) -> Vec<LogLine> {
        let mut lines = Vec::new();
        self.drain(&mut lines);
        let current_inode = std::fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0);
        if self.reader.is_none() {
            self.open(false);
            self.drain(&mut lines);
        } else if current_inode != 0 && current_inode != self.inode {
            // Rotated, perhaps several times since the last poll: read every
            // file written after ours, oldest first, then follow the new one.
            let files = log_files(&self.path);
            let inodes: Vec<u64> = files
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.ino()).unwrap_or(0))
                .collect();
            let after = inodes
                .iter()
                .position(|ino| *ino == self.inode)
                .map_or(0, |i| i + 1);
            for (file, _) in files.iter().zip(&inodes).skip(after) {
                if *file == self.path {
                    break;
                }
                if let Ok(f) = File::open(file) {
                    self.reader = Some(BufReader::new(f));
                    self.drain(&mut lines);
                }
            }
            self.open(false);
            self.drain(&mut lines);
        }
        lines
    }

    fn drain(&mut self, lines: &mut Vec<LogLine>) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        loop {
            let mut chunk = String::new();
            match reader.read_line(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    self.partial.push_str(&chunk);
                    if !self.partial.ends_with('\n') {
                        break; // the writer is mid-line; finish it next time
                    }
                    let record = std::mem::take(&mut self.partial);
                    if let Some(line) = self.assembler.push(record.trim_end_matches('\n')) {
                        lines.push(line);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_records_join_into_one_line() {
        let mut assembler = LineAssembler::default();
        assert_eq!(
            assembler.push("2026-01-01T00:00:00.000000001Z stdout P hel"),
            None
        );
        let line = assembler
            .push("2026-01-01T00:00:00.000000002Z stdout F lo")
            .unwrap();
        assert_eq!(line.text, "hello");
        assert_eq!(line.timestamp, "2026-01-01T00:00:00.000000001Z");
        assert_eq!(line.stream, Stream::Stdout);
    }

    #[test]
    fn files_are_read_oldest_first_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        std::fs::write(dir.path().join("container.log.2"), "t stdout F one\n").unwrap();
        std::fs::write(dir.path().join("container.log.1"), "t stderr F two\n").unwrap();
        std::fs::write(&current, "t stdout F three\n").unwrap();
        let texts: Vec<String> = read_all(&current).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["one", "two", "three"]);
    }

    #[test]
    fn the_follower_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        std::fs::write(&current, "t stdout F a\n").unwrap();
        let mut follower = Follower::new(&current, true);
        assert_eq!(follower.poll().len(), 1);
        std::fs::rename(&current, dir.path().join("container.log.1")).unwrap();
        std::fs::write(&current, "t stdout F b\n").unwrap();
        let texts: Vec<String> = follower.poll().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["b"]);
        // Two rotations between polls: the file in the middle is read too.
        std::fs::rename(
            dir.path().join("container.log.1"),
            dir.path().join("container.log.2"),
        )
        .unwrap();
        std::fs::rename(&current, dir.path().join("container.log.1")).unwrap();
        std::fs::write(
            dir.path().join("container.log.1"),
            "t stdout F b\nt stdout F c\n",
        )
        .unwrap();
        std::fs::write(&current, "t stdout F d\n").unwrap();
        let texts: Vec<String> = follower.poll().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["c", "d"]);
    }
}
