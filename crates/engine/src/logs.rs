//! Container logs in the CRI format the kubelet reads, with size-based rotation.
//!
//! Each line is `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <content>`: `F` ends a line the
//! program wrote, `P` is a piece of a longer line (split at [`MAX_LINE`] bytes, or the last
//! unterminated bytes when the stream closed). When the file reaches its size limit it becomes
//! `ctr.log.1`, older files shift up, and the oldest beyond the limit is deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Longest piece of a line written as one log entry (the kubelet's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output of the container a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and everything a terminal produces).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes CRI log lines and rotates the file by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) `path`; rotates when it grows past `max_size` bytes, keeping
    /// `max_files` rotated files.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1024),
            max_files,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records `bytes` the container wrote to `stream`: complete lines now, the rest when the
    /// line ends (or grows past [`MAX_LINE`]).
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.pending[idx]);
            line.extend_from_slice(&rest[..nl]);
            self.emit_long(stream, &line, true)?;
            rest = &rest[nl + 1..];
        }
        self.pending[idx].extend_from_slice(rest);
        while self.pending[idx].len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending[idx].drain(..MAX_LINE).collect();
            self.emit(stream, &piece, false)?;
        }
        Ok(())
    }

    /// Writes what is left of unterminated lines as partial entries (the stream closed).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let piece = std::mem::take(&mut self.pending[stream as usize]);
            if !piece.is_empty() {
                self.emit(stream, &piece, false)?;
            }
        }
        Ok(())
    }

    fn emit_long(&mut self, stream: Stream, line: &[u8], full: bool) -> io::Result<()> {
        let mut chunks = line.chunks(MAX_LINE).peekable();
        if chunks.peek().is_none() {
            return self.emit(stream, b"", full);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.emit(stream, chunk, full && last)?;
        }
        Ok(())
    }

    fn emit(&mut self, stream: Stream, content: &[u8], full: bool) -> io::Result<()> {
        let (secs, nanos) = crate::layout::now();
        let ts = drover_core::time::format_rfc3339_nanos(secs, nanos).unwrap_or_default();
        let mut entry = Vec::with_capacity(content.len() + 48);
        entry.extend_from_slice(ts.as_bytes());
        entry.push(b' ');
        entry.extend_from_slice(stream.tag().as_bytes());
        entry.extend_from_slice(if full { b" F " } else { b" P " });
        entry.extend_from_slice(content);
        entry.push(b'\n');
        if self.size > 0 && self.size + entry.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.path, self.max_files));
        for n in (1..self.max_files).rev() {
            let _ = fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One whole line of output, partial entries joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The timestamp of its first piece, as written.
    pub time: String,
    /// stdout or stderr.
    pub stream: Stream,
    /// The bytes, without the newline.
    pub content: Vec<u8>,
    /// The program ended the line with a newline (false for a last, unterminated line).
    pub complete: bool,
}

/// Turns CRI entries into whole lines; keeps partial pieces per stream across calls.
#[derive(Default)]
pub struct Parser {
    pending: [Option<Line>; 2],
}

impl Parser {
    /// Feeds one entry (without its newline); returns a line when one is complete.
    pub fn entry(&mut self, raw: &[u8]) -> Option<Line> {
        let mut parts = raw.splitn(4, |&b| b == b' ');
        let time = String::from_utf8_lossy(parts.next()?).into_owned();
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let full = match parts.next()? {
            b"F" => true,
            b"P" => false,
            _ => return None,
        };
        let content = parts.next().unwrap_or_default();
        let slot = &mut self.pending[stream as usize];
        let line = slot.get_or_insert_with(|| Line {
            time,
            stream,
            content: Vec::new(),
            complete: false,
        });
        line.content.extend_from_slice(content);
        if full {
            let mut line = slot.take()?;
            line.complete = true;
            return Some(line);
        }
        None
    }

    /// The unterminated lines left at the end of the log.
    pub fn finish(&mut self) -> Vec<Line> {
        self.pending.iter_mut().filter_map(Option::take).collect()
    }
}

/// Every line in the log files of `path` (rotated ones first), oldest first.
pub fn read_all(path: &Path, max_files: u32) -> io::Result<Vec<Line>> {
    let mut parser = Parser::default();
    let mut out = Vec::new();
    for n in (1..=max_files.max(1)).rev() {
        read_file(&rotated(path, n), &mut parser, &mut out)?;
    }
    read_file(path, &mut parser, &mut out)?;
    out.extend(parser.finish());
    Ok(out)
}

fn read_file(path: &Path, parser: &mut Parser, out: &mut Vec<Line>) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for raw in BufReader::new(file).split(b'\n') {
        if let Some(line) = parser.entry(&raw?) {
            out.push(line);
        }
    }
    Ok(())
}

