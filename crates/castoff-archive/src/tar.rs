//! Deterministic ustar archives and gzip streams: the bytes depend only on the entries the
//! caller appends (path, mode, mtime, contents), never on the machine, the user or the clock.
//!
//! The header layout is the one node-tar writes for `npm pack` (so an npm tarball built here is
//! byte-identical to npm's once decompressed): octal fields padded with `0`, ended by a space and
//! a NUL; uid, gid, uname and gname empty; device numbers written as zero; no PAX records; no
//! padding to a record size after the two end-of-archive blocks. OCI layers use the same writer
//! (uid/gid 0 is what an empty uid field means to every reader).
//!
//! Callers decide the order of entries (npm's packlist order, sorted paths for OCI layers): this
//! module writes them as given.

use std::io::{self, Read, Write};

use crate::deflate::{Deflated, GzipWriter, Splice};

/// Size of a tar block; headers and the padding after contents fill whole blocks.
const BLOCK: usize = 512;

/// What a tar entry is. Only what castoff writes: regular files and (for OCI layers) directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
}

impl EntryKind {
    fn type_flag(self) -> u8 {
        match self {
            EntryKind::File => b'0',
            EntryKind::Directory => b'5',
        }
    }
}

/// Why an entry could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error(
        "tar entry `{path}` has a path ustar cannot hold (a name of at most 100 bytes after a directory prefix of at most 155 bytes)"
    )]
    PathTooLong { path: String },
    #[error("tar entry `{path}` is {size} bytes, larger than ustar's 8 GiB limit")]
    TooLarge { path: String, size: u64 },
    #[error(
        "tar entry `{path}` was announced as {expected} bytes but {actual} bytes were read (did the file change while it was archived?)"
    )]
    SizeChanged {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("cannot write tar entry `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl TarError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            TarError::PathTooLong { .. } => {
                Some("shorten the path or the directory names".to_owned())
            }
            TarError::TooLarge { .. } => Some("ship the file outside the archive".to_owned()),
            TarError::SizeChanged { .. } => {
                Some("rebuild, making sure nothing writes to the file meanwhile".to_owned())
            }
            TarError::Io { .. } => Some("check free space and permissions".to_owned()),
        }
    }
}

/// How the uid and gid fields of a header are written. The user and group names are always
/// empty: an image's `/etc/passwd` is what names its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerFields {
    /// Left as NUL bytes, as node-tar's portable mode (`npm pack`) writes them. GNU tar, Go's
    /// archive/tar, bsdtar and npm read that as 0, but the Rust `tar` crate refuses it.
    Empty,
    /// Written as the octal number 0 (`000000 \0`), which every reader accepts: for OCI layers.
    Zero,
    /// Written as these octal numbers: an OCI layer entry a non-root user owns (its home).
    Numeric { uid: u32, gid: u32 },
}

/// One entry's header fields. Owner and group names are always empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader<'a> {
    /// `/`-separated relative path; a directory's trailing `/` is added when missing.
    pub path: &'a str,
    /// Permission bits (`0o644`, `0o755`); higher bits are dropped.
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub mtime: u64,
    pub size: u64,
    pub kind: EntryKind,
    pub owner: OwnerFields,
}

/// The 512-byte ustar header of one entry, exactly as node-tar encodes it.
pub fn encode_header(header: &EntryHeader<'_>) -> Result<[u8; BLOCK], TarError> {
    let path = match header.kind {
        EntryKind::Directory if !header.path.ends_with('/') => format!("{}/", header.path),
        _ => header.path.to_owned(),
    };
    let size = match header.kind {
        EntryKind::File => header.size,
        EntryKind::Directory => 0,
    };
    // 11 octal digits: the largest size a plain ustar field holds.
    if size > 0o77_777_777_777 {
        return Err(TarError::TooLarge { path, size });
    }
    let (prefix, name) =
        split_prefix(&path).ok_or_else(|| TarError::PathTooLong { path: path.clone() })?;

    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name.as_bytes());
    write_octal(&mut block[100..108], u64::from(header.mode & 0o7777));
    let ids = match header.owner {
        OwnerFields::Empty => None,
        OwnerFields::Zero => Some((0, 0)),
        OwnerFields::Numeric { uid, gid } => Some((uid, gid)),
    };
    if let Some((uid, gid)) = ids {
        write_octal(&mut block[108..116], u64::from(uid));
        write_octal(&mut block[116..124], u64::from(gid));
    }
    write_octal(&mut block[124..136], size);
    write_octal(&mut block[136..148], header.mtime);
    block[156] = header.kind.type_flag();
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    // uname (265..297) and gname (297..329) stay empty; device numbers are written as 0.
    write_octal(&mut block[329..337], 0);
    write_octal(&mut block[337..345], 0);
    block[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());

    // The checksum is computed with its own field read as eight spaces.
    let checksum: u64 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&byte| u64::from(byte))
        .sum::<u64>()
        + 8 * u64::from(b' ');
    write_octal(&mut block[148..156], checksum);
    Ok(block)
}

