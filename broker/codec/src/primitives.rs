//! Wire primitives (spec 1.5): two- and four-byte integers, Variable Byte Integers, UTF-8
//! strings and binary data, read zero-copy from a frame and written to a `BytesMut`.
//!
//! Reading goes through [`Reader`], a cursor over one frame that owns the frame's [`Bytes`]:
//! strings and binary fields come out as slices of it (one reference-count increment each)
//! and [`Reader::into_rest`] hands back the tail — a PUBLISH payload — without any.
//!
//! Writing is done in two passes by every encoder: measure (which validates every length and
//! fails without side effects) then write into a `BytesMut` reserved to the measured size. The
//! writers here therefore assume their input was measured; they still never panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::frame::{MAX_REMAINING_LENGTH, varint_len};
use crate::{DecodeError, EncodeError};

/// The largest string or binary field: its length is a two-byte integer (spec 1.5.4, 1.5.6).
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

const TRUNCATED: DecodeError = DecodeError::Malformed("packet ends inside a field");

/// A cursor over one frame. Every read is bounds-checked against the current limit (the end
/// of the packet, or the end of a property block while one is read) and running past it is
/// [`DecodeError::Malformed`].
#[derive(Debug)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
    end: usize,
}

impl Reader {
    /// A reader over `frame` starting at byte `start` (normally the fixed header's length).
    pub fn new(frame: Bytes, start: usize) -> Self {
        let end = frame.len();
        Self {
            buf: frame,
            pos: start.min(end),
            end,
        }
    }

    /// Bytes left before the current limit.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// True when the current limit is reached.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The next `n` bytes, borrowed.
    #[inline]
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let start = self.pos;
        let stop = start
            .checked_add(n)
            .filter(|&s| s <= self.end)
            .ok_or(TRUNCATED)?;
        self.pos = stop;
        self.buf.get(start..stop).ok_or(TRUNCATED)
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] at the end of the input.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .filter(|_| self.pos < self.end)
            .ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a big-endian Two Byte Integer (spec 1.5.2).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when fewer than two bytes are left.
    #[inline]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.take(2)?;
        match *s {
            [a, b] => Ok(u16::from_be_bytes([a, b])),
            _ => Err(TRUNCATED),
        }
    }

    /// Reads a big-endian Four Byte Integer (spec 1.5.3).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when fewer than four bytes are left.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.take(4)?;
        match *s {
            [a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
            _ => Err(TRUNCATED),
        }
    }

    /// Reads a Variable Byte Integer (spec 1.5.5).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when it is longer than four bytes, not minimally encoded
    /// (`MQTT-1.5.5-1`) or truncated.
    #[inline]
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4u32 {
            let byte = self.u8()?;
            if i > 0 && byte == 0 {
                return Err(DecodeError::Malformed(
                    "variable byte integer is not minimal",
                ));
            }
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "variable byte integer longer than four bytes",
        ))
    }

    /// The next `n` bytes as a zero-copy slice of the frame.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when fewer than `n` bytes are left.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..self.pos))
    }

    /// Reads Binary Data: a two-byte length and that many bytes (spec 1.5.6).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when truncated.
    #[inline]
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    /// Reads a UTF-8 Encoded String (spec 1.5.4) as a zero-copy slice of the frame.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when truncated, not well-formed UTF-8 (`MQTT-1.5.4-1`) or
    /// containing U+0000 (`MQTT-1.5.4-2`). Rust's UTF-8 validation already rejects the
    /// surrogate code points the specification also forbids.
    #[inline]
    pub fn string(&mut self) -> Result<ByteString, DecodeError> {
        let n = usize::from(self.u16()?);
        let start = self.pos;
        let s = self.take(n)?;
        // Fast path for the usual ASCII topic: one pass checks both "ASCII" (so valid UTF-8)
        // and "no U+0000".
        if !is_plain_ascii(s) {
            if s.contains(&0) {
                return Err(DecodeError::Malformed("string contains U+0000"));
            }
            if std::str::from_utf8(s).is_err() {
                return Err(DecodeError::Malformed("string is not valid UTF-8"));
            }
        }
        ByteString::try_from(self.buf.slice(start..self.pos))
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))
    }

    /// Skips a UTF-8 string and compares it with `expected` without slicing the frame.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when truncated.
    pub fn string_eq(&mut self, expected: &[u8]) -> Result<bool, DecodeError> {
        let n = usize::from(self.u16()?);
        Ok(self.take(n)? == expected)
    }

    /// Restricts reading to the next `len` bytes (a property block), returning the previous
    /// limit for [`Reader::pop_limit`].
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] when `len` runs past the current limit.
    pub fn push_limit(&mut self, len: usize) -> Result<usize, DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Malformed(
                "length runs past the end of the packet",
            ));
        }
        let outer = self.end;
        self.end = self.pos + len;
        Ok(outer)
    }

    /// Restores the limit saved by [`Reader::push_limit`].
    pub fn pop_limit(&mut self, outer: usize) {
        self.end = outer.min(self.buf.len());
    }

    /// Fails when bytes are left before the limit: the packet has no room for them.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] with `what` as the message.
    #[inline]
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(what))
        }
    }

    /// The rest of the frame, by giving the frame itself away: no reference-count change.
    #[inline]
    pub fn into_rest(mut self) -> Bytes {
        self.buf.truncate(self.end);
        self.buf.advance(self.pos.min(self.end));
        self.buf
    }
}