/// Every line so far (like [`read_all`]) and a [`Follower`] that continues exactly where the
/// reading stopped: same file handle, same parser, so following neither repeats nor skips a line.
pub fn read_and_follow(path: &Path, max_files: u32) -> io::Result<(Vec<Line>, Follower)> {
    let mut parser = Parser::default();
    let mut out = Vec::new();
    for n in (1..=max_files.max(1)).rev() {
        read_file(&rotated(path, n), &mut parser, &mut out)?;
    }
    let mut f = Follower {
        path: path.to_path_buf(),
        file: None,
        inode: 0,
        buf: Vec::new(),
        parser,
    };
    if let Ok(file) = File::open(path) {
        f.inode = file.metadata()?.ino();
        f.file = Some(file);
    }
    f.drain(&mut out)?;
    Ok((out, f))
}

/// Follows the current log file as it grows and across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    buf: Vec<u8>,
    parser: Parser,
}

impl Follower {
    /// Starts at the end of what [`read_all`] returned (the current file's present size).
    pub fn from_end(path: &Path) -> io::Result<Self> {
        let mut f = Self {
            path: path.to_path_buf(),
            file: None,
            inode: 0,
            buf: Vec::new(),
            parser: Parser::default(),
        };
        if let Ok(mut file) = File::open(path) {
            f.inode = file.metadata()?.ino();
            file.seek(SeekFrom::End(0))?;
            f.file = Some(file);
        }
        Ok(f)
    }

    /// New whole lines since the last call. Reads the old file to its end before moving to a
    /// file that replaced it by rotation, so no line is lost or repeated.
    pub fn poll(&mut self) -> io::Result<Vec<Line>> {
        let mut out = Vec::new();
        self.drain(&mut out)?;
        let current = fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current.is_some()
            && current != Some(self.inode)
            && let Ok(file) = File::open(&self.path)
        {
            self.inode = file.metadata()?.ino();
            self.file = Some(file);
            self.drain(&mut out)?;
        }
        Ok(out)
    }

    /// The unterminated lines at the end (call once the container has exited).
    pub fn finish(&mut self) -> Vec<Line> {
        self.parser.finish()
    }

    fn drain(&mut self, out: &mut Vec<Line>) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=nl).collect();
            if let Some(line) = self.parser.entry(&raw[..raw.len() - 1]) {
                out.push(line);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(lines: &[Line]) -> Vec<(Stream, String, bool)> {
        lines
            .iter()
            .map(|l| {
                (
                    l.stream,
                    String::from_utf8_lossy(&l.content).into_owned(),
                    l.complete,
                )
            })
            .collect()
    }

    #[test]
    fn lines_round_trip_with_partials_and_streams() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctr.log");
        let mut w = LogWriter::open(&path, 1 << 20, 2).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nworld\n\nlast").unwrap();
        w.flush_partial().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        // `2026-11-26T08:00:00.123456789Z stderr F oops`
        let (ts, rest) = first.split_once(' ').unwrap();
        assert_eq!(ts.len(), 30, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        assert_eq!(rest, "stderr F oops");
        let lines = read_all(&path, 2).unwrap();
        assert_eq!(
            contents(&lines),
            vec![
                (Stream::Stderr, "oops".into(), true),
                (Stream::Stdout, "hello".into(), true),
                (Stream::Stdout, "world".into(), true),
                (Stream::Stdout, String::new(), true),
                (Stream::Stdout, "last".into(), false),
            ]
        );
    }

    #[test]
    fn long_lines_are_split_and_joined_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctr.log");
        let mut w = LogWriter::open(&path, 1 << 20, 2).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let tags: Vec<&str> = text.lines().map(|l| &l[31..39]).collect();
        assert_eq!(tags, ["stdout P", "stdout P", "stdout F"]);
        let lines = read_all(&path, 2).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].content, long);
    }

    #[test]
    fn rotation_keeps_the_newest_files_and_loses_no_line_in_between() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctr.log");
        let mut w = LogWriter::open(&path, 2048, 3).unwrap();
        for i in 0..400 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&path, 3).exists());
        assert!(!rotated(&path, 4).exists());
        for n in 1..=3 {
            assert!(fs::metadata(rotated(&path, n)).unwrap().len() <= 2048);
        }
        let lines = read_all(&path, 3).unwrap();
        let numbers: Vec<u32> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.content)[5..].parse().unwrap())
            .collect();
        // What is kept is a contiguous run ending at the last line.
        assert_eq!(*numbers.last().unwrap(), 399);
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert!(numbers.len() < 400);
    }

    #[test]
    fn follower_sees_appends_and_crosses_rotations() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctr.log");
        let mut w = LogWriter::open(&path, 4096, 5).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let mut f = Follower::from_end(&path).unwrap();
        assert!(f.poll().unwrap().is_empty());
        let mut seen = Vec::new();
        for i in 0..300 {
            w.write(Stream::Stdout, format!("n{i}\n").as_bytes())
                .unwrap();
            if i % 7 == 0 {
                seen.extend(f.poll().unwrap());
            }
        }
        seen.extend(f.poll().unwrap());
        assert!(rotated(&path, 1).exists(), "the test must cross a rotation");
        let got: Vec<String> = seen
            .iter()
            .map(|l| String::from_utf8_lossy(&l.content).into_owned())
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
        assert_eq!(got, want);
    }
}
