//! A deterministic ZIP writer with exactly the features a wheel needs and PyPI accepts (the
//! wheel builder and the direct-download `.zip` archives share it):
//! deflate only, sizes and CRC in the local header (no data descriptors), Unix modes, one fixed
//! timestamp, no extra fields, no comments, no duplicate names, nothing after the end record.
//!
//! A binary is not compressed here: its stream, compressed once for every artifact, is copied
//! in by [`ZipWriter::add_deflated`].

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::date::{SECONDS_PER_DAY, civil_from_days};
use crate::deflate::{Deflated, FINAL_EMPTY_BLOCK};

const LOCAL_FILE_HEADER: u32 = 0x0403_4b50;
const CENTRAL_DIRECTORY_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// Version 2.0: the first that knows deflate; what readers need for everything we write.
const VERSION_NEEDED: u16 = 20;
/// "Made by" Unix (3 in the high byte), spec version 2.0: tells readers that the high 16 bits
/// of the external attributes hold a Unix mode, which is how installers learn that a script
/// is executable.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
const METHOD_DEFLATE: u16 = 8;
/// Neither data descriptors (bit 3, rejected by PyPI) nor UTF-8 names (bit 11; wheel paths
/// built by castoff are ASCII, which `add` enforces).
const FLAGS: u16 = 0;

/// A timestamp in the MS-DOS format ZIP stores: local date and time with 2-second resolution,
/// years 1980 to 2107.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosDateTime {
    pub date: u16,
    pub time: u16,
}

impl DosDateTime {
    /// Converts Unix seconds (UTC, e.g. `SOURCE_DATE_EPOCH`), clamped to the range the format
    /// can hold: anything before 1980-01-01 becomes 1980-01-01 00:00:00.
    pub fn from_unix_seconds(seconds: u64) -> DosDateTime {
        const MIN: u64 = 315_532_800; // 1980-01-01T00:00:00Z
        const MAX: u64 = 4_354_819_198; // 2107-12-31T23:59:58Z
        let seconds = seconds.clamp(MIN, MAX);
        let second_of_day = seconds % SECONDS_PER_DAY;
        let (year, month, day) = civil_from_days((seconds / SECONDS_PER_DAY) as i64);
        let hour = second_of_day / 3600;
        let minute = second_of_day % 3600 / 60;
        let second = second_of_day % 60;
        // The clamp keeps the year within 1980..=2107: 7 bits.
        let year_since_1980 = (year - 1980) as u16;
        DosDateTime {
            date: (year_since_1980 << 9) | ((month as u16) << 5) | day as u16,
            time: ((hour << 11) | (minute << 5) | (second / 2)) as u16,
        }
    }
}

/// Writes entries one after another to `out`, then the central directory.
///
/// Each entry is compressed in memory first, so its CRC and sizes are known before its local
/// header is written: no seeking and no data descriptors, whatever `out` is.
#[derive(Debug)]
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    central_directory: Vec<u8>,
    names: BTreeSet<String>,
    timestamp: DosDateTime,
    level: u32,
}

impl<W: Write> ZipWriter<W> {
    /// Every entry gets `timestamp`; `level` is the deflate level (0-9).
    pub fn new(out: W, timestamp: DosDateTime, level: u32) -> ZipWriter<W> {
        ZipWriter {
            out,
            offset: 0,
            central_directory: Vec::new(),
            names: BTreeSet::new(),
            timestamp,
            level: level.min(9),
        }
    }

    /// Adds a regular file with Unix permission bits `mode` (e.g. `0o755`).
    pub fn add(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.check_name(name)?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let compressed = crate::deflate::deflate_whole(data, self.level)?;
        self.write_entry(
            name,
            mode,
            crc.sum(),
            data.len() as u64,
            compressed.len() as u64,
            |out| out.write_all(&compressed),
        )
    }

    /// Adds a regular file compressed once already (by
    /// [`crate::deflate`]): its stream is copied, then ended with a final empty block.
    pub fn add_deflated(&mut self, name: &str, mode: u32, data: &Deflated) -> io::Result<()> {
        self.check_name(name)?;
        self.write_entry(
            name,
            mode,
            data.crc32(),
            data.size(),
            data.compressed_size() + FINAL_EMPTY_BLOCK.len() as u64,
            |out| {
                data.copy_compressed_to(out)?;
                out.write_all(&FINAL_EMPTY_BLOCK)
            },
        )
    }

