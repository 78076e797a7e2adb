//! Reading `COPY ... TO STDOUT (FORMAT binary)` output, row by row, without allocating.
//!
//! Why: the metrics read every phase of the history (500,000 rows for 100,000 runs).
//! Through the query protocol `tokio-postgres` builds a `Row` per row (an allocation,
//! a type check per getter) and the client, not the server, set the pace: ~165 ms for
//! the phases on the benchmark's 2 cores, where the server produces them in ~100 ms. The
//! binary copy format is simple (docs: "COPY", "Binary Format"): a header, then per
//! tuple a 16-bit field count and per field a 32-bit length (-1 for NULL) and the
//! value in the type's binary form. Parsing it in place costs a few nanoseconds a field.
//!
//! Integers are read by their width (2, 4 or 8 bytes, as `int2`, `int4` and `int8`
//! send them), text as UTF-8, so the [`Row`] getters work as on the other engines.

use bytes::{Buf, BytesMut};

use super::{DbError, Row};

/// The signature every binary copy starts with.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Fields a row can have here: the metrics' scans select four.
const MAX_FIELDS: usize = 8;

/// A tuple of a binary copy: each field's bytes, `None` for NULL.
pub(crate) struct CopyRow<'a> {
    fields: [Option<&'a [u8]>; MAX_FIELDS],
    count: usize,
}

impl CopyRow<'_> {
    fn field(&self, index: usize) -> Result<Option<&[u8]>, DbError> {
        if index < self.count {
            Ok(self.fields[index])
        } else {
            Err(invalid(&format!(
                "the copy has {} fields, not {}",
                self.count,
                index + 1
            )))
        }
    }

    fn integer(bytes: &[u8]) -> Result<i64, DbError> {
        if let Ok(wide) = <[u8; 8]>::try_from(bytes) {
            Ok(i64::from_be_bytes(wide))
        } else if let Ok(four) = <[u8; 4]>::try_from(bytes) {
            Ok(i64::from(i32::from_be_bytes(four)))
        } else if let Ok(two) = <[u8; 2]>::try_from(bytes) {
            Ok(i64::from(i16::from_be_bytes(two)))
        } else {
            Err(invalid(&format!(
                "a {}-byte field is not an integer",
                bytes.len()
            )))
        }
    }
}

impl Row for CopyRow<'_> {
    fn i64(&self, index: usize) -> Result<i64, DbError> {
        let bytes = self
            .field(index)?
            .ok_or_else(|| invalid(&format!("field {} is NULL", index + 1)))?;
        Self::integer(bytes)
    }

    fn opt_i64(&self, index: usize) -> Result<Option<i64>, DbError> {
        self.field(index)?.map(Self::integer).transpose()
    }

    fn str(&self, index: usize) -> Result<&str, DbError> {
        let bytes = self
            .field(index)?
            .ok_or_else(|| invalid(&format!("field {} is NULL", index + 1)))?;
        std::str::from_utf8(bytes).map_err(|error| invalid(&error.to_string()))
    }

    fn opt_string(&self, index: usize) -> Result<Option<String>, DbError> {
        self.field(index)?
            .map(|bytes| {
                String::from_utf8(bytes.to_vec()).map_err(|error| invalid(&error.to_string()))
            })
            .transpose()
    }
}

fn invalid(message: &str) -> DbError {
    DbError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("binary copy from PostgreSQL: {message}"),
    ))
}

/// Parses a binary copy fed in chunks of any size (the server's `CopyData` messages
/// need not end on a row), handing each complete row to the callback.
#[derive(Default)]
pub(crate) struct CopyParser {
    /// Bytes of a row (or of the header) whose end has not arrived yet.
    pending: BytesMut,
    header_read: bool,
    finished: bool,
}

impl CopyParser {
    /// Takes the next chunk and hands every row it completes to `each`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        if self.pending.is_empty() {
            let used = self.parse(chunk, each)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            let used = self.parse(&pending, each)?;
            self.pending = pending;
            self.pending.advance(used);
        }
        Ok(())
    }

    /// Checks that the copy ended where a row ends, with its trailer.
    pub(crate) fn finish(&self) -> Result<(), DbError> {
        if self.finished && self.pending.is_empty() {
            Ok(())
        } else {
            Err(invalid("the copy ended inside a row"))
        }
    }

    /// Parses the complete rows at the start of `bytes`; returns how many bytes they took.
    fn parse(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<usize, DbError> {
        let mut at = 0;
        if !self.header_read {
            let Some(length) = header_length(bytes)? else {
                return Ok(0);
            };
            self.header_read = true;
            at = length;
        }
        while !self.finished {
            let Some(count) = read_i16(bytes, at) else {
                break;
            };
            if count == -1 {
                self.finished = true;
                at += 2;
                break;
            }
            let count = usize::try_from(count)
                .ok()
                .filter(|count| *count <= MAX_FIELDS)
                .ok_or_else(|| invalid(&format!("a row of {count} fields")))?;
            let mut row = CopyRow {
                fields: [None; MAX_FIELDS],
                count,
            };
            let mut next = at + 2;
            let mut complete = true;
            for field in row.fields.iter_mut().take(count) {
                let Some(length) = read_i32(bytes, next) else {
                    complete = false;
                    break;
                };
                next += 4;
                if length < 0 {
                    continue;
                }
                let end = next + usize::try_from(length).unwrap_or(usize::MAX);
                let Some(value) = bytes.get(next..end) else {
                    complete = false;
                    break;
                };
                *field = Some(value);
                next = end;
            }
            if !complete {
                break;
            }
            each(&row)?;
            at = next;
        }
        Ok(at)
    }
}

