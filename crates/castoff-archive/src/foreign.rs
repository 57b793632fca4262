//! Reading files someone else wrote (partial dists from other runners, image layouts, a base
//! image cache): only regular files, never through a symbolic link, FIFO or device, and never
//! more bytes than the reader expects. A FIFO would block the read for ever, `/dev/zero` would
//! never end, and a symbolic link could point anywhere on the machine.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` when it is a regular file of at most `max_bytes`; returns it with its size.
/// The file's identity is checked again after opening, so a file swapped for something else
/// between the check and the open is refused too.
pub fn open_regular(path: &Path, max_bytes: u64) -> io::Result<(File, u64)> {
    let before = fs::symlink_metadata(path)?;
    check_kind(path, &before)?;
    let file = File::open(path)?;
    let opened = file.metadata()?;
    check_kind(path, &opened)?;
    if !same_file(&before, &opened) {
        return Err(io::Error::other(format!(
            "{} changed while castoff opened it",
            path.display()
        )));
    }
    if opened.len() > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is larger ({} bytes) than expected ({max_bytes} bytes)",
                path.display(),
                opened.len()
            ),
        ));
    }
    Ok((file, opened.len()))
}

/// The whole content of a regular file of at most `max_bytes` ([`open_regular`]); a file that
/// grows while it is read is cut off at `max_bytes + 1` and refused.
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, size) = open_regular(path, max_bytes)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} grew past {max_bytes} bytes while it was read",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

fn check_kind(path: &Path, metadata: &fs::Metadata) -> io::Result<()> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        special_kind(&kind)
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}, not a regular file; castoff reads only regular files here",
            path.display()
        ),
    ))
}

#[cfg(unix)]
fn special_kind(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_kind: &fs::FileType) -> &'static str {
    "not a regular file"
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_the_expected_size() {
        let dir = std::env::temp_dir().join(format!("castoff-foreign-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        let error = read_regular(&file, 4).unwrap_err().to_string();
        assert!(
            error.ends_with("is larger (5 bytes) than expected (4 bytes)"),
            "{error}"
        );
        #[cfg(unix)]
        {
            let link = dir.join("link");
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            let error = read_regular(&link, 4).unwrap_err().to_string();
            assert!(error.contains("is a symbolic link"), "{error}");
            let error = read_regular(Path::new("/dev/zero"), 4)
                .unwrap_err()
                .to_string();
            assert!(error.contains("is a device"), "{error}");
        }
        let error = read_regular(&dir, 4).unwrap_err().to_string();
        assert!(error.contains("is a directory"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
