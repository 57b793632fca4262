//! A wheel as the uploader sees it: file name, digests (streamed), the python tag, and the
//! core metadata read from `*.dist-info/METADATA` with a minimal zip central-directory reader.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use blake2::Blake2b;
use blake2::digest::consts::U32;
use castoff_archive::digest::hex;
use sha2::{Digest, Sha256};

use crate::error::RegistryError;

/// A wheel file ready for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFile {
    pub path: PathBuf,
    /// `{dist}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
    pub filename: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// BLAKE2b with a 32-byte digest, lower-case hex (PyPI's `blake2_256_digest`).
    pub blake2_256: String,
    /// The python tag(s) of the file name (`py3`; `cp311.cp312` stays as written); `source`
    /// for an sdist (the upload form's `pyversion`).
    pub python_tag: String,
    /// The upload form's `filetype`: `bdist_wheel`, or `sdist` for a `.tar.gz`.
    pub filetype: &'static str,
    pub metadata: CoreMetadata,
}

/// `METADATA`: headers in file order (repeated ones repeated) and the body (the description).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreMetadata {
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

const METADATA_LIMIT: u64 = 16 * 1024 * 1024;

impl WheelFile {
    /// Reads the wheel: hashes it in one streaming pass and extracts METADATA.
    pub fn open(path: &Path) -> Result<WheelFile, RegistryError> {
        let fail = |message: String, hint: &str| RegistryError::artifact_file(path, message, hint);
        let filename = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| fail("not a file name".to_owned(), "give the path of a .whl file"))?
            .to_owned();
        if let Some(stem) = filename.strip_suffix(".tar.gz") {
            return Self::open_sdist(path, filename.clone(), stem.to_owned());
        }
        let stem = filename.strip_suffix(".whl").ok_or_else(|| {
            fail(
                "not a wheel file name (no `.whl`)".to_owned(),
                "castoff uploads wheels built by `castoff dist`",
            )
        })?;
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return Err(fail(
                format!(
                    "`{filename}` is not `{{dist}}-{{version}}-{{python}}-{{abi}}-{{platform}}.whl`"
                ),
                "rebuild the wheel with `castoff dist`",
            ));
        }
        let python_tag = parts[parts.len() - 3].to_owned();
        let mut file = File::open(path).map_err(|error| {
            fail(
                format!("cannot open: {error}"),
                "check that dist/ is complete",
            )
        })?;
        let (size, sha256, blake2_256) = hash_stream(&mut file).map_err(|error| {
            fail(
                format!("cannot read: {error}"),
                "check that dist/ is complete",
            )
        })?;
        let dist_info = format!("{}-{}.dist-info/METADATA", parts[0], parts[1]);
        let text = read_zip_entry(&mut file, |name| {
            name == dist_info
                || (name.ends_with(".dist-info/METADATA") && name.matches('/').count() == 1)
        })
        .map_err(|message| {
            fail(
                message,
                "the wheel is damaged: rebuild it with `castoff dist`",
            )
        })?;
        Ok(WheelFile {
            path: path.to_owned(),
            filename,
            size,
            sha256,
            blake2_256,
            python_tag,
            filetype: "bdist_wheel",
            metadata: CoreMetadata::parse(&text),
        })
    }

    /// A source distribution (`{name}-{version}.tar.gz`, PEP 625): hashed in one pass, and
    /// `{name}-{version}/PKG-INFO` read from the tar stream.
    fn open_sdist(path: &Path, filename: String, stem: String) -> Result<WheelFile, RegistryError> {
        let fail = |message: String, hint: &str| RegistryError::artifact_file(path, message, hint);
        let open = || {
            File::open(path).map_err(|error| {
                fail(
                    format!("cannot open: {error}"),
                    "check that dist/ is complete",
                )
            })
        };
        let (size, sha256, blake2_256) = hash_stream(&mut open()?).map_err(|error| {
            fail(
                format!("cannot read: {error}"),
                "check that dist/ is complete",
            )
        })?;
        let wanted = format!("{stem}/PKG-INFO");
        let text = read_tar_gz_entry(open()?, &wanted).map_err(|message| {
            fail(
                message,
                "the sdist is damaged: rebuild it with `castoff dist`",
            )
        })?;
        Ok(WheelFile {
            path: path.to_owned(),
            filename,
            size,
            sha256,
            blake2_256,
            python_tag: "source".to_owned(),
            filetype: "sdist",
            metadata: CoreMetadata::parse(&text),
        })
    }

    /// Project name from METADATA.
    pub fn name(&self) -> &str {
        self.metadata.get("Name").unwrap_or("")
    }

    /// Version from METADATA.
    pub fn version(&self) -> &str {
        self.metadata.get("Version").unwrap_or("")
    }
}

