//! The byte cursor of the targets whose input is a byte program (`frame_stream`, `body`,
//! `validate_vs_decode`, `stream_reassembly`): it reads selector bytes and slices off the front of
//! the input, and yields zeros once the input is used up, so every input is a valid program.
//! (The `Arbitrary` targets read theirs with `arbitrary::Unstructured`.)

/// A cursor over fuzz input.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub(super) fn new(data: &'a [u8]) -> Self {
        Cursor(data)
    }

    /// The next byte, or 0.
    pub(super) fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian (zeros past the end).
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next `n` bytes, or as many as are left.
    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let (now, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        now
    }

    /// Everything not read yet.
    pub(super) fn rest(self) -> &'a [u8] {
        self.0
    }

    /// True when everything was read.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn reads_then_zeros() {
        let mut c = Cursor::new(&[1, 2, 3, 4]);
        assert_eq!(c.u8(), 1);
        assert_eq!(c.u16(), 0x0203);
        assert_eq!(c.take(5), &[4]);
        assert!(c.is_empty());
        assert_eq!((c.u8(), c.u16(), c.take(3)), (0, 0, &[][..]));
        assert_eq!(Cursor::new(&[9, 8]).rest(), &[9, 8]);
    }
}