/// The header's length, once all of it has arrived.
fn header_length(bytes: &[u8]) -> Result<Option<usize>, DbError> {
    let fixed = SIGNATURE.len() + 8;
    if bytes.len() < fixed {
        return Ok(None);
    }
    if &bytes[..SIGNATURE.len()] != SIGNATURE {
        return Err(invalid("no binary copy signature"));
    }
    let extension = read_i32(bytes, SIGNATURE.len() + 4).unwrap_or(0);
    let length = fixed + usize::try_from(extension).unwrap_or(0);
    Ok((bytes.len() >= length).then_some(length))
}

fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    let slice = bytes.get(at..at + 2)?;
    Some(i16::from_be_bytes([slice[0], slice[1]]))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let slice = bytes.get(at..at + 4)?;
    Some(i32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

#[cfg(test)]
mod tests {
    use super::{CopyParser, DbError, Row, SIGNATURE};

    /// What a row read back as: (run, name, duration, width-4 integer).
    type Read = (i64, String, Option<i64>, i64);

    /// A binary copy of `rows` as the server sends it: header (with a 3-byte extension
    /// area, which readers must skip), tuples, trailer.
    fn encode(rows: &[Read]) -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&0_i32.to_be_bytes());
        bytes.extend_from_slice(&3_i32.to_be_bytes());
        bytes.extend_from_slice(b"ext");
        for (run, name, duration, small) in rows {
            bytes.extend_from_slice(&4_i16.to_be_bytes());
            bytes.extend_from_slice(&8_i32.to_be_bytes());
            bytes.extend_from_slice(&run.to_be_bytes());
            bytes.extend_from_slice(&i32::try_from(name.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(name.as_bytes());
            match duration {
                Some(duration) => {
                    bytes.extend_from_slice(&8_i32.to_be_bytes());
                    bytes.extend_from_slice(&duration.to_be_bytes());
                }
                None => bytes.extend_from_slice(&(-1_i32).to_be_bytes()),
            }
            bytes.extend_from_slice(&4_i32.to_be_bytes());
            bytes.extend_from_slice(&i32::try_from(*small).unwrap().to_be_bytes());
        }
        bytes.extend_from_slice(&(-1_i16).to_be_bytes());
        bytes
    }

    fn read(chunks: &[&[u8]]) -> Result<Vec<Read>, DbError> {
        let mut parser = CopyParser::default();
        let mut rows = Vec::new();
        let mut each = |row: &dyn Row| {
            rows.push((row.i64(0)?, row.string(1)?, row.opt_i64(2)?, row.i64(3)?));
            Ok(())
        };
        for chunk in chunks {
            parser.feed(chunk, &mut each)?;
        }
        parser.finish()?;
        Ok(rows)
    }

    fn sample() -> Vec<Read> {
        vec![
            (1, "clone".to_owned(), Some(30_000), -7),
            (1, "configure-vm".to_owned(), None, 0),
            (i64::MAX, "vérify".to_owned(), Some(-1), i64::from(i32::MAX)),
            (2, String::new(), Some(0), i64::from(i32::MIN)),
        ]
    }

    #[test]
    fn rows_are_read_whole_however_the_chunks_fall() {
        let bytes = encode(&sample());
        assert_eq!(read(&[&bytes]).unwrap(), sample());
        for split in 0..=bytes.len() {
            let (first, second) = bytes.split_at(split);
            assert_eq!(
                read(&[first, second]).unwrap(),
                sample(),
                "split at {split}"
            );
        }
        let bytes_one_at_a_time: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read(&bytes_one_at_a_time).unwrap(), sample());
    }

    #[test]
    fn a_copy_cut_short_or_foreign_is_an_error_not_fewer_rows() {
        let bytes = encode(&sample());
        let cut = read(&[&bytes[..bytes.len() - 5]]).unwrap_err();
        assert!(format!("{cut:?}").contains("ended inside a row"), "{cut:?}");
        let without_trailer = read(&[&bytes[..bytes.len() - 2]]).unwrap_err();
        assert!(format!("{without_trailer:?}").contains("ended inside a row"));
        let foreign = read(&[b"id,name\n1,clone\n0123456789"]).unwrap_err();
        assert!(format!("{foreign:?}").contains("signature"), "{foreign:?}");
    }

    #[test]
    fn a_getter_on_the_wrong_field_says_what_is_wrong() {
        let bytes = encode(&sample()[1..2]);
        let mut parser = CopyParser::default();
        let mut errors = Vec::new();
        parser
            .feed(&bytes, &mut |row: &dyn Row| {
                errors.push(format!("{:?}", row.i64(2).unwrap_err()));
                errors.push(format!("{:?}", row.i64(1).unwrap_err()));
                errors.push(format!("{:?}", row.str(9).unwrap_err()));
                Ok(())
            })
            .unwrap();
        assert!(errors[0].contains("field 3 is NULL"), "{errors:?}");
        assert!(
            errors[1].contains("12-byte field is not an integer"),
            "{errors:?}"
        );
        assert!(errors[2].contains("4 fields, not 10"), "{errors:?}");
    }
}
