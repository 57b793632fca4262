//! Compress a binary once, on every core, and splice that one deflate stream into every
//! artifact that carries it: the wheel's zip entry, the npm tarball and the OCI layer (both
//! gzip), the per-target archives.
//!
//! [`deflate_file`] cuts the input into [`BLOCK_SIZE`] blocks and compresses each on its own
//! thread with libdeflate, which is faster than zlib at a better ratio (ARCHITECTURE.md has the
//! measurements). libdeflate only compresses whole buffers into complete streams, so each
//! block's stream is then reopened ([`reopen`]): its final flag cleared and an empty stored
//! block appended, which leaves it byte-aligned like a sync flush, so the blocks simply
//! concatenate. Blocks are independent (no dictionary): at 1 MiB, what that costs in ratio is
//! under 0.1 %. Each block's output depends only on its input, never on which thread compressed
//! it: the stream is byte-identical with 1 or N threads. The CRC-32 is combined from the blocks' CRCs and the
//! SHA-256 of the input (plus any requested "prefix + input" digests, see
//! [`DeflateCache::want_prefix`]) is computed while the blocks go by: nothing is read twice.
//! Memory is bounded by the blocks in flight (about 5 MiB per thread), whatever the input's
//! size.
//!
//! The stream ends byte-aligned with no final block. A zip entry appends
//! [`FINAL_EMPTY_BLOCK`]; [`GzipWriter::splice`] sync-flushes what it compressed so far,
//! copies the stream and restarts its own compressor with an empty window, so the gzip member
//! stays one valid deflate stream.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

mod reopen;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};

/// Input bytes per independently compressed block. Larger blocks compress slightly better
/// (no window carried between blocks); 1 MiB keeps that loss under 0.1 % and still splits a
/// 40 MiB binary into enough blocks for every core.
pub const BLOCK_SIZE: usize = 1024 * 1024;
/// A final, empty, fixed-Huffman block: ends a stream that stopped byte-aligned.
pub const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];
/// The compression level when none is configured: zlib's default.
pub const DEFAULT_LEVEL: u32 = 6;

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateOptions {
    /// 0 (stored) to 9 (smallest).
    pub level: u32,
    /// Compression threads; the output does not depend on it.
    pub threads: usize,
}

