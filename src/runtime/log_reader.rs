//! Reading a container's CRI-format log files (`TIMESTAMP STREAM P|F TEXT`),
//! across rotations, for `berth logs` and foreground `berth run`.
//!
//! The shim rotates by renames (`container.log` -> `.1` -> `.2` ..., the
//! oldest removed) while readers read, so a reader never trusts a path for
//! longer than one `open`: it holds each file open (a rename or a removal
//! does not change what an open file reads) and orders the files it holds
//! by a walk that is repeated until no rotation happened during it (see
//! [`walk`]).
//!
//! The writer appends whole records and flushes before it rotates, so a
//! file that is no longer `container.log` is complete; only the current
//! file may end in a record being written, which readers leave for later.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::runtime::logs::rotated_path;

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

/// Whether a raw record ends a line (`F`): None for a malformed one.
fn ends_a_line(record: &[u8]) -> Option<bool> {
    parse_record(&String::from_utf8_lossy(record)).map(|(_, _, partial, _)| !partial)
}

/// The rotated files next to `current` (`container.log.N`), oldest first.
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

/// The highest N of the `container.log.N` that exist now (0: none).
fn highest_rotation(current: &Path) -> u32 {
    let Some(name) = current.file_name() else {
        return 0;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    log_files(current)
        .iter()
        .filter_map(|path| {
            let file = path.file_name()?.to_string_lossy().into_owned();
            file.strip_prefix(&prefix)?.parse().ok()
        })
        .max()
        .unwrap_or(0)
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

    /// Feeds one raw record (without its newline), lossily decoded:
    /// container output need not be UTF-8.
    fn push_raw(&mut self, record: &[u8]) -> Option<LogLine> {
        self.push(&String::from_utf8_lossy(record))
    }
}

/// Bytes read per step by [`BackwardLines`].
const BLOCK: usize = 64 * 1024;

/// The lines of a file's first `end` bytes, last first, read from the end
/// in blocks: the cost of the last N lines is the size of those lines, not
/// of the file. Like `tail`, a last line without a newline is a line, and
/// a final newline does not start an empty one.
pub struct BackwardLines<'a> {
    file: &'a File,
    /// The bytes before this offset are not read yet.
    unread: u64,
    /// Read and not returned yet: the bytes just after `unread`.
    pending: Vec<u8>,
    /// The first line of the file was returned.
    done: bool,
    block: usize,
}

impl<'a> BackwardLines<'a> {
    pub fn new(file: &'a File, end: u64) -> io::Result<Self> {
        Self::with_block(file, end, BLOCK)
    }

    fn with_block(file: &'a File, end: u64, block: usize) -> io::Result<Self> {
        let mut unread = end;
        if end > 0 {
            let mut last = [0u8];
            file.read_exact_at(&mut last, end - 1)?;
            if last[0] == b'\n' {
                unread -= 1;
            }
        }
        Ok(BackwardLines {
            file,
            unread,
            pending: Vec::new(),
            done: end == 0,
            block: block.max(1),
        })
    }

    /// The line before the ones returned so far (without its newline);
    /// None once the first line of the file was returned.
    pub fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(newline) = self.pending.iter().rposition(|&b| b == b'\n') {
                let line = self.pending.split_off(newline + 1);
                self.pending.truncate(newline);
                return Ok(Some(line));
            }
            if self.unread == 0 {
                self.done = true;
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            self.read_block_before()?;
        }
    }

    /// Puts the block before the pending bytes in front of them.
    fn read_block_before(&mut self) -> io::Result<()> {
        let len = self.unread.min(self.block as u64) as usize;
        self.unread -= len as u64;
        let mut block = vec![0u8; len + self.pending.len()];
        self.file.read_exact_at(&mut block[..len], self.unread)?;
        block[len..].copy_from_slice(&self.pending);
        self.pending = block;
        Ok(())
    }
}