/// (size, sha256 hex, blake2b-256 hex) of a stream.
pub(crate) fn hash_stream(reader: &mut impl Read) -> std::io::Result<(u64, String, String)> {
    let mut sha = Sha256::new();
    let mut blake = Blake2b::<U32>::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        sha.update(&buffer[..read]);
        blake.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex(&sha.finalize()), hex(&blake.finalize())))
}

/// The text of the ustar entry `wanted` in a gzip-compressed tar stream (castoff's sdists:
/// plain ustar headers, the name split into prefix and name).
fn read_tar_gz_entry(file: File, wanted: &str) -> Result<String, String> {
    let mut stream = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut header = [0u8; 512];
    let octal = |field: &[u8]| -> Result<u64, String> {
        let text: String = field
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| char::from(*b))
            .collect();
        let text = text.trim();
        if text.is_empty() {
            return Ok(0);
        }
        u64::from_str_radix(text, 8).map_err(|_| "damaged tar header".to_owned())
    };
    let field = |bytes: &[u8]| -> String {
        String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
    };
    loop {
        stream
            .read_exact(&mut header)
            .map_err(|error| format!("cannot read the tar stream: {error}"))?;
        if header.iter().all(|b| *b == 0) {
            return Err(format!("no `{wanted}` in the sdist"));
        }
        let name = field(&header[..100]);
        let prefix = field(&header[345..500]);
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = octal(&header[124..136])?;
        if path == wanted {
            if size > METADATA_LIMIT {
                return Err(format!("{wanted} is larger than {METADATA_LIMIT} bytes"));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut stream)
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|error| format!("cannot read {wanted}: {error}"))?;
            return String::from_utf8(bytes).map_err(|_| format!("{wanted} is not UTF-8"));
        }
        let padded = size.div_ceil(512) * 512;
        std::io::copy(&mut (&mut stream).take(padded), &mut std::io::sink())
            .map_err(|error| format!("cannot read the tar stream: {error}"))?;
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, String> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated zip record".to_owned())
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| "truncated zip record".to_owned())
}