impl DeflateOptions {
    /// `level` on every available core.
    pub fn new(level: u32) -> DeflateOptions {
        DeflateOptions {
            level: level.min(9),
            threads: thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

impl Default for DeflateOptions {
    fn default() -> Self {
        DeflateOptions::new(DEFAULT_LEVEL)
    }
}

/// A file compressed once: a raw deflate stream (no header, no final block) in a scratch file,
/// with what every container needs to hold it.
#[derive(Debug)]
pub struct Deflated {
    source: PathBuf,
    compressed: PathBuf,
    size: u64,
    compressed_size: u64,
    crc: Crc,
    sha256: [u8; 32],
    taps: Vec<(Vec<u8>, Sha256)>,
}

impl Deflated {
    /// The file that was compressed.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Bytes of input.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of the deflate stream (without [`FINAL_EMPTY_BLOCK`]).
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }

    /// CRC-32 of the input (zip and gzip).
    pub fn crc32(&self) -> u32 {
        self.crc.sum()
    }

    /// SHA-256 of the input.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// A SHA-256 state that has hashed `prefix` and then the input, if `prefix` was requested
    /// with [`DeflateCache::want_prefix`] before the file was compressed.
    pub fn hasher_after(&self, prefix: &[u8]) -> Option<Sha256> {
        self.taps
            .iter()
            .find(|(tap, _)| tap == prefix)
            .map(|(_, state)| state.clone())
    }

    /// Copies the deflate stream to `out`; fails if the scratch file is not what was written.
    pub fn copy_compressed_to(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        let file = File::open(&self.compressed)?;
        let copied = io::copy(&mut BufReader::with_capacity(1 << 16, file), out)?;
        if copied != self.compressed_size {
            return Err(io::Error::other(format!(
                "the compressed copy of {} at {} is {copied} bytes, expected {}",
                self.source.display(),
                self.compressed.display(),
                self.compressed_size
            )));
        }
        Ok(())
    }
}

/// What [`deflate_stream`] computed.
#[derive(Debug)]
pub struct StreamSummary {
    pub size: u64,
    pub compressed_size: u64,
    pub crc: Crc,
    pub sha256: [u8; 32],
    /// One state per requested prefix, in the order given.
    pub taps: Vec<Sha256>,
}

/// Compresses `source` into `compressed` (created or truncated). `progress` is called with
/// the number of input bytes each time a block is written.
pub fn deflate_file(
    source: &Path,
    compressed: &Path,
    options: &DeflateOptions,
    prefixes: &[Vec<u8>],
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Deflated> {
    let input = File::open(source)?;
    let mut output = BufWriter::with_capacity(1 << 16, File::create(compressed)?);
    let summary = deflate_stream(input, &mut output, options, prefixes, progress)?;
    output.into_inner().map_err(|error| error.into_error())?;
    Ok(Deflated {
        source: source.to_owned(),
        compressed: compressed.to_owned(),
        size: summary.size,
        compressed_size: summary.compressed_size,
        crc: summary.crc,
        sha256: summary.sha256,
        taps: prefixes.iter().cloned().zip(summary.taps).collect(),
    })
}

struct Job {
    index: u64,
    data: Arc<Vec<u8>>,
}

struct Done {
    index: u64,
    output: Vec<u8>,
    crc: Crc,
    len: u64,
}

/// The parallel block compressor behind [`deflate_file`], from any reader to any writer.
pub fn deflate_stream<R: Read + Send>(
    mut reader: R,
    writer: &mut dyn Write,
    options: &DeflateOptions,
    prefixes: &[Vec<u8>],
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<StreamSummary> {
    let threads = options.threads.max(1);
    // Blocks read but not yet written: three per thread keep every thread busy while the
    // blocks are written in order (two left them waiting: 15 % slower on 2 cores); about
    // 5 MiB per thread (the blocks, their compressed copies, the thread's scratch buffer).
    let in_flight = threads * 3;
    let level = libdeflater::CompressionLvl::new(options.level.min(9) as i32)
        .map_err(|error| io::Error::other(format!("{error:?}")))?;
    thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (result_tx, result_rx) = mpsc::channel::<io::Result<Done>>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let result_tx = result_tx.clone();
            scope.spawn(move || {
                // libdeflate keeps no state between calls: one compressor per thread.
                let mut compressor = libdeflater::Compressor::new(level);
                let mut scratch = Vec::new();
                loop {
                    // The lock is held only while waiting for a job, never while compressing.
                    let job = job_rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|rx| rx.recv().map_err(|_| ()));
                    let Ok(job) = job else { break };
                    if result_tx
                        .send(compress_block(&mut compressor, &mut scratch, job))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(result_tx);

        let (hash_tx, hash_rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(in_flight);
        let hasher = scope.spawn(move || {
            let mut plain = Sha256::new();
            let mut taps: Vec<Sha256> = prefixes.iter().map(Sha256::new_with_prefix).collect();
            for block in hash_rx {
                plain.update(&block[..]);
                for tap in &mut taps {
                    tap.update(&block[..]);
                }
            }
            (plain, taps)
        });

        // A permit per block between reading it and writing its compressed bytes: bounds memory.
        let (permit_tx, permit_rx) = mpsc::sync_channel::<()>(in_flight);
        let reading = scope.spawn(move || -> io::Result<u64> {
            let mut total = 0u64;
            for index in 0.. {
                let block = read_block(&mut reader)?;
                if block.is_empty() {
                    break;
                }
                let full = block.len() == BLOCK_SIZE;
                total += block.len() as u64;
                let block = Arc::new(block);
                // A closed channel means the writer stopped on an error it will report.
                if permit_tx.send(()).is_err()
                    || hash_tx.send(Arc::clone(&block)).is_err()
                    || job_tx
                        .send(Job {
                            index,
                            data: Arc::clone(&block),
                        })
                        .is_err()
                {
                    break;
                }
                if !full {
                    break;
                }
            }
            Ok(total)
        });

        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut crc = Crc::new();
        let mut compressed_size = 0u64;
        let mut failure = None;
        'results: for result in &result_rx {
            let done = match result {
                Ok(done) => done,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            pending.insert(done.index, done);
            while let Some(done) = pending.remove(&next) {
                if let Err(error) = writer.write_all(&done.output) {
                    failure = Some(error);
                    break 'results;
                }
                compressed_size += done.output.len() as u64;
                crc.combine(&done.crc);
                progress(done.len);
                next += 1;
                let _ = permit_rx.recv();
            }
        }
        // Unblocks the reader and the workers if the loop stopped early.
        drop(permit_rx);
        drop(result_rx);
        let read = reading.join().expect("the reading thread does not panic");
        let (plain, taps) = hasher.join().expect("the hashing thread does not panic");
        if let Some(error) = failure {
            return Err(error);
        }
        let size = read?;
        debug_assert!(pending.is_empty());
        Ok(StreamSummary {
            size,
            compressed_size,
            crc,
            sha256: plain.finalize().into(),
            taps,
        })
    })
}

/// Up to [`BLOCK_SIZE`] bytes; shorter only at the end of the input.
fn read_block(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    reader.take(BLOCK_SIZE as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// One block, as a complete stream, then reopened so the next block can follow it. `scratch`
/// is the thread's buffer for the worst case; the block keeps only what it needs.
fn compress_block(
    compressor: &mut libdeflater::Compressor,
    scratch: &mut Vec<u8>,
    job: Job,
) -> io::Result<Done> {
    let bound = compressor.deflate_compress_bound(job.data.len());
    scratch.resize(bound, 0);
    let written = compressor
        .deflate_compress(&job.data, scratch)
        .map_err(|error| io::Error::other(format!("libdeflate: {error:?}")))?;
    // Room for what reopening appends (at most 5 bytes).
    let mut output = Vec::with_capacity(written + 5);
    output.extend_from_slice(&scratch[..written]);
    reopen::reopen(&mut output)?;
    let mut crc = Crc::new();
    crc.update(&job.data);
    Ok(Done {
        index: job.index,
        output,
        crc,
        len: job.data.len() as u64,
    })
}

/// zlib-rs's compressor state for small files: the headers around a spliced binary, a
/// wheel's metadata, a tarball's `package.json`. It is 371 KiB, and a `dist` needs one per
/// zip entry and gzip member: thousands for a release of many binaries. Allocated and freed
/// that often on the artifact threads, between the small allocations that outlive them, they
/// left glibc's arenas growing by holes (peak RSS 100 to 190 MiB for 608 binaries, with
/// 12 MiB in use). Ended states are kept instead and reset, so a `dist` holds as many as it
/// used at once: a reset state compresses as a new one (`deflateReset`), and no output
/// changes. Only a state whose stream ended goes back: zlib-rs 0.6.8, reset in the middle of
/// a level-1 stream, writes a corrupt stream next (its `reset` leaves a block marked open).
pub(crate) struct PooledCompress {
    level: u32,
    compress: Option<Compress>,
    ended: bool,
    pool: &'static Pool,
}

/// Ended states by level. No limit is needed: a state is only ever given back after it was
/// taken, so the pool never holds more than were in use at once.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    states: Mutex<Vec<(u32, Compress)>>,
}

static POOL: Pool = Pool {
    states: Mutex::new(Vec::new()),
};

impl Pool {
    fn states(&self) -> std::sync::MutexGuard<'_, Vec<(u32, Compress)>> {
        // A panic while the lock was held cannot leave a half-changed list.
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reset raw-deflate state at `level` (0-9), kept or new.
    pub(crate) fn take(&'static self, level: u32) -> PooledCompress {
        let kept = {
            let mut states = self.states();
            let index = states.iter().rposition(|(kept, _)| *kept == level);
            index.map(|index| states.swap_remove(index).1)
        };
        PooledCompress {
            level,
            compress: Some(kept.unwrap_or_else(|| Compress::new(Compression::new(level), false))),
            ended: false,
            pool: self,
        }
    }
}

impl PooledCompress {
    /// A state from the process's pool.
    pub(crate) fn take(level: u32) -> PooledCompress {
        POOL.take(level)
    }

    /// Ends the stream (`Finish`), appending what is left to `output`; the state may then be
    /// kept for another stream.
    pub(crate) fn finish_into(&mut self, output: &mut Vec<u8>) -> io::Result<()> {
        deflate_into(self, &[], FlushCompress::Finish, output)?;
        self.ended = true;
        Ok(())
    }
}

impl Deref for PooledCompress {
    type Target = Compress;
    fn deref(&self) -> &Compress {
        self.compress.as_ref().expect("taken only on drop")
    }
}

impl DerefMut for PooledCompress {
    fn deref_mut(&mut self) -> &mut Compress {
        self.compress.as_mut().expect("taken only on drop")
    }
}

impl Drop for PooledCompress {
    fn drop(&mut self) {
        let Some(mut compress) = self.compress.take() else {
            return;
        };
        if !self.ended {
            return;
        }
        compress.reset();
        self.pool.states().push((self.level, compress));
    }
}

impl std::fmt::Debug for PooledCompress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledCompress")
            .field("level", &self.level)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Compresses all of `data` into one complete raw deflate stream at `level` (0-9), with the
/// same calls, and so the same bytes, as flate2's `DeflateEncoder`.
pub(crate) fn deflate_whole(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut compress = PooledCompress::take(level);
    let mut out = Vec::new();
    // The input, then the end, in two calls as flate2's encoder makes them: at level 1 zlib-rs
    // ends a stream differently when the end comes with the input.
    deflate_into(&mut compress, data, FlushCompress::None, &mut out)?;
    compress.finish_into(&mut out)?;
    Ok(out)
}

/// Output room per call to the compressor. The room decides where level 0 ends its stored
/// blocks, so it is fixed (not whatever a `Vec` has spare) and is flate2's own, 32 KiB.
const CHUNK: usize = 32 * 1024;

/// Feeds all of `input` to `compress` and appends what it emits to `output`; with `Sync` or
/// `Finish`, until the flush is complete.
fn deflate_into(
    compress: &mut Compress,
    mut input: &[u8],
    flush: FlushCompress,
    output: &mut Vec<u8>,
) -> io::Result<()> {
    let mut chunk = [0u8; CHUNK];
    loop {
        let (before_in, before_out) = (compress.total_in(), compress.total_out());
        let status = compress
            .compress(input, &mut chunk, flush)
            .map_err(io::Error::other)?;
        input = &input[(compress.total_in() - before_in) as usize..];
        let produced = (compress.total_out() - before_out) as usize;
        output.extend_from_slice(&chunk[..produced]);
        let room_left = produced < CHUNK;
        match flush {
            FlushCompress::Finish if status == Status::StreamEnd => return Ok(()),
            FlushCompress::Finish => {}
            FlushCompress::None if input.is_empty() => return Ok(()),
            _ if input.is_empty() && room_left => return Ok(()),
            _ => {}
        }
    }
}

/// A deterministic gzip writer (no file name, mtime 0, OS 255 "unknown") that can also splice
/// a [`Deflated`] stream into its member without decompressing it.
#[derive(Debug)]
pub struct GzipWriter<W: Write> {
    out: W,
    level: u32,
    compress: PooledCompress,
    buffer: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(out: W, level: u32) -> GzipWriter<W> {
        let level = level.min(9);
        GzipWriter {
            out,
            level,
            compress: PooledCompress::take(level),
            buffer: Vec::with_capacity(1 << 16),
            crc: Crc::new(),
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // XFL as zlib sets it: 2 for the slowest level, 4 for the fastest.
            let extra_flags = match self.level {
                9 => 2,
                0 | 1 => 4,
                _ => 0,
            };
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    /// Appends the input of `deflated` to the member, copying its compressed bytes.
    pub fn splice(&mut self, deflated: &Deflated) -> io::Result<()> {
        self.header()?;
        deflate_into(
            &mut self.compress,
            &[],
            FlushCompress::Sync,
            &mut self.buffer,
        )?;
        self.drain()?;
        deflated.copy_compressed_to(&mut self.out)?;
        self.crc.combine(&deflated.crc);
        // The next bytes must not refer back into a window the decoder does not share.
        self.compress.reset();
        Ok(())
    }

    /// Ends the member (final block, CRC-32, size) and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.compress.finish_into(&mut self.buffer)?;
        self.drain()?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.header()?;
        deflate_into(
            &mut self.compress,
            buf,
            FlushCompress::None,
            &mut self.buffer,
        )?;
        self.crc.update(buf);
        if self.buffer.len() >= 1 << 16 {
            self.drain()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.out.flush()
    }
}

/// Writers a [`Deflated`] stream can be spliced into.
pub trait Splice: Write {
    fn splice(&mut self, deflated: &Deflated) -> io::Result<()>;
}

impl<W: Write> Splice for GzipWriter<W> {
    fn splice(&mut self, deflated: &Deflated) -> io::Result<()> {
        GzipWriter::splice(self, deflated)
    }
}

/// Every binary of one `dist`, compressed once, on first use; kept as scratch files in one
/// directory (removed by the caller).
#[derive(Debug)]
pub struct DeflateCache {
    dir: PathBuf,
    options: DeflateOptions,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    prefixes: HashMap<PathBuf, Vec<Vec<u8>>>,
    done: HashMap<PathBuf, Arc<Deflated>>,
}

impl DeflateCache {
    /// Scratch files go to `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>, options: DeflateOptions) -> DeflateCache {
        DeflateCache {
            dir: dir.into(),
            options,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The compression level every writer of this `dist` uses.
    pub fn level(&self) -> u32 {
        self.options.level
    }

    /// Asks for the SHA-256 of `prefix` followed by `source`'s bytes (e.g. an OCI layer's
    /// diff_id: the tar headers before the binary), computed during the one compression.
    /// Must come before the first [`DeflateCache::get`] of `source` to take effect.
    pub fn want_prefix(&self, source: &Path, prefix: Vec<u8>) {
        let mut state = self.state.lock().expect("deflate cache lock");
        let prefixes = state.prefixes.entry(source.to_owned()).or_default();
        if !prefixes.contains(&prefix) {
            prefixes.push(prefix);
        }
    }

    /// `source` compressed, compressing it now if this is the first request.
    pub fn get(&self, source: &Path, progress: &(dyn Fn(u64) + Sync)) -> io::Result<Arc<Deflated>> {
        let mut state = self.state.lock().expect("deflate cache lock");
        if let Some(done) = state.done.get(source) {
            return Ok(Arc::clone(done));
        }
        std::fs::create_dir_all(&self.dir)?;
        let scratch = self.dir.join(format!("{}.deflate", state.done.len()));
        let prefixes = state.prefixes.get(source).cloned().unwrap_or_default();
        let deflated = deflate_file(source, &scratch, &self.options, &prefixes, progress).map_err(
            |error| {
                let _ = std::fs::remove_file(&scratch);
                io::Error::new(
                    error.kind(),
                    format!("cannot compress {}: {error}", source.display()),
                )
            },
        )?;
        let deflated = Arc::new(deflated);
        state.done.insert(source.to_owned(), Arc::clone(&deflated));
        Ok(deflated)
    }

    /// Removes the scratch directory (the compressed copies); the cache is empty afterwards.
    pub fn clear(&self) -> io::Result<()> {
        let mut state = self.state.lock().expect("deflate cache lock");
        state.done.clear();
        match std::fs::remove_dir_all(&self.dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{DeflateDecoder, GzDecoder};

    /// Compressible but not trivial: repeated text with a counter, and some noise.
    fn sample(len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut line = 0u64;
        while bytes.len() < len {
            if line.is_multiple_of(7) {
                for _ in 0..64 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    bytes.push(state as u8);
                }
            } else {
                bytes.extend_from_slice(format!("line {line}: the same words again\n").as_bytes());
            }
            line += 1;
        }
        bytes.truncate(len);
        bytes
    }

    fn stream(data: &[u8], threads: usize, level: u32) -> (Vec<u8>, StreamSummary) {
        let mut out = Vec::new();
        let summary = deflate_stream(
            data,
            &mut out,
            &DeflateOptions { level, threads },
            &[b"prefix".to_vec()],
            &|_| {},
        )
        .unwrap();
        (out, summary)
    }

    /// Numbered lines with a pseudo-random number each: blocks that differ from one another,
    /// so a compressor whose output depended on the blocks before would show it.
    fn numbered_lines(len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut line = 0u64;
        while bytes.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(format!("{line} {}\n", state % 1000).as_bytes());
            line += 1;
        }
        bytes.truncate(len);
        bytes
    }

    #[test]
    fn identical_with_one_and_many_threads_on_varied_blocks() {
        let data = numbered_lines(12 * BLOCK_SIZE + 1000);
        let (one, _) = stream(&data, 1, 6);
        for threads in [2, 3, 5] {
            assert!(one == stream(&data, threads, 6).0, "{threads} threads");
        }
    }

    #[test]
    fn identical_with_one_and_many_threads() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            5 * BLOCK_SIZE + 77,
        ] {
            let data = sample(len);
            let (one, summary) = stream(&data, 1, 6);
            for threads in [2, 3, 8] {
                let (many, other) = stream(&data, threads, 6);
                assert_eq!(one, many, "{len} bytes, {threads} threads");
                assert_eq!(summary.crc.sum(), other.crc.sum());
            }
            // The stream plus a final block decodes to the input.
            let mut complete = one.clone();
            complete.extend_from_slice(&FINAL_EMPTY_BLOCK);
            let mut decoded = Vec::new();
            DeflateDecoder::new(&complete[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "{len} bytes");
            let mut crc = Crc::new();
            crc.update(&data);
            assert_eq!(summary.crc.sum(), crc.sum());
            assert_eq!(summary.size, len as u64);
            assert_eq!(summary.compressed_size, one.len() as u64);
            assert_eq!(summary.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
            let mut prefixed = b"prefix".to_vec();
            prefixed.extend_from_slice(&data);
            assert_eq!(
                summary.taps[0].clone().finalize(),
                Sha256::digest(&prefixed)
            );
        }
    }

    /// `data` compressed by a new state, with the calls `deflate_whole` makes.
    fn with_a_new_state(data: &[u8], level: u32) -> Vec<u8> {
        let mut new = Compress::new(Compression::new(level), false);
        let mut out = Vec::new();
        deflate_into(&mut new, data, FlushCompress::None, &mut out).unwrap();
        deflate_into(&mut new, &[], FlushCompress::Finish, &mut out).unwrap();
        out
    }

    #[test]
    fn deflate_whole_writes_what_flate2s_encoder_writes() {
        for level in 0..=9 {
            for len in [0, 100, 40_000, 100_000, 300_000] {
                let data = numbered_lines(len);
                let mut flate2 =
                    flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(level));
                flate2.write_all(&data).unwrap();
                let expected = flate2.finish().unwrap();
                // Twice: the second may take a kept state (tests share the process's pool).
                for _ in 0..2 {
                    let got = deflate_whole(&data, level).unwrap();
                    assert!(got == expected, "level {level}, {len} bytes");
                }
            }
        }
    }

    #[test]
    fn a_kept_state_compresses_as_a_new_one() {
        let pool: &'static Pool = Box::leak(Box::default());
        let other = sample(30_000);
        let small = numbered_lines(2_000);
        for level in 0..=9 {
            // A stream that ends: its state is kept, reset.
            let mut state = pool.take(level);
            let mut out = Vec::new();
            deflate_into(&mut state, &other, FlushCompress::None, &mut out).unwrap();
            state.finish_into(&mut out).unwrap();
            drop(state);
            assert_eq!(pool.states().len(), 1, "level {level}");

            // The next stream of that level gets it and writes what a new state writes, for
            // a small input that a window left over from `other` could have changed.
            let mut state = pool.take(level);
            assert!(pool.states().is_empty());
            let mut out = Vec::new();
            deflate_into(&mut state, &small, FlushCompress::None, &mut out).unwrap();
            state.finish_into(&mut out).unwrap();
            assert!(out == with_a_new_state(&small, level), "level {level}");

            // A stream left in the middle: that state is freed, not kept (zlib-rs 0.6.8 reset
            // there at level 1 goes on to write a corrupt stream).
            drop(state);
            let mut state = pool.take(level);
            deflate_into(&mut state, &other, FlushCompress::None, &mut Vec::new()).unwrap();
            drop(state);
            assert!(pool.states().is_empty(), "level {level}");
        }
    }

    #[test]
    fn every_level_round_trips() {
        let data = sample(3 * BLOCK_SIZE + 5);
        for level in 0..=9 {
            let (mut out, _) = stream(&data, 2, level);
            out.extend_from_slice(&FINAL_EMPTY_BLOCK);
            let mut decoded = Vec::new();
            DeflateDecoder::new(&out[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "level {level}");
        }
    }

    #[test]
    fn ratio_close_to_a_single_stream() {
        let data = sample(8 * BLOCK_SIZE);
        let (parallel, _) = stream(&data, 2, 6);
        let mut single = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        let ratio = parallel.len() as f64 / single.len() as f64;
        assert!(ratio < 1.02, "{} vs {} bytes", parallel.len(), single.len());
    }

    #[test]
    fn gzip_with_splices_decodes_to_everything_in_order() {
        let dir = std::env::temp_dir().join(format!("castoff-deflate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = sample(2 * BLOCK_SIZE + 3);
        let source = dir.join("binary");
        std::fs::write(&source, &binary).unwrap();
        let cache = DeflateCache::new(dir.join("scratch"), DeflateOptions::new(6));
        cache.want_prefix(&source, b"head".to_vec());
        let deflated = cache.get(&source, &|_| {}).unwrap();
        assert!(Arc::ptr_eq(
            &deflated,
            &cache.get(&source, &|_| {}).unwrap()
        ));
        let mut expected_tap = Sha256::new_with_prefix(b"head");
        expected_tap.update(&binary);
        assert_eq!(
            deflated.hasher_after(b"head").unwrap().finalize(),
            expected_tap.finalize()
        );
        assert!(deflated.hasher_after(b"other").is_none());

        // The writer's own blocks at level 0 (stored), 1 (zlib-rs's quick path) and 6, between
        // splices; its states come from the pool, kept ones after the first member.
        let between = numbered_lines(40_000);
        for level in [0, 1, 6, 0, 1, 6] {
            let mut gzip = GzipWriter::new(Vec::new(), level);
            gzip.write_all(b"before ").unwrap();
            gzip.splice(&deflated).unwrap();
            gzip.write_all(&between).unwrap();
            gzip.splice(&deflated).unwrap();
            gzip.splice(&deflated).unwrap();
            gzip.write_all(b" after").unwrap();
            let bytes = gzip.finish().unwrap();
            let extra_flags = if level < 2 { 4 } else { 0 };
            assert_eq!(
                &bytes[..10],
                &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]
            );

            let mut expected = b"before ".to_vec();
            expected.extend_from_slice(&binary);
            expected.extend_from_slice(&between);
            expected.extend_from_slice(&binary);
            expected.extend_from_slice(&binary);
            expected.extend_from_slice(b" after");
            // GzDecoder checks the CRC and the size of the trailer.
            let mut decoded = Vec::new();
            GzDecoder::new(&bytes[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, expected, "level {level}");
        }

        // A member that starts with a splice and ends right after one.
        let mut gzip = GzipWriter::new(Vec::new(), 9);
        gzip.splice(&deflated).unwrap();
        let bytes = gzip.finish().unwrap();
        assert_eq!(bytes[8], 2);
        let mut decoded = Vec::new();
        GzDecoder::new(&bytes[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, binary);
        cache.clear().unwrap();
        assert!(!dir.join("scratch").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