/// The offset just past the last newline in a file's first `len` bytes: the
/// end of its last complete record (0 when it has none).
fn end_of_last_record(file: &File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut block = vec![0u8; BLOCK];
    while end > 0 {
        let start = end.saturating_sub(BLOCK as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + newline as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// One log file, held open: what it reads no longer depends on its name.
#[derive(Debug)]
struct HeldFile {
    file: File,
    inode: u64,
    /// Read up to here.
    end: u64,
}

impl HeldFile {
    fn open(path: &Path) -> Option<HeldFile> {
        let file = File::open(path).ok()?;
        let metadata = file.metadata().ok()?;
        Some(HeldFile {
            file,
            inode: metadata.ino(),
            end: metadata.len(),
        })
    }
}

/// The inode `path` names now; 0 when nothing is there.
fn inode_at(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.ino())
}

/// How often a walk is repeated because a rotation moved the files under it.
const WALK_ATTEMPTS: usize = 20;

/// The log files newest first, each held open, from `current` up through
/// `.1`, `.2` ..., stopping before the file whose inode is `stop_at` (the
/// one a follower holds).
///
/// A rotation moves every file one place up, the current one last. Walking
/// up, a moved file is met again (skipped: one inode is one file) but never
/// jumped over, unless a whole rotation finished during the walk, which
/// shows as a new current file: then the walk is repeated. A file that
/// is held cannot have its inode reused, so that comparison is sound.
fn walk(current: &Path, stop_at: Option<u64>) -> Vec<HeldFile> {
    let mut files = Vec::new();
    for _ in 0..WALK_ATTEMPTS {
        let first;
        (files, first) = walk_once(current, stop_at);
        // No rotation finished during the walk, and none was half done at
        // its start (no current file while rotated ones exist).
        if inode_at(current) == first && (first != 0 || files.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    files
}

/// One walk: the files, and the inode of the current file at its start (0
/// when there was none).
fn walk_once(current: &Path, stop_at: Option<u64>) -> (Vec<HeldFile>, u64) {
    let mut files: Vec<HeldFile> = Vec::new();
    let mut first = 0;
    // One past the highest: a rotation may move the last one up meanwhile.
    let highest = highest_rotation(current) + 1;
    for n in 0..=highest {
        let Some(held) = HeldFile::open(&rotated_path(current, n)) else {
            continue; // between two renames of a rotation
        };
        if n == 0 {
            first = held.inode;
        }
        if Some(held.inode) == stop_at {
            break;
        }
        if files.iter().all(|f| f.inode != held.inode) {
            files.push(held);
        }
    }
    (files, first)
}

/// A container's log files at one moment, oldest first, each held open:
/// the rotated files whole, and the current file up to its last complete
/// record. Reading them and then following ([`LogSet::follow`]) sees every
/// record once, whatever the shim rotates meanwhile.
pub struct LogSet {
    current: PathBuf,
    files: Vec<HeldFile>,
}

impl LogSet {
    /// The files of the log whose current file is `current` (none when it
    /// has none yet).
    pub fn open(current: &Path) -> io::Result<LogSet> {
        let mut files = walk(current, None);
        files.reverse();
        // The newest may be the file being written: up to its last whole
        // record (a rotated one ends in one anyway).
        if let Some(newest) = files.last_mut() {
            newest.end = end_of_last_record(&newest.file, newest.end)?;
        }
        Ok(LogSet {
            current: current.to_path_buf(),
            files,
        })
    }

    /// Every complete line, oldest first.
    pub fn lines(&self) -> io::Result<Vec<LogLine>> {
        let mut assembler = LineAssembler::default();
        let mut lines = Vec::new();
        for held in &self.files {
            let mut file = &held.file;
            file.seek(SeekFrom::Start(0))?;
            let mut reader = BufReader::new(file).take(held.end);
            let mut record = Vec::new();
            loop {
                record.clear();
                if reader.read_until(b'\n', &mut record)? == 0 {
                    break;
                }
                if record.last() == Some(&b'\n') {
                    record.pop();
                }
                lines.extend(assembler.push_raw(&record));
            }
        }
        Ok(lines)
    }

    /// The last `n` complete lines, oldest first, read from the end of the
    /// newest files backwards: rotated files are read only when the newer
    /// ones hold fewer than `n` lines.
    pub fn tail(&self, n: usize) -> io::Result<Vec<LogLine>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // Newest first: the records of the last n lines, and before the
        // earliest of those the partial records its line began with.
        let mut records = Vec::new();
        let mut full = 0;
        'files: for held in self.files.iter().rev() {
            let mut backwards = BackwardLines::new(&held.file, held.end)?;
            while let Some(record) = backwards.next_line()? {
                if ends_a_line(&record) == Some(true) {
                    if full == n {
                        break 'files;
                    }
                    full += 1;
                }
                records.push(record);
            }
        }
        let mut assembler = LineAssembler::default();
        Ok(records
            .iter()
            .rev()
            .filter_map(|record| assembler.push_raw(record))
            .collect())
    }

    /// A follower that goes on just after what [`LogSet::lines`] and
    /// [`LogSet::tail`] read.
    pub fn follow(mut self) -> Follower {
        let mut follower = Follower::unopened(&self.current);
        // Rotated since or not, the newest file is where to go on: the
        // first poll finds any newer ones.
        if let Some(held) = self.files.pop() {
            let mut file = held.file;
            if file.seek(SeekFrom::Start(held.end)).is_ok() {
                follower.hold(file, held.inode);
            }
        }
        follower
    }
}

/// Every complete line of the log whose current file is `current`, oldest
/// first.
pub fn read_all(current: &Path) -> io::Result<Vec<LogLine>> {
    LogSet::open(current)?.lines()
}

/// Follows a log: returns new complete lines on each [`Follower::poll`],
/// across rotations.
pub struct Follower {
    path: PathBuf,
    /// The file read now, and its inode.
    reader: Option<(BufReader<File>, u64)>,
    assembler: LineAssembler,
    /// The start of a record whose end is not written yet.
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the end of the current file (`from_start` = at its beginning).
    pub fn new(path: &Path, from_start: bool) -> Self {
        let mut follower = Follower::unopened(path);
        if let Some(held) = HeldFile::open(path) {
            let mut file = held.file;
            let start = if from_start {
                0
            } else {
                end_of_last_record(&file, held.end).unwrap_or(held.end)
            };
            if file.seek(SeekFrom::Start(start)).is_ok() {
                follower.hold(file, held.inode);
            }
        }
        follower
    }

    fn unopened(path: &Path) -> Self {
        Follower {
            path: path.to_path_buf(),
            reader: None,
            assembler: LineAssembler::default(),
            partial: Vec::new(),
        }
    }

    fn hold(&mut self, file: File, inode: u64) {
        self.reader = Some((BufReader::new(file), inode));
    }

    /// The lines written since the last poll, in order.
    pub fn poll(&mut self) -> Vec<LogLine> {
        let mut lines = Vec::new();
        self.drain(&mut lines);
        let Some(held) = self.reader.as_ref().map(|(_, inode)| *inode) else {
            // No log file yet: the first one starts at its beginning.
            if let Some(first) = HeldFile::open(&self.path) {
                self.hold(first.file, first.inode);
                self.drain(&mut lines);
            }
            return lines;
        };
        let now = inode_at(&self.path);
        if now == 0 || now == held {
            return lines;
        }
        // Rotated since the drain above, perhaps several times. The writer
        // wrote its last records to our file before it renamed it: read
        // them, then every file newer than ours, oldest first, and stay on
        // the newest.
        self.drain(&mut lines);
        for newer in walk(&self.path, Some(held)).into_iter().rev() {
            self.finish_file(&mut lines);
            self.hold(newer.file, newer.inode);
            self.drain(&mut lines);
        }
        lines
    }

    /// Reads what the current file holds beyond the last read.
    fn drain(&mut self, lines: &mut Vec<LogLine>) {
        let Some((reader, _)) = self.reader.as_mut() else {
            return;
        };
        loop {
            match reader.read_until(b'\n', &mut self.partial) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if self.partial.last() != Some(&b'\n') {
                        break; // the writer is mid-record; finish it next time
                    }
                    self.partial.pop();
                    lines.extend(self.assembler.push_raw(&self.partial));
                    self.partial.clear();
                }
            }
        }
    }

    /// A rotated file is complete: a record it ends without a newline
    /// (cut short by a crash) is not continued by the next file.
    fn finish_file(&mut self, lines: &mut Vec<LogLine>) {
        if !self.partial.is_empty() {
            lines.extend(self.assembler.push_raw(&self.partial));
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    /// All lines of `content`, last first, read in blocks of `block` bytes.
    fn backwards(content: &[u8], block: usize) -> Vec<String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let mut reader = BackwardLines::with_block(&file, content.len() as u64, block).unwrap();
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(String::from_utf8(line).unwrap());
        }
        lines
    }

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
    fn an_empty_file_has_no_lines_backwards() {
        assert!(backwards(b"", 4).is_empty());
    }

    #[test]
    fn backwards_a_last_line_without_newline_is_a_line() {
        assert_eq!(backwards(b"one\ntwo\nthree", 4), ["three", "two", "one"]);
        assert_eq!(backwards(b"one\ntwo\nthree\n", 4), ["three", "two", "one"]);
        assert_eq!(backwards(b"\n", 4), [""]);
        assert_eq!(backwards(b"a\n\nb\n", 1), ["b", "", "a"]);
    }

    #[test]
    fn backwards_lines_longer_than_the_block_are_whole() {
        let long = "x".repeat(1000);
        let content = format!("first\n{long}\nlast\n");
        for block in [1, 7, 64, 999, 1000, 1001, 4096] {
            assert_eq!(
                backwards(content.as_bytes(), block),
                ["last", long.as_str(), "first"],
                "block {block}"
            );
        }
    }

    #[test]
    fn backwards_reads_only_up_to_the_end_given() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"a\nb\nhalf a rec").unwrap();
        let mut reader = BackwardLines::new(&file, 4).unwrap();
        assert_eq!(reader.next_line().unwrap().unwrap(), b"b");
        assert_eq!(reader.next_line().unwrap().unwrap(), b"a");
        assert_eq!(reader.next_line().unwrap(), None);
        assert_eq!(end_of_last_record(&file, 14).unwrap(), 4);
        assert_eq!(end_of_last_record(&file, 1).unwrap(), 0);
    }

    /// A log dir with `files`, oldest first (the last is `container.log`).
    fn log_dir(files: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        for (age, content) in files.iter().rev().enumerate() {
            fs::write(rotated_path(&current, age as u32), content).unwrap();
        }
        (dir, current)
    }

    fn records(from: usize, to: usize) -> String {
        (from..to).map(|i| format!("t stdout F {i}\n")).collect()
    }

    #[test]
    fn files_are_read_oldest_first_across_rotations() {
        let (_dir, current) =
            log_dir(&["t stdout F one\n", "t stderr F two\n", "t stdout F three\n"]);
        assert_eq!(texts(read_all(&current).unwrap()), ["one", "two", "three"]);
    }

    #[test]
    fn tail_takes_the_last_lines_of_the_current_file() {
        let (_dir, current) = log_dir(&[&records(0, 10), &records(10, 20)]);
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.tail(3).unwrap()), ["17", "18", "19"]);
        assert!(set.tail(0).unwrap().is_empty());
    }

    #[test]
    fn tail_reaches_into_rotated_files_when_the_current_one_is_short() {
        let (_dir, current) = log_dir(&[&records(0, 10), &records(10, 12), &records(12, 13)]);
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.tail(5).unwrap()), ["8", "9", "10", "11", "12"]);
    }

    #[test]
    fn tail_of_more_lines_than_the_log_holds_is_the_whole_log() {
        let (_dir, current) = log_dir(&[&records(0, 2), &records(2, 4)]);
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.tail(100).unwrap()), ["0", "1", "2", "3"]);
        let (_empty, none) = log_dir(&[""]);
        assert!(LogSet::open(&none).unwrap().tail(3).unwrap().is_empty());
    }

    #[test]
    fn tail_joins_partial_records_even_across_a_rotation() {
        let (_dir, current) = log_dir(&[
            "t stdout F before\nt stdout P long-",
            "t stdout P line-\nt stdout F end\nt stderr F next\n",
        ]);
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.tail(2).unwrap()), ["long-line-end", "next"]);
        assert_eq!(
            texts(set.tail(3).unwrap()),
            ["before", "long-line-end", "next"]
        );
    }

    #[test]
    fn tail_leaves_a_record_being_written_to_the_follower() {
        let (_dir, current) = log_dir(&["t stdout F a\nt stdout F b\nt stdout F hal"]);
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.tail(5).unwrap()), ["a", "b"]);
        let mut follower = set.follow();
        assert!(follower.poll().is_empty());
        fs::OpenOptions::new()
            .append(true)
            .open(&current)
            .unwrap()
            .write_all(b"f\n")
            .unwrap();
        assert_eq!(texts(follower.poll()), ["half"]);
    }

    #[test]
    fn the_follower_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        fs::write(&current, "t stdout F a\n").unwrap();
        let mut follower = Follower::new(&current, true);
        assert_eq!(follower.poll().len(), 1);
        fs::rename(&current, dir.path().join("container.log.1")).unwrap();
        fs::write(&current, "t stdout F b\n").unwrap();
        assert_eq!(texts(follower.poll()), ["b"]);
        // Two rotations between polls: the file in the middle is read too.
        fs::rename(
            dir.path().join("container.log.1"),
            dir.path().join("container.log.2"),
        )
        .unwrap();
        let mut one = fs::OpenOptions::new().append(true).open(&current).unwrap();
        one.write_all(b"t stdout F c\n").unwrap();
        fs::rename(&current, dir.path().join("container.log.1")).unwrap();
        fs::write(&current, "t stdout F d\n").unwrap();
        assert_eq!(texts(follower.poll()), ["c", "d"]);
    }

    /// Regression: records the writer appended to the followed file between
    /// the follower's last read and its rotation were skipped: on seeing a
    /// new current file the follower went straight to the files after its
    /// own.
    #[test]
    fn the_follower_reads_the_end_of_a_file_rotated_between_polls() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        fs::write(&current, "t stdout F 1\n").unwrap();
        let set = LogSet::open(&current).unwrap();
        assert_eq!(texts(set.lines().unwrap()), ["1"]);
        let mut follower = set.follow();
        let mut writer = fs::OpenOptions::new().append(true).open(&current).unwrap();
        writer.write_all(b"t stdout F 2\n").unwrap();
        fs::rename(&current, rotated_path(&current, 1)).unwrap();
        fs::write(&current, "t stdout F 3\n").unwrap();
        assert_eq!(texts(follower.poll()), ["2", "3"]);
    }

    /// Regression: `berth logs -f` read the files, then opened a follower
    /// at the end of the current file: what was written in between was lost.
    #[test]
    fn following_goes_on_exactly_where_reading_stopped() {
        let (_dir, current) = log_dir(&[&records(0, 3), &records(3, 5)]);
        let set = LogSet::open(&current).unwrap();
        let mut writer = fs::OpenOptions::new().append(true).open(&current).unwrap();
        writer.write_all(records(5, 6).as_bytes()).unwrap();
        assert_eq!(texts(set.tail(2).unwrap()), ["3", "4"]);
        let mut follower = set.follow();
        writer.write_all(records(6, 7).as_bytes()).unwrap();
        assert_eq!(texts(follower.poll()), ["5", "6"]);
    }

    #[test]
    fn a_follower_of_a_single_file_log_follows_its_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("container.log");
        fs::write(&current, "t stdout F a\n").unwrap();
        let mut follower = LogSet::open(&current).unwrap().follow();
        let mut writer = fs::OpenOptions::new().append(true).open(&current).unwrap();
        writer.write_all(b"t stdout F b\n").unwrap();
        // max_files 1: the writer removes its file and starts a new one.
        fs::remove_file(&current).unwrap();
        fs::write(&current, "t stdout F c\n").unwrap();
        assert_eq!(texts(follower.poll()), ["b", "c"]);
    }

    #[test]
    fn lines_that_are_not_utf8_are_read_lossily() {
        let (_dir, current) = log_dir(&[""]);
        fs::write(&current, b"t stdout F \xff\nt stdout F after\n").unwrap();
        assert_eq!(texts(read_all(&current).unwrap()), ["\u{fffd}", "after"]);
    }
}