/// The text of the first zip entry whose name `wanted` accepts: end-of-central-directory →
/// central directory → local header → stored or deflated data. No ZIP64: wheels over 4 GiB
/// are far beyond any index's limit.
fn read_zip_entry<R: Read + Seek>(
    file: &mut R,
    wanted: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let io = |error: std::io::Error| format!("cannot read the zip: {error}");
    let length = file.seek(SeekFrom::End(0)).map_err(io)?;
    let tail_length = length.min(22 + 65_535);
    file.seek(SeekFrom::Start(length - tail_length))
        .map_err(io)?;
    let mut tail = vec![0u8; tail_length as usize];
    file.read_exact(&mut tail).map_err(io)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&at| tail[at..at + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("not a zip archive (no end-of-central-directory record)")?;
    let entries = u16_at(&tail, eocd + 10)?;
    let directory_size = u32_at(&tail, eocd + 12)?;
    let directory_offset = u32_at(&tail, eocd + 16)?;
    if directory_offset == u32::MAX
        || u64::from(directory_offset) + u64::from(directory_size) > length
    {
        return Err("the central directory lies outside the file (ZIP64 or damaged)".to_owned());
    }
    file.seek(SeekFrom::Start(u64::from(directory_offset)))
        .map_err(io)?;
    let mut directory = vec![0u8; directory_size as usize];
    file.read_exact(&mut directory).map_err(io)?;
    let mut at = 0usize;
    for _ in 0..entries {
        if u32_at(&directory, at)? != 0x0201_4b50 {
            return Err("damaged central directory".to_owned());
        }
        let method = u16_at(&directory, at + 10)?;
        let compressed = u32_at(&directory, at + 20)?;
        let uncompressed = u32_at(&directory, at + 24)?;
        let name_length = usize::from(u16_at(&directory, at + 28)?);
        let extra_length = usize::from(u16_at(&directory, at + 30)?);
        let comment_length = usize::from(u16_at(&directory, at + 32)?);
        let local_offset = u32_at(&directory, at + 42)?;
        let name = directory
            .get(at + 46..at + 46 + name_length)
            .ok_or("truncated central directory")?;
        let name = String::from_utf8_lossy(name).into_owned();
        at += 46 + name_length + extra_length + comment_length;
        if !wanted(&name) {
            continue;
        }
        if u64::from(uncompressed) > METADATA_LIMIT {
            return Err(format!("{name} is larger than {METADATA_LIMIT} bytes"));
        }
        file.seek(SeekFrom::Start(u64::from(local_offset)))
            .map_err(io)?;
        let mut local = [0u8; 30];
        file.read_exact(&mut local).map_err(io)?;
        if u32_at(&local, 0)? != 0x0403_4b50 {
            return Err(format!("damaged local header of {name}"));
        }
        let skip = u64::from(u16_at(&local, 26)?) + u64::from(u16_at(&local, 28)?);
        file.seek(SeekFrom::Current(skip as i64)).map_err(io)?;
        let data = (&mut *file).take(u64::from(compressed));
        let mut bytes = Vec::with_capacity(uncompressed as usize);
        match method {
            0 => data.take(METADATA_LIMIT).read_to_end(&mut bytes),
            8 => flate2::read::DeflateDecoder::new(data)
                .take(METADATA_LIMIT)
                .read_to_end(&mut bytes),
            other => return Err(format!("{name} uses zip compression method {other}; only stored and deflated are allowed")),
        }
        .map_err(|error| format!("cannot decompress {name}: {error}"))?;
        return String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8"));
    }
    Err("no `*.dist-info/METADATA` in the wheel".to_owned())
}

impl CoreMetadata {
    /// Parses RFC 822-style headers (continuation lines start with whitespace), a blank line,
    /// and the body.
    pub fn parse(text: &str) -> CoreMetadata {
        let text = text.replace("\r\n", "\n");
        let (head, body) = match text.split_once("\n\n") {
            Some((head, body)) => (head, Some(body)),
            None => (text.as_str(), None),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim_start());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let body = body
            .map(str::to_owned)
            .filter(|body| !body.trim().is_empty());
        CoreMetadata { headers, body }
    }

    /// The first value of a header (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header as an upload form field, in file order, plus `description` from the body.
    /// Names are lower-cased with `-` → `_`; multiple-use fields take warehouse's plural names
    /// (`classifiers`, `project_urls`…), the rest keep theirs (`license_file`, `platform`).
    /// PyPI stores the form, not the METADATA file, so nothing may be dropped here.
    pub fn form_fields(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let field = name.to_ascii_lowercase().replace('-', "_");
                let field = match field.as_str() {
                    "classifier" => "classifiers".to_owned(),
                    "project_url" => "project_urls".to_owned(),
                    _ => field,
                };
                (field, value.clone())
            })
            .collect();
        if let Some(body) = &self.body {
            fields.retain(|(name, _)| name != "description");
            fields.push(("description".to_owned(), body.clone()));
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "Metadata-Version: 2.4\nName: my-tool\nVersion: 1.2.0a1\nClassifier: Environment :: Console\nClassifier: Programming Language :: Rust\nRequires-Dist: other-tool>=1\nSummary: A demo CLI\nKeywords: cli,demo\nAuthor: Jane Doe\nAuthor-email: Jane Doe <jane@example.com>\nLicense-Expression: MIT OR Apache-2.0\nLicense-File: LICENSE-MIT\nLicense-File: LICENSE-APACHE\nRequires-Python: >=3.8\nDescription-Content-Type: text/markdown; charset=UTF-8; variant=GFM\nProject-URL: Repository, https://github.com/example/my-tool\nProject-URL: Documentation, https://docs.rs/my-tool\n\n# my-tool\n\nDoes things.\n";

    #[test]
    fn every_metadata_field_becomes_a_form_field() {
        let fields = CoreMetadata::parse(METADATA).form_fields();
        let text: String = fields
            .iter()
            .map(|(name, value)| format!("{name} = {value:?}\n"))
            .collect();
        expect_test::expect![[r##"
            metadata_version = "2.4"
            name = "my-tool"
            version = "1.2.0a1"
            classifiers = "Environment :: Console"
            classifiers = "Programming Language :: Rust"
            requires_dist = "other-tool>=1"
            summary = "A demo CLI"
            keywords = "cli,demo"
            author = "Jane Doe"
            author_email = "Jane Doe <jane@example.com>"
            license_expression = "MIT OR Apache-2.0"
            license_file = "LICENSE-MIT"
            license_file = "LICENSE-APACHE"
            requires_python = ">=3.8"
            description_content_type = "text/markdown; charset=UTF-8; variant=GFM"
            project_urls = "Repository, https://github.com/example/my-tool"
            project_urls = "Documentation, https://docs.rs/my-tool"
            description = "# my-tool\n\nDoes things.\n"
        "##]]
        .assert_eq(&text);
    }

    #[test]
    fn continuation_lines_and_crlf() {
        let metadata = CoreMetadata::parse(
            "Name: a\r\nDescription: line one\r\n        |line two\r\nVersion: 1\r\n",
        );
        assert_eq!(metadata.get("description"), Some("line one\n|line two"));
        assert_eq!(metadata.get("VERSION"), Some("1"));
        assert_eq!(metadata.body, None);
    }

    #[test]
    fn reads_stored_and_deflated_entries() {
        use std::io::{Cursor, Write};
        // A two-entry zip written by hand: one stored, one deflated.
        let entries: Vec<(&str, &[u8], bool)> = vec![
            ("a/x.txt", b"hello", false),
            (
                "a-1.dist-info/METADATA",
                b"Name: a\nVersion: 1\n\nbody\n",
                true,
            ),
        ];
        let mut zip = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in &entries {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let stored = if *deflate {
                let mut encoder =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            } else {
                data.to_vec()
            };
            let offset = zip.len() as u32;
            let method: u16 = if *deflate { 8 } else { 0 };
            let common = |out: &mut Vec<u8>| {
                out.extend_from_slice(&20u16.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
                out.extend_from_slice(&method.to_le_bytes());
                out.extend_from_slice(&[0, 0, 0x21, 0]);
                out.extend_from_slice(&crc.sum().to_le_bytes());
                out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
            };
            zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            common(&mut zip);
            zip.extend_from_slice(name.as_bytes());
            zip.extend_from_slice(&stored);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            common(&mut central);
            central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let directory_offset = zip.len() as u32;
        zip.extend_from_slice(&central);
        zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        zip.extend_from_slice(&[0; 4]);
        zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zip.extend_from_slice(&(central.len() as u32).to_le_bytes());
        zip.extend_from_slice(&directory_offset.to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        let mut cursor = Cursor::new(zip);
        assert_eq!(
            read_zip_entry(&mut cursor, |n| n.ends_with("METADATA")).unwrap(),
            "Name: a\nVersion: 1\n\nbody\n"
        );
        assert_eq!(
            read_zip_entry(&mut cursor, |n| n == "a/x.txt").unwrap(),
            "hello"
        );
        assert!(read_zip_entry(&mut cursor, |n| n == "nope").is_err());
        assert!(read_zip_entry(&mut Cursor::new(b"not a zip".to_vec()), |_| true).is_err());
    }
}
