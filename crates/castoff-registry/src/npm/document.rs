//! The publish document (`PUT /<name>` body): the JSON npm's libnpmpublish sends, with the
//! tarball's base64 streamed into `_attachments` so the request never holds the file in
//! memory (let alone the 4/3-size base64 string inside a JSON string).

use std::fs::File;
use std::io::{Cursor, Read};

use base64::Engine as _;
use reqwest::Url;

use super::tarball::NpmTarball;
use crate::http::Payload;

/// Marks where the base64 data goes; split out of the serialized JSON.
const PLACEHOLDER: &str = "castoff-attachment-data-placeholder-5d1e2c";

/// The document as the JSON before the attachment data, the file, and the JSON after it.
pub(crate) struct PublishDocument {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    path: std::path::PathBuf,
    size: u64,
}

impl PublishDocument {
    pub(crate) fn new(tarball: &NpmTarball, registry: &Url, dist_tag: &str) -> PublishDocument {
        let name = &tarball.name;
        let version = &tarball.version;
        let attachment = format!("{name}-{version}.tgz");
        let mut manifest = tarball.package_json.clone();
        manifest.insert("_id".into(), format!("{name}@{version}").into());
        if let Some(readme) = &tarball.readme {
            manifest.insert("readme".into(), readme.clone().into());
        }
        if let Some(filename) = &tarball.readme_filename {
            manifest.insert("readmeFilename".into(), filename.clone().into());
        }
        manifest.insert(
            "dist".into(),
            serde_json::json!({
                "integrity": tarball.integrity,
                "shasum": tarball.shasum,
                // libnpmpublish's form; registries rewrite it to their canonical URL.
                "tarball": format!("{registry}{name}/-/{attachment}"),
            }),
        );
        let mut document = serde_json::json!({
            "_id": name,
            "name": name,
            "description": tarball.package_json.get("description").cloned().unwrap_or_default(),
            "dist-tags": { dist_tag: version },
            "versions": { version.as_str(): manifest },
            "_attachments": {
                attachment: {
                    "content_type": "application/octet-stream",
                    "data": PLACEHOLDER,
                    "length": tarball.size,
                }
            },
        });
        if name.starts_with('@') {
            // npmjs makes first publishes of scoped packages private (402) without it.
            document["access"] = "public".into();
        }
        let text = serde_json::to_string(&document).expect("JSON values serialize");
        let quoted = format!("\"{PLACEHOLDER}\"");
        let at = text
            .find(&quoted)
            .expect("the placeholder is in the document");
        PublishDocument {
            prefix: text.as_bytes()[..at + 1].to_vec(),
            suffix: text.as_bytes()[at + quoted.len() - 1..].to_vec(),
            path: tarball.path.clone(),
            size: tarball.size,
        }
    }

    /// Exact body length: base64 of n bytes is 4·⌈n/3⌉ characters.
    pub(crate) fn length(&self) -> u64 {
        self.prefix.len() as u64 + self.size.div_ceil(3) * 4 + self.suffix.len() as u64
    }

    /// A fresh reader over the whole body (one per attempt); the tarball's bytes are
    /// reported to `payload` as they are read for encoding.
    pub(crate) fn open(&self, payload: &Payload) -> std::io::Result<Box<dyn Read + Send>> {
        let file = payload.reader(0, File::open(&self.path)?.take(self.size));
        Ok(Box::new(
            Cursor::new(self.prefix.clone())
                .chain(Base64Reader::new(file))
                .chain(Cursor::new(self.suffix.clone())),
        ))
    }
}

/// Reads base64 (standard alphabet, padded) of the inner reader, in bounded memory.
#[derive(Debug)]
pub struct Base64Reader<R> {
    inner: R,
    pending: Vec<u8>,
    output: Vec<u8>,
    position: usize,
    done: bool,
}

impl<R: Read> Base64Reader<R> {
    pub fn new(inner: R) -> Base64Reader<R> {
        Base64Reader {
            inner,
            pending: Vec::new(),
            output: Vec::new(),
            position: 0,
            done: false,
        }
    }

    fn refill(&mut self) -> std::io::Result<()> {
        const BLOCK: usize = 48 * 1024; // a multiple of 3
        let mut eof = false;
        while self.pending.len() < BLOCK {
            let start = self.pending.len();
            self.pending.resize(BLOCK, 0);
            let read = self.inner.read(&mut self.pending[start..])?;
            self.pending.truncate(start + read);
            if read == 0 {
                eof = true;
                break;
            }
        }
        // Encode whole 3-byte groups only, except at the end (where padding belongs).
        let take = if eof {
            self.pending.len()
        } else {
            self.pending.len() / 3 * 3
        };
        self.output.clear();
        self.position = 0;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.pending[..take]);
        self.output.extend_from_slice(encoded.as_bytes());
        self.pending.drain(..take);
        self.done = eof;
        Ok(())
    }
}

impl<R: Read> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.output.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let count = buf.len().min(self.output.len() - self.position);
        buf[..count].copy_from_slice(&self.output[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 7 bytes per call, to exercise partial groups.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let count = buf.len().min(7).min(self.0.len());
            buf[..count].copy_from_slice(&self.0[..count]);
            self.0 = &self.0[count..];
            Ok(count)
        }
    }

    #[test]
    fn streamed_base64_equals_one_shot_base64() {
        for size in [0usize, 1, 2, 3, 4, 100, 49_151, 49_152, 49_153, 200_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let mut streamed = String::new();
            Base64Reader::new(Trickle(&data))
                .read_to_string(&mut streamed)
                .unwrap();
            assert_eq!(
                streamed,
                base64::engine::general_purpose::STANDARD.encode(&data),
                "size {size}"
            );
            assert_eq!(streamed.len() as u64, (size as u64).div_ceil(3) * 4);
        }
    }
}