    fn check_name(&mut self, name: &str) -> io::Result<()> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if name.is_empty()
            || name.starts_with('/')
            || name.ends_with('/')
            || !name.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(invalid(format!(
                "zip entry name `{name}` must be a relative path of printable ASCII"
            )));
        }
        if !self.names.insert(name.to_owned()) {
            return Err(invalid(format!("zip entry `{name}` is added twice")));
        }
        Ok(())
    }

    /// Writes the local header, the compressed bytes (`write_data`, exactly `compressed`
    /// bytes) and records the central directory entry.
    fn write_entry(
        &mut self,
        name: &str,
        mode: u32,
        crc: u32,
        uncompressed: u64,
        compressed: u64,
        write_data: impl FnOnce(&mut W) -> io::Result<()>,
    ) -> io::Result<()> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let too_large = |what: &str| {
            invalid(format!(
                "zip entry `{name}`: {what} exceeds 4 GiB, which needs ZIP64 (not supported)"
            ))
        };
        let uncompressed_size =
            u32::try_from(uncompressed).map_err(|_| too_large("the file size"))?;
        let compressed_size =
            u32::try_from(compressed).map_err(|_| too_large("the compressed size"))?;
        let local_header_offset =
            u32::try_from(self.offset).map_err(|_| too_large("the archive size"))?;
        let name_length = name.len() as u16;

        let mut local = Vec::with_capacity(30 + name.len());
        put_u32(&mut local, LOCAL_FILE_HEADER);
        put_u16(&mut local, VERSION_NEEDED);
        put_u16(&mut local, FLAGS);
        put_u16(&mut local, METHOD_DEFLATE);
        put_u16(&mut local, self.timestamp.time);
        put_u16(&mut local, self.timestamp.date);
        put_u32(&mut local, crc);
        put_u32(&mut local, compressed_size);
        put_u32(&mut local, uncompressed_size);
        put_u16(&mut local, name_length);
        put_u16(&mut local, 0); // extra field length
        local.extend_from_slice(name.as_bytes());
        self.out.write_all(&local)?;
        write_data(&mut self.out)?;
        self.offset += local.len() as u64 + compressed;

        let central = &mut self.central_directory;
        put_u32(central, CENTRAL_DIRECTORY_HEADER);
        put_u16(central, VERSION_MADE_BY);
        put_u16(central, VERSION_NEEDED);
        put_u16(central, FLAGS);
        put_u16(central, METHOD_DEFLATE);
        put_u16(central, self.timestamp.time);
        put_u16(central, self.timestamp.date);
        put_u32(central, crc);
        put_u32(central, compressed_size);
        put_u32(central, uncompressed_size);
        put_u16(central, name_length);
        put_u16(central, 0); // extra field length
        put_u16(central, 0); // file comment length: PyPI rejects per-file comments
        put_u16(central, 0); // disk number
        put_u16(central, 0); // internal attributes
        put_u32(central, (0o100_000 | (mode & 0o7777)) << 16); // S_IFREG | mode
        put_u32(central, local_header_offset);
        central.extend_from_slice(name.as_bytes());
        Ok(())
    }

    /// Writes the central directory and the end record (without comment), returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
        let entries = u16::try_from(self.names.len())
            .map_err(|_| invalid("more than 65535 zip entries need ZIP64 (not supported)"))?;
        let directory_offset = u32::try_from(self.offset)
            .map_err(|_| invalid("an archive over 4 GiB needs ZIP64 (not supported)"))?;
        let directory_size = self.central_directory.len() as u32;
        self.out.write_all(&self.central_directory)?;
        let mut end = Vec::with_capacity(22);
        put_u32(&mut end, END_OF_CENTRAL_DIRECTORY);
        put_u16(&mut end, 0); // this disk
        put_u16(&mut end, 0); // disk of the central directory
        put_u16(&mut end, entries);
        put_u16(&mut end, entries);
        put_u32(&mut end, directory_size);
        put_u32(&mut end, directory_offset);
        put_u16(&mut end, 0); // comment length
        self.out.write_all(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn put_u16(buffer: &mut Vec<u8>, value: u16) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(buffer: &mut Vec<u8>, value: u32) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_timestamps() {
        let check = |seconds: u64, expect: (u16, u16, u16, u16, u16, u16)| {
            let stamp = DosDateTime::from_unix_seconds(seconds);
            let got = (
                (stamp.date >> 9) + 1980,
                (stamp.date >> 5) & 0xf,
                stamp.date & 0x1f,
                stamp.time >> 11,
                (stamp.time >> 5) & 0x3f,
                (stamp.time & 0x1f) * 2,
            );
            assert_eq!(got, expect, "{seconds}");
        };
        // Before 1980 (including 0, the usual "unset" value) clamps to the earliest DOS time.
        check(0, (1980, 1, 1, 0, 0, 0));
        check(315_532_799, (1980, 1, 1, 0, 0, 0));
        check(315_532_800, (1980, 1, 1, 0, 0, 0));
        // 2024-02-29T13:37:59Z: a leap day; odd seconds round down.
        check(1_709_213_879, (2024, 2, 29, 13, 37, 58));
        check(1_735_689_599, (2024, 12, 31, 23, 59, 58));
        check(u64::MAX, (2107, 12, 31, 23, 59, 58));
    }

    #[test]
    fn refuses_what_pypi_rejects() {
        let stamp = DosDateTime::from_unix_seconds(0);
        let mut zip = ZipWriter::new(Vec::new(), stamp, 6);
        zip.add("a/b.txt", 0o644, b"x").unwrap();
        let twice = zip.add("a/b.txt", 0o644, b"y").unwrap_err();
        assert_eq!(twice.to_string(), "zip entry `a/b.txt` is added twice");
        for bad in ["", "/abs", "dir/", "tab\there", "é"] {
            assert!(zip.add(bad, 0o644, b"").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn layout_of_one_entry() {
        let stamp = DosDateTime::from_unix_seconds(0);
        let mut zip = ZipWriter::new(Vec::new(), stamp, 6);
        zip.add("bin/tool", 0o755, b"hello hello hello").unwrap();
        let bytes = zip.finish().unwrap();
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(u32_at(0), LOCAL_FILE_HEADER);
        assert_eq!(u16_at(6), 0, "no flags: no data descriptor");
        assert_eq!(u16_at(8), METHOD_DEFLATE);
        assert_eq!(u32_at(22), 17, "uncompressed size in the local header");
        let end = bytes.len() - 22;
        assert_eq!(u32_at(end), END_OF_CENTRAL_DIRECTORY);
        assert_eq!(u16_at(end + 20), 0, "no archive comment");
        let central = u32_at(end + 16) as usize;
        assert_eq!(u32_at(central), CENTRAL_DIRECTORY_HEADER);
        assert_eq!(u16_at(central + 4) >> 8, 3, "made by Unix");
        assert_eq!(u32_at(central + 38) >> 16, 0o100_755);
    }
}