/// True when every byte is in 0x01..=0x7F: ASCII without NUL. Written without an early
/// exit so that it compiles to vector instructions; topics are short and nearly always pass.
#[inline]
fn is_plain_ascii(s: &[u8]) -> bool {
    let mut bad = false;
    for &b in s {
        bad |= b.wrapping_sub(1) >= 0x7F;
    }
    !bad
}

/// Adds `n` to a running length, saturating (a saturated length is rejected as too large).
#[inline]
pub const fn add(acc: usize, n: usize) -> usize {
    acc.saturating_add(n)
}

/// Bytes of a String or Binary field: the two-byte length and the data.
///
/// # Errors
/// [`EncodeError::FieldTooLong`] naming `what` over 65,535 bytes.
#[inline]
pub fn field_len(data: &[u8], what: &'static str) -> Result<usize, EncodeError> {
    if data.len() > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong(what));
    }
    Ok(2 + data.len())
}

/// Size of a whole packet whose Remaining Length is `body`.
///
/// # Errors
/// [`EncodeError::PacketTooLarge`] when `body` exceeds [`MAX_REMAINING_LENGTH`].
#[inline]
pub fn packet_len(body: usize) -> Result<usize, EncodeError> {
    if body > MAX_REMAINING_LENGTH as usize {
        return Err(EncodeError::PacketTooLarge);
    }
    // `varint_len` takes u32; `body` fits as checked above.
    Ok(1 + varint_len(body as u32) + body)
}

/// Writes a Variable Byte Integer (spec 1.5.5). Values above [`MAX_REMAINING_LENGTH`] are the
/// caller's error; they are written truncated to 28 bits rather than panicking.
#[inline]
pub fn put_varint(out: &mut BytesMut, value: u32) {
    let mut v = value & MAX_REMAINING_LENGTH;
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Writes a fixed header: the first byte and the Remaining Length.
#[inline]
pub fn put_fixed_header(out: &mut BytesMut, first: u8, body: usize) {
    out.put_u8(first);
    put_varint(out, u32::try_from(body).unwrap_or(MAX_REMAINING_LENGTH));
}

/// Writes a String or Binary field. The length must have passed [`field_len`]; longer data is
/// cut at 65,535 bytes rather than panicking.
#[inline]
pub fn put_field(out: &mut BytesMut, data: &[u8]) {
    let n = data.len().min(MAX_FIELD_LEN);
    out.put_u16(n as u16);
    out.put_slice(data.get(..n).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes), 0)
    }

    #[test]
    fn integers() {
        let mut r = reader(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u8(), Err(TRUNCATED));
        assert!(matches!(reader(&[1]).u16(), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            reader(&[1, 2, 3]).u32(),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn varints() {
        // Examples from spec table 1-1 (v5 1.5.5).
        for (bytes, value) in [
            (&[0x00][..], 0),
            (&[0x7F][..], 127),
            (&[0x80, 0x01][..], 128),
            (&[0xFF, 0x7F][..], 16_383),
            (&[0x80, 0x80, 0x01][..], 16_384),
            (&[0xFF, 0xFF, 0x7F][..], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01][..], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F][..], MAX_REMAINING_LENGTH),
        ] {
            let mut r = Reader::new(Bytes::copy_from_slice(bytes), 0);
            assert_eq!(r.varint(), Ok(value));
            assert!(r.is_empty());
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(&out[..], bytes);
            assert_eq!(varint_len(value), bytes.len());
        }
        assert!(reader(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).varint().is_err());
        assert!(reader(&[0x80, 0x00]).varint().is_err());
        assert!(reader(&[0x80]).varint().is_err());
    }

    #[test]
    fn strings_are_zero_copy_and_validated() {
        let frame = Bytes::from_static(b"\x00\x03a/b\x00\x02\xC3\xA9");
        let mut r = Reader::new(frame.clone(), 0);
        let s = r.string().unwrap();
        assert_eq!(&*s, "a/b");
        assert_eq!(s.as_bytes().as_ptr(), frame[2..].as_ptr());
        assert_eq!(&*r.string().unwrap(), "é");
        assert!(r.is_empty());

        assert_eq!(
            reader(b"\x00\x01\x00").string(),
            Err(DecodeError::Malformed("string contains U+0000"))
        );
        assert!(matches!(
            reader(b"\x00\x01\xFF").string(),
            Err(DecodeError::Malformed(_))
        ));
        // An encoded surrogate (U+D800) is not UTF-8.
        assert!(matches!(
            reader(b"\x00\x03\xED\xA0\x80").string(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            reader(b"\x00\x05ab").string(),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn limits_and_rest() {
        let mut r = reader(b"\x01\x02\x03\x04");
        let outer = r.push_limit(2).unwrap();
        assert_eq!(r.u16(), Ok(0x0102));
        assert!(r.u8().is_err());
        r.pop_limit(outer);
        assert!(r.push_limit(3).is_err());
        assert_eq!(&r.into_rest()[..], b"\x03\x04");
    }

    #[test]
    fn field_and_packet_lengths() {
        assert_eq!(field_len(b"abc", "x"), Ok(5));
        assert_eq!(
            field_len(&vec![0; 65_536], "x"),
            Err(EncodeError::FieldTooLong("x"))
        );
        assert_eq!(packet_len(0), Ok(2));
        assert_eq!(packet_len(128), Ok(131));
        assert_eq!(packet_len(usize::MAX), Err(EncodeError::PacketTooLarge));
    }
}