/// Splits a path into ustar's (prefix, name) the way node-tar does: the whole path as the name
/// when it is shorter than 100 bytes, otherwise at the rightmost `/` that makes the name fit in
/// 100 bytes and the prefix in 155 (node-tar moves segments from the prefix to the name).
fn split_prefix(path: &str) -> Option<(&str, &str)> {
    if path.len() < 100 {
        return Some(("", path));
    }
    // A directory's trailing slash stays with the name.
    let search_end = path.strip_suffix('/').map_or(path.len(), str::len);
    path[..search_end]
        .rmatch_indices('/')
        .map(|(index, _)| (&path[..index], &path[index + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100)
}

/// node-tar's number format: octal digits zero-padded to the field width minus two, then a
/// space and a NUL.
fn write_octal(field: &mut [u8], value: u64) {
    // node-tar's layout: zero-padded digits, then " \0"; a number that needs one more digit
    // drops the space (`digits\0`); one that still does not fit goes base-256 (GNU), with the
    // high bit of the first byte set.
    let digits = format!("{value:o}");
    if digits.len() <= field.len() - 2 {
        let width = field.len() - 2;
        field.copy_from_slice(format!("{digits:0>width$} \0").as_bytes());
    } else if digits.len() == field.len() - 1 {
        field.copy_from_slice(format!("{digits}\0").as_bytes());
    } else {
        field.fill(0);
        let bytes = value.to_be_bytes();
        let start = field.len() - bytes.len();
        field[start..].copy_from_slice(&bytes);
        field[0] |= 0x80;
    }
}

/// Writes a tar archive entry by entry, in the order given.
#[derive(Debug)]
pub struct TarWriter<W: Write> {
    out: W,
    owner: OwnerFields,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W, owner: OwnerFields) -> Self {
        TarWriter { out, owner }
    }

    /// Sets the owner of the entries appended from now on; returns the previous one.
    pub fn set_owner(&mut self, owner: OwnerFields) -> OwnerFields {
        std::mem::replace(&mut self.owner, owner)
    }

    /// Appends a regular file of `size` bytes read from `contents` (streamed, never loaded
    /// whole). Fails if `contents` yields a different number of bytes.
    pub fn append_file(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        contents: impl Read,
    ) -> Result<(), TarError> {
        self.file_header(path, mode, mtime, size)?;
        let io_error = |source| TarError::Io {
            path: path.to_owned(),
            source,
        };
        // Read one byte more than announced, so a file that grew is noticed.
        let copied = io::copy(&mut contents.take(size + 1), &mut self.out).map_err(io_error)?;
        if copied != size {
            return Err(TarError::SizeChanged {
                path: path.to_owned(),
                expected: size,
                actual: copied,
            });
        }
        self.pad(size).map_err(io_error)
    }

    /// Appends a regular file held in memory.
    pub fn append_bytes(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        contents: &[u8],
    ) -> Result<(), TarError> {
        self.append_file(path, mode, mtime, contents.len() as u64, contents)
    }

    /// Appends a directory entry (npm tarballs have none; OCI layers list their parents).
    pub fn append_directory(&mut self, path: &str, mode: u32, mtime: u64) -> Result<(), TarError> {
        self.append_directory_owned_by(path, mode, mtime, self.owner)
    }

    /// Appends a directory entry owned by `owner` rather than the writer's owner (a home
    /// directory its user must be able to write to).
    pub fn append_directory_owned_by(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        owner: OwnerFields,
    ) -> Result<(), TarError> {
        let header = encode_header(&EntryHeader {
            path,
            mode,
            mtime,
            size: 0,
            kind: EntryKind::Directory,
            owner,
        })?;
        self.out.write_all(&header).map_err(|source| TarError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the two zero blocks that end an archive and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&END_OF_ARCHIVE)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes the header of a regular file of `size` bytes.
    fn file_header(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        size: u64,
    ) -> Result<(), TarError> {
        let header = encode_header(&EntryHeader {
            path,
            mode,
            mtime,
            size,
            kind: EntryKind::File,
            owner: self.owner,
        })?;
        self.out.write_all(&header).map_err(|source| TarError::Io {
            path: path.to_owned(),
            source,
        })
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        self.out.write_all(padding(size))
    }
}

impl<W: Splice> TarWriter<W> {
    /// Appends a regular file whose contents were compressed once already: the header and the
    /// padding go through the compressor, the contents are spliced in as they are.
    pub fn append_deflated(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        contents: &Deflated,
    ) -> Result<(), TarError> {
        let size = contents.size();
        self.file_header(path, mode, mtime, size)?;
        let io_error = |source| TarError::Io {
            path: path.to_owned(),
            source,
        };
        self.out.splice(contents).map_err(io_error)?;
        self.pad(size).map_err(io_error)
    }
}

/// The zero bytes that follow `size` bytes of contents up to the next block.
pub fn padding(size: u64) -> &'static [u8] {
    const ZEROS: [u8; BLOCK] = [0; BLOCK];
    let remainder = (size % BLOCK as u64) as usize;
    if remainder == 0 {
        &[]
    } else {
        &ZEROS[..BLOCK - remainder]
    }
}

/// The two zero blocks that end every archive.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// A gzip stream whose header carries nothing about the build machine or time: no file name,
/// mtime 0, OS 255 ("unknown"), XFL as zlib sets it for `level`.
pub fn gzip_writer<W: Write>(out: W, level: u32) -> GzipWriter<W> {
    GzipWriter::new(out, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times after 2004 and sizes of 1 GiB or more need all 11 octal digits of a 12-byte
    /// field (no room for the space), and sizes of 8 GiB or more need base-256.
    #[test]
    fn large_numbers() {
        let check = |value: u64, expect: &[u8]| {
            let mut field = [0u8; 12];
            write_octal(&mut field, value);
            assert_eq!(&field, expect, "{value}");
            // What GNU tar (and the `tar` crate) read back.
            let mut header = ::tar::Header::new_old();
            header.as_mut_bytes()[124..136].copy_from_slice(&field);
            assert_eq!(header.size().unwrap(), value);
        };
        check(0o7777777777, b"7777777777 \0");
        check(1_700_000_000, b"14524770400\0");
        check(1 << 30, b"10000000000\0");
        check(1 << 33, &[0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    }

    fn archive(owner: OwnerFields, build: impl FnOnce(&mut TarWriter<Vec<u8>>)) -> Vec<u8> {
        let mut writer = TarWriter::new(Vec::new(), owner);
        build(&mut writer);
        writer.finish().unwrap()
    }

    /// The header of `package/LICENSE` (16 bytes, 0644, npm's mtime) as `npm pack` 11.19.1
    /// wrote it, field by field.
    #[test]
    fn header_matches_node_tar() {
        let header = encode_header(&EntryHeader {
            path: "package/LICENSE",
            mode: 0o644,
            mtime: 499_162_500,
            size: 16,
            kind: EntryKind::File,
            owner: OwnerFields::Empty,
        })
        .unwrap();
        assert_eq!(&header[..16], b"package/LICENSE\0");
        assert_eq!(&header[100..108], b"000644 \0");
        assert_eq!(&header[108..124], &[0u8; 16]);
        assert_eq!(&header[124..136], b"0000000020 \0");
        assert_eq!(&header[136..148], b"3560116604 \0");
        assert_eq!(&header[148..156], b"010255 \0");
        assert_eq!(header[156], b'0');
        assert_eq!(&header[257..265], b"ustar\x0000");
        assert_eq!(&header[329..345], b"000000 \x00000000 \x00");
        assert!(header[345..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn files_are_padded_and_archives_end_with_two_blocks() {
        let bytes = archive(OwnerFields::Empty, |tar| {
            tar.append_bytes("a", 0o644, 0, b"hello").unwrap();
            tar.append_bytes("empty", 0o755, 0, b"").unwrap();
        });
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024);
        assert_eq!(&bytes[512..517], b"hello");
        assert!(bytes[517..1024].iter().all(|&byte| byte == 0));
        assert!(bytes[1536..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn directories_get_a_trailing_slash_and_no_size() {
        let header = encode_header(&EntryHeader {
            path: "usr/local/bin",
            mode: 0o755,
            mtime: 1,
            size: 99,
            kind: EntryKind::Directory,
            owner: OwnerFields::Zero,
        })
        .unwrap();
        assert_eq!(&header[108..124], b"000000 \x00000000 \x00");
        assert_eq!(&header[..14], b"usr/local/bin/");
        assert_eq!(header[156], b'5');
        assert_eq!(&header[124..136], b"0000000000 \0");
    }

    #[test]
    fn long_paths_use_the_prefix_field() {
        let long = format!("{}/e/{}", "d".repeat(120), "f".repeat(90));
        let header = encode_header(&EntryHeader {
            path: &long,
            mode: 0o644,
            mtime: 0,
            size: 0,
            kind: EntryKind::File,
            owner: OwnerFields::Empty,
        })
        .unwrap();
        // The rightmost slash that fits wins, as in node-tar.
        assert_eq!(&header[..91], format!("{}\0", "f".repeat(90)).as_bytes());
        assert_eq!(
            &header[345..467],
            format!("{}/e", "d".repeat(120)).as_bytes()
        );

        let unsplittable = "x".repeat(101);
        let error = encode_header(&EntryHeader {
            path: &unsplittable,
            mode: 0o644,
            mtime: 0,
            size: 0,
            kind: EntryKind::File,
            owner: OwnerFields::Empty,
        })
        .unwrap_err();
        assert!(error.hint().is_some(), "{error}");
    }

    #[test]
    fn a_file_that_changed_size_is_refused() {
        let mut tar = TarWriter::new(Vec::new(), OwnerFields::Empty);
        let error = tar
            .append_file("grew", 0o644, 0, 2, &b"abc"[..])
            .unwrap_err();
        assert!(
            matches!(
                error,
                TarError::SizeChanged {
                    expected: 2,
                    actual: 3,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = tar
            .append_file("shrank", 0o644, 0, 4, &b"abc"[..])
            .unwrap_err();
        assert!(
            matches!(
                error,
                TarError::SizeChanged {
                    expected: 4,
                    actual: 3,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn readers_agree() {
        let bytes = archive(OwnerFields::Zero, |tar| {
            tar.append_directory("package", 0o755, 7).unwrap();
            tar.append_bytes("package/bin/tool", 0o755, 499_162_500, b"#!/bin/sh\n")
                .unwrap();
            let nonroot = OwnerFields::Numeric {
                uid: 65532,
                gid: 65533,
            };
            tar.append_directory_owned_by("home/nonroot", 0o755, 7, nonroot)
                .unwrap();
        });
        let mut reader = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u32, u64, u64, u64, u64)> = reader
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("package/".to_owned(), 0o755, 7, 0, 0, 0),
                ("package/bin/tool".to_owned(), 0o755, 499_162_500, 0, 0, 10),
                ("home/nonroot/".to_owned(), 0o755, 7, 65532, 65533, 0),
            ]
        );
    }

    #[test]
    fn gzip_header_is_fixed() {
        let mut gzip = gzip_writer(Vec::new(), 9);
        gzip.write_all(b"same bytes every time").unwrap();
        let bytes = gzip.finish().unwrap();
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "same bytes every time");
    }

    /// A spliced entry decompresses to exactly the tar the plain writer produces.
    #[test]
    fn spliced_entries_match_plain_ones() {
        let dir = std::env::temp_dir().join(format!("castoff-tar-splice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let contents: Vec<u8> = (0..300_001u32)
            .map(|i| (i % 251) as u8 ^ (i >> 11) as u8)
            .collect();
        let source = dir.join("binary");
        std::fs::write(&source, &contents).unwrap();
        let deflated = crate::deflate::deflate_file(
            &source,
            &dir.join("binary.deflate"),
            &crate::deflate::DeflateOptions::new(6),
            &[],
            &|_| {},
        )
        .unwrap();
        let plain = archive(OwnerFields::Zero, |tar| {
            tar.append_bytes("a", 0o644, 1, b"first").unwrap();
            tar.append_bytes("bin/tool", 0o755, 1, &contents).unwrap();
            tar.append_bytes("z", 0o644, 1, b"last").unwrap();
        });
        let mut tar = TarWriter::new(gzip_writer(Vec::new(), 6), OwnerFields::Zero);
        tar.append_bytes("a", 0o644, 1, b"first").unwrap();
        tar.append_deflated("bin/tool", 0o755, 1, &deflated)
            .unwrap();
        tar.append_bytes("z", 0o644, 1, b"last").unwrap();
        let gzip = tar.finish().unwrap().finish().unwrap();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, plain);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
