//! Protobuf wire primitives: varints, tags and length-delimited fields.

/// Protobuf wire types used by Kubernetes messages.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// What went wrong while reading raw wire data; the caller adds the message and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    Truncated,
    VarintTooLong,
    BadTag,
    UnsupportedWireType(u8),
}

impl WireError {
    pub(crate) fn describe(&self) -> String {
        match self {
            WireError::Truncated => "input ends in the middle of a value".to_owned(),
            WireError::VarintTooLong => "varint longer than 10 bytes".to_owned(),
            WireError::BadTag => "field number 0 or out of range".to_owned(),
            WireError::UnsupportedWireType(t) => format!("unsupported wire type {t}"),
        }
    }
}

/// A cursor over a protobuf buffer that remembers its offset in the outermost input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated);
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    /// Reads a field key: (field number, wire type).
    pub(crate) fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(WireError::BadTag);
        }
        // Both casts are in range: checked above, and `& 7` fits a u8.
        Ok((number as u32, (key & 7) as u8))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a length-delimited payload; returns it with its absolute start offset.
    pub(crate) fn len_delimited(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        let start = self.offset();
        Ok((self.bytes(n)?, start))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips one value of wire type `wire` (groups are not used by Kubernetes and are rejected).
    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.bytes(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.bytes(4).map(drop),
            other => Err(WireError::UnsupportedWireType(other)),
        }
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, data: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Writes a signed integer the way Go does for int32 and int64: two's complement, sign-extended
/// to 64 bits (so negative values take 10 bytes).
pub(crate) fn put_int(out: &mut Vec<u8>, number: u32, v: i64) {
    put_key(out, number, VARINT);
    put_varint(out, v as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_negative_sign_extension() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, (-1i64) as u64] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Reader::new(&out, 0).varint(), Ok(v));
        }
        let mut out = Vec::new();
        put_int(&mut out, 1, -1);
        assert_eq!(out.len(), 11);
    }

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        assert_eq!(Reader::new(&[0x80], 0).varint(), Err(WireError::Truncated));
        assert_eq!(
            Reader::new(&[0x05, 1], 0).len_delimited().map(drop),
            Err(WireError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0xff; 11], 0).varint(),
            Err(WireError::VarintTooLong)
        );
        assert_eq!(Reader::new(&[0x00], 0).key(), Err(WireError::BadTag));
    }
}
