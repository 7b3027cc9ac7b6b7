//! The supervisor's attach protocol, over the unix socket `attach.sock` in the container's
//! directory.
//!
//! Frames both ways: one byte of kind, a big-endian `u32` length, the payload. A client opens with
//! [`Kind::Hello`] (JSON: whether it sends stdin, whether the supervisor should start a
//! container that waits for its first client); then the supervisor sends output as it happens
//! and, at the end, [`Kind::Exit`] with the exit code.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Container stdout (or the terminal's output).
    Stdout = 1,
    /// Container stderr.
    Stderr = 2,
    /// The container ended: JSON [`ExitInfo`].
    Exit = 3,
    /// The container could not be started: a message.
    Error = 4,
    /// Client → supervisor: bytes for the container's stdin.
    Stdin = 10,
    /// Client → supervisor: no more stdin.
    StdinClose = 11,
    /// Client → supervisor: terminal size, rows then columns, `u16` each.
    Resize = 12,
    /// Client → supervisor: the first frame, JSON [`Hello`].
    Hello = 13,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Stdout,
            2 => Self::Stderr,
            3 => Self::Exit,
            4 => Self::Error,
            10 => Self::Stdin,
            11 => Self::StdinClose,
            12 => Self::Resize,
            13 => Self::Hello,
            _ => return None,
        })
    }
}

/// A client's first frame.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Hello {
    /// The client forwards its stdin.
    pub stdin: bool,
    /// Start the container if it waits for its first client (foreground `run`).
    pub start: bool,
}

/// How the container ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitInfo {
    /// Exit code, 128+signal when killed.
    pub exit_code: i32,
    /// The OOM killer ended it.
    pub oom_killed: bool,
}

/// Largest payload accepted (a bound so a broken peer cannot make us allocate without limit).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Encodes one frame.
pub fn frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(kind as u8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Writes one frame (blocking).
pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// Reads one frame (blocking); `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let (kind, len) = parse_head(head)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

fn parse_head(head: [u8; 5]) -> io::Result<(Kind, usize)> {
    let kind = Kind::from_byte(head[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("attach: unknown frame kind {}", head[0]),
        )
    })?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("attach: frame of {len} bytes exceeds {MAX_PAYLOAD}"),
        ));
    }
    Ok((kind, len))
}

/// Splits frames out of bytes that arrive in pieces (the supervisor's non-blocking reads).
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Adds bytes; returns the complete frames, or an error for a malformed stream.
    pub fn push(&mut self, bytes: &[u8]) -> io::Result<Vec<(Kind, Vec<u8>)>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 5 {
                break;
            }
            let head = [
                self.buf[0],
                self.buf[1],
                self.buf[2],
                self.buf[3],
                self.buf[4],
            ];
            let (kind, len) = parse_head(head)?;
            if self.buf.len() < 5 + len {
                break;
            }
            let payload = self.buf[5..5 + len].to_vec();
            self.buf.drain(..5 + len);
            out.push((kind, payload));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whole_and_in_pieces() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Hello, br#"{"stdin":true,"start":false}"#).unwrap();
        write_frame(&mut wire, Kind::Stdin, b"abc").unwrap();
        write_frame(&mut wire, Kind::Resize, &[0, 24, 0, 80]).unwrap();
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap().0, Kind::Hello);
        assert_eq!(
            read_frame(&mut r).unwrap().unwrap(),
            (Kind::Stdin, b"abc".to_vec())
        );
        assert_eq!(read_frame(&mut r).unwrap().unwrap().1, [0, 24, 0, 80]);
        assert!(read_frame(&mut r).unwrap().is_none());
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &wire {
            got.extend(d.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (Kind::Stdin, b"abc".to_vec()));
    }

    #[test]
    fn malformed_streams_are_refused() {
        let mut d = Decoder::default();
        assert!(d.push(&[99, 0, 0, 0, 0]).is_err());
        let mut d = Decoder::default();
        assert!(d.push(&[10, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
