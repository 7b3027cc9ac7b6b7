//! Streaming decompression of layer blobs: gzip (multi-member) and zstd (multi-frame, with
//! skippable frames), both pure Rust.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use crate::oci::Compression;

/// Wraps a compressed blob reader into a reader of the uncompressed tar stream.
pub(crate) fn decompressor<'a, R: Read + 'a>(
    compression: Compression,
    r: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(r))),
        Compression::Zstd => Box::new(ZstdReader::new(BufReader::with_capacity(256 * 1024, r))?),
    })
}

/// Reads every zstd frame of a stream in turn, skipping skippable frames.
struct ZstdReader<R: BufRead> {
    dec: Option<StreamingDecoder<R, FrameDecoder>>,
}

const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;

impl<R: BufRead> ZstdReader<R> {
    fn new(mut src: R) -> io::Result<Self> {
        skip_skippable(&mut src)?;
        let dec = StreamingDecoder::new_with_decoder(src, FrameDecoder::new()).map_err(zerr)?;
        Ok(ZstdReader { dec: Some(dec) })
    }
}

fn zerr(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

/// Skips skippable frames at the reader's position; returns whether data remains.
fn skip_skippable<R: BufRead>(src: &mut R) -> io::Result<bool> {
    loop {
        let buf = src.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let mut head = [0u8; 8];
        if buf.len() >= 8 {
            head.copy_from_slice(&buf[..8]);
        } else {
            // A short buffer at a frame boundary: read the header the slow way.
            let mut v = Vec::new();
            src.by_ref().take(8).read_to_end(&mut v)?;
            if v.len() < 4 {
                return Err(zerr("truncated frame header"));
            }
            let magic = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if SKIPPABLE_MAGIC.contains(&magic) && v.len() == 8 {
                let len = u32::from_le_bytes([v[4], v[5], v[6], v[7]]) as u64;
                io::copy(&mut src.by_ref().take(len), &mut io::sink())?;
                continue;
            }
            return Err(zerr("frame header split across reads is not supported"));
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if !SKIPPABLE_MAGIC.contains(&magic) {
            return Ok(true);
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
        src.consume(8);
        let skipped = io::copy(&mut src.by_ref().take(len), &mut io::sink())?;
        if skipped != len {
            return Err(zerr("truncated skippable frame"));
        }
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let (mut src, fd) = self.dec.take().expect("present").into_parts();
            if !skip_skippable(&mut src)? {
                return Ok(0);
            }
            self.dec = Some(StreamingDecoder::new_with_decoder(src, fd).map_err(zerr)?);
        }
    }
}
