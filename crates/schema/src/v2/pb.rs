//! A minimal proto3 writer: the wire types the gnostic messages use (varint, 64-bit,
//! length-delimited). Zero scalars are left out, as proto3 encoders do.

/// One message being written.
#[derive(Default)]
pub(super) struct Msg {
    buf: Vec<u8>,
}

const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;

impl Msg {
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    /// A `string` field (left out when empty).
    pub(super) fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    /// One element of a `repeated string` field (written even when empty).
    pub(super) fn repeated_string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A `bool` field (left out when false).
    pub(super) fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.oneof_bool(field, b);
        }
    }

    /// A `bool` member of a `oneof`: written even when false, since presence is the point.
    pub(super) fn oneof_bool(&mut self, field: u32, b: bool) {
        self.key(field, VARINT);
        self.varint(u64::from(b));
    }

    /// An `int64` field (left out when zero; negatives take ten bytes, as in proto3).
    pub(super) fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v as u64);
        }
    }

    /// A `double` field (left out when zero).
    pub(super) fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, I64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A message field, written by `f` (written even when empty: presence can matter, e.g.
    /// an empty `Properties` still makes kubectl treat a schema as an object with fields).
    pub(super) fn message(&mut self, field: u32, f: impl FnOnce(&mut Msg)) {
        let mut inner = Msg::default();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_strings_and_nested_messages_follow_the_wire_format() {
        let mut m = Msg::default();
        m.int64(1, 150);
        m.string(2, "hi");
        m.string(3, "");
        m.bool(4, false);
        m.oneof_bool(5, false);
        m.message(6, |m| m.int64(1, -1));
        m.double(7, 1.5);
        let b = m.into_bytes();
        let mut want = vec![
            0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x28, 0x00, 0x32, 11, 0x08,
        ];
        want.extend([0xff; 9]);
        want.push(0x01);
        want.push(0x39);
        want.extend(1.5f64.to_le_bytes());
        assert_eq!(b, want);
    }
}
