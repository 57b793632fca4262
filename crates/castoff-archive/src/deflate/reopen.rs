//! Turning a finished raw deflate stream into an open one that later streams can follow.
//!
//! libdeflate compresses a whole buffer into a complete stream: its last block carries the
//! BFINAL flag, and the stream ends at whatever bit its end-of-block code ends on. To splice
//! such streams one after another (and between the gzip writer's own blocks), each one must
//! instead end *open*: no block flagged final, and byte-aligned, the way zlib's sync flush
//! leaves a stream. [`reopen`] does that. Finding the last block's header takes a walk over
//! every block (RFC 1951 blocks are bit-aligned and only their contents say where they end),
//! which decodes the Huffman symbols but writes no output.

use std::io;

/// Bits looked up at once when decoding a symbol; longer codes take the slow path.
const FAST_BITS: u32 = 12;
/// The longest Huffman code deflate allows.
const MAX_BITS: usize = 15;
/// The order the code-length code's lengths are sent in (RFC 1951 §3.2.7).
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// An empty, non-final stored block's length fields: LEN 0, NLEN 0xffff.
const EMPTY_STORED: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Clears the final flag of `stream`'s last block and appends an empty stored block, so the
/// stream ends on a byte boundary with no block flagged final (what a sync flush leaves).
/// Fails if `stream` is not exactly one complete raw deflate stream.
pub(super) fn reopen(stream: &mut Vec<u8>) -> io::Result<()> {
    let Walked { last_header, end } = walk(stream)?;
    if end.div_ceil(8) != stream.len() as u64 {
        return Err(corrupt(format!(
            "{} bytes follow the end of the stream",
            stream.len() as u64 - end.div_ceil(8)
        )));
    }
    stream[(last_header / 8) as usize] &= !(1 << (last_header % 8));
    let used = (end % 8) as u32;
    if used != 0 {
        // Padding after the end-of-block code must be zeros: it becomes the next header.
        let last = stream.len() - 1;
        stream[last] &= (1u8 << used) - 1;
    }
    // The stored block's 3 header bits (all zero) fit in what is left of the last byte, or
    // take a byte of their own; the rest of that byte is the padding before LEN.
    if used == 0 || 8 - used < 3 {
        stream.push(0);
    }
    stream.extend_from_slice(&EMPTY_STORED);
    Ok(())
}

/// Where the last block starts and where the stream ends, in bits from the start.
#[derive(Debug, PartialEq, Eq)]
struct Walked {
    last_header: u64,
    end: u64,
}

fn corrupt(detail: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a compressed block is not a valid deflate stream: {detail}"),
    )
}

fn walk(stream: &[u8]) -> io::Result<Walked> {
    let mut bits = Bits::new(stream);
    let mut fixed: Option<(Huffman, Huffman)> = None;
    loop {
        let header = bits.position();
        bits.refill();
        let last = bits.take(1) == 1;
        match bits.take(2) {
            0 => bits.skip_stored()?,
            1 => {
                let (lengths, distances) = fixed.get_or_insert_with(fixed_codes);
                skip_symbols(&mut bits, lengths, distances)?;
            }
            2 => {
                let (lengths, distances) = dynamic_codes(&mut bits)?;
                skip_symbols(&mut bits, &lengths, &distances)?;
            }
            _ => return Err(corrupt("a block of the reserved type 3".into())),
        }
        if bits.overrun() {
            return Err(corrupt("the stream ends inside a block".into()));
        }
        if last {
            return Ok(Walked {
                last_header: header,
                end: bits.position(),
            });
        }
    }
}

/// Decodes a block's symbols up to its end-of-block code, keeping nothing.
fn skip_symbols(outer: &mut Bits<'_>, lengths: &Huffman, distances: &Huffman) -> io::Result<()> {
    // A local copy stays in registers through the loop (about twice as fast as going through
    // the reference).
    let mut local = *outer;
    let bits = &mut local;
    let result = loop {
        // Enough for a length and its distance: 15 + 5 extra bits, then 15 + 13. Runs of
        // literals (at most 15 bits each) go several to a refill.
        if bits.count < 48 {
            bits.refill();
            // Past the end the reader yields zeros, which may decode as literals forever.
            if bits.next > bits.data.len() && bits.overrun() {
                break Err(corrupt("the stream ends inside a block".into()));
            }
        }
        let symbol = lengths.skip(bits);
        if symbol < 256 {
            continue;
        }
        match symbol {
            256 => break Ok(()),
            257..=285 => {
                let distance = distances.skip(bits);
                if distance >= 30 {
                    break Err(corrupt(format!("distance symbol {distance}")));
                }
            }
            NOT_A_CODE => break Err(corrupt("a code that is not in its Huffman table".into())),
            symbol => break Err(corrupt(format!("length symbol {symbol}"))),
        }
    };
    *outer = local;
    result
}

/// Extra bits after each literal/length symbol (RFC 1951 §3.2.5).
fn length_extra(symbol: usize) -> u8 {
    match symbol {
        265..=284 => ((symbol - 261) / 4) as u8,
        _ => 0,
    }
}

/// Extra bits after each distance symbol.
fn distance_extra(symbol: usize) -> u8 {
    match symbol {
        4..=29 => (symbol / 2 - 1) as u8,
        _ => 0,
    }
}

/// What [`Huffman::skip`] returns for bits that are no code.
const NOT_A_CODE: u16 = u16::MAX;

fn fixed_codes() -> (Huffman, Huffman) {
    let mut lengths = [0u8; 288];
    lengths[..144].fill(8);
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    lengths[280..].fill(8);
    let lengths = Huffman::new(&lengths, length_extra).expect("the fixed code is valid");
    let distances = Huffman::new(&[5; 30], distance_extra).expect("the fixed code is valid");
    (lengths, distances)
}

/// Reads a dynamic block's header: the code-length code, then the two codes it describes.
fn dynamic_codes(bits: &mut Bits<'_>) -> io::Result<(Huffman, Huffman)> {
    bits.refill();
    let literal_count = bits.take(5) as usize + 257;
    let distance_count = bits.take(5) as usize + 1;
    let code_length_count = bits.take(4) as usize + 4;
    if literal_count > 286 || distance_count > 30 {
        return Err(corrupt(format!(
            "{literal_count} length and {distance_count} distance codes"
        )));
    }
    let mut code_lengths = [0u8; 19];
    for &symbol in &CODE_LENGTH_ORDER[..code_length_count] {
        bits.refill();
        code_lengths[symbol] = bits.take(3) as u8;
    }
    let code_length_code = Huffman::new(&code_lengths, |_| 0)?;
    let mut lengths = vec![0u8; literal_count + distance_count];
    let mut index = 0;
    while index < lengths.len() {
        bits.refill();
        let symbol = code_length_code.skip(bits);
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let Some(&previous) = index.checked_sub(1).map(|at| &lengths[at]) else {
                    return Err(corrupt("a repeat with nothing before it".into()));
                };
                (previous, 3 + bits.take(2) as usize)
            }
            17 => (0, 3 + bits.take(3) as usize),
            18 => (0, 11 + bits.take(7) as usize),
            _ => return Err(corrupt("a code that is not in its Huffman table".into())),
        };
        if index + repeat > lengths.len() {
            return Err(corrupt("code lengths run past their count".into()));
        }
        lengths[index..index + repeat].fill(value);
        index += repeat;
        if bits.overrun() {
            return Err(corrupt("the stream ends inside a block header".into()));
        }
    }
    if lengths[256] == 0 {
        return Err(corrupt("no end-of-block code".into()));
    }
    Ok((
        Huffman::new(&lengths[..literal_count], length_extra)?,
        Huffman::new(&lengths[literal_count..], distance_extra)?,
    ))
}

/// A canonical Huffman code, decodable from a [`Bits`] reader.
struct Huffman {
    /// Indexed by the next [`FAST_BITS`] bits: `symbol << 5 | bits`, where `bits` counts the
    /// code and the extra bits after it (at most 28); 0 for codes longer than [`FAST_BITS`].
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// How many codes have each length.
    counts: [u16; MAX_BITS + 1],
    /// The symbols ordered by code length, then by value (canonical order).
    symbols: Vec<u16>,
    /// Extra bits after each symbol.
    extra: Vec<u8>,
}

impl Huffman {
    fn new(lengths: &[u8], extra: fn(usize) -> u8) -> io::Result<Huffman> {
        let mut counts = [0u16; MAX_BITS + 1];
        for &length in lengths {
            counts[usize::from(length)] += 1;
        }
        counts[0] = 0;
        // A code may be incomplete (a lone distance code is), never over-subscribed.
        let mut left = 1i32;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err(corrupt("an over-subscribed Huffman code".into()));
            }
        }
        let mut offsets = [0u16; MAX_BITS + 2];
        for length in 1..=MAX_BITS {
            offsets[length + 1] = offsets[length] + counts[length];
        }
        let mut symbols = vec![0u16; usize::from(offsets[MAX_BITS + 1])];
        let mut next_code = [0u32; MAX_BITS + 1];
        let mut code = 0u32;
        for length in 1..=MAX_BITS {
            code = (code + u32::from(counts[length - 1])) << 1;
            next_code[length] = code;
        }
        let extra: Vec<u8> = (0..lengths.len()).map(extra).collect();
        let mut fast = Box::new([0u16; 1 << FAST_BITS]);
        for (symbol, &length) in lengths.iter().enumerate() {
            if length == 0 {
                continue;
            }
            let length = usize::from(length);
            symbols[usize::from(offsets[length])] = symbol as u16;
            offsets[length] += 1;
            let code = next_code[length];
            next_code[length] += 1;
            if length as u32 <= FAST_BITS {
                // Codes are sent most significant bit first; the reader sees them reversed.
                let reversed = code.reverse_bits() >> (32 - length);
                let entry = (symbol as u16) << 5 | (length as u16 + u16::from(extra[symbol]));
                for slot in (reversed as usize..fast.len()).step_by(1 << length) {
                    fast[slot] = entry;
                }
            }
        }
        Ok(Huffman {
            fast,
            counts,
            symbols,
            extra,
        })
    }

    /// Consumes the next symbol and its extra bits and returns the symbol, or [`NOT_A_CODE`].
    /// The reader must hold the code and its extra bits (call [`Bits::refill`]).
    #[inline]
    fn skip(&self, bits: &mut Bits<'_>) -> u16 {
        let entry = self.fast[(bits.buffer & ((1 << FAST_BITS) - 1)) as usize];
        if entry != 0 {
            bits.take(u32::from(entry & 31));
            return entry >> 5;
        }
        // By value: a reader whose address reached a function that is not inlined would be
        // kept in memory, and every symbol would wait on a store and a load (the walk took
        // 1.7 times libdeflate's whole decompression).
        let (symbol, after) = self.skip_long(*bits);
        *bits = after;
        symbol
    }

    /// Codes longer than [`FAST_BITS`]: walks the lengths one bit at a time (canonical
    /// decoding).
    #[cold]
    #[inline(never)]
    fn skip_long<'a>(&self, mut bits: Bits<'a>) -> (u16, Bits<'a>) {
        let symbol = self.skip_long_in(&mut bits);
        (symbol, bits)
    }

    fn skip_long_in(&self, bits: &mut Bits<'_>) -> u16 {
        let mut code = 0i32;
        let mut first = 0i32;
        let mut index = 0i32;
        for length in 1..=MAX_BITS {
            code |= ((bits.buffer >> (length - 1)) & 1) as i32;
            let count = i32::from(self.counts[length]);
            if code - first < count {
                let symbol = self.symbols[(index + code - first) as usize];
                bits.take(length as u32 + u32::from(self.extra[usize::from(symbol)]));
                return symbol;
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        NOT_A_CODE
    }
}

/// Least-significant-bit-first reader over a byte slice. Past the end it reads zeros and
/// remembers it did, so callers check [`Bits::overrun`] instead of every read.
///
/// Bits of `buffer` above `count` are either zero or the bytes at `next` (a refill reads a
/// whole word ahead and ORs the same bits in again later).
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// Bytes moved into `buffer` so far (may exceed `data.len()` once past the end).
    next: usize,
    buffer: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            next: 0,
            buffer: 0,
            count: 0,
        }
    }

    /// Bits consumed from the start.
    fn position(&self) -> u64 {
        self.next as u64 * 8 - u64::from(self.count)
    }

    fn overrun(&self) -> bool {
        self.position() > self.data.len() as u64 * 8
    }

    /// Fills the buffer to at least 56 bits.
    #[inline]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.next..self.next + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            self.buffer |= word << self.count;
            let whole = (63 - self.count) / 8;
            self.next += whole as usize;
            self.count += whole * 8;
            return;
        }
        while self.count <= 56 {
            let byte = self.data.get(self.next).copied().unwrap_or(0);
            self.buffer |= u64::from(byte) << self.count;
            self.next += 1;
            self.count += 8;
        }
    }

    /// The next `n` (at most 32) bits; the buffer must hold them.
    #[inline]
    fn take(&mut self, n: u32) -> u32 {
        debug_assert!(n <= self.count && n <= 32);
        let value = (self.buffer & ((1u64 << n) - 1)) as u32;
        self.buffer >>= n;
        self.count -= n;
        value
    }

    /// A stored block after its 3 header bits: to the byte boundary, LEN, NLEN, LEN bytes.
    fn skip_stored(&mut self) -> io::Result<()> {
        self.take(self.count % 8);
        self.refill();
        let length = self.take(16);
        let complement = self.take(16);
        if length != !complement & 0xffff {
            return Err(corrupt(
                "a stored block's length does not match its complement".into(),
            ));
        }
        // Whole bytes still in the buffer go first, then the slice is skipped directly.
        let buffered = self.count / 8;
        let from_buffer = buffered.min(length);
        self.take(from_buffer * 8);
        let rest = (length - from_buffer) as usize;
        if rest > 0 {
            // `count` is 0 here: the buffer held fewer bytes than the block. Its upper bits
            // may hold bytes read ahead, which the jump skips: clear them.
            debug_assert_eq!(self.count, 0);
            self.buffer = 0;
            self.next += rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use std::io::Read as _;

    fn decode(stream: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        DeflateDecoder::new(stream)
            .read_to_end(&mut decoded)
            .unwrap();
        decoded
    }

    fn text(len: usize, seed: u64) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len);
        let mut state = seed | 1;
        while bytes.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 5 {
                0 => bytes.extend_from_slice(&state.to_le_bytes()),
                _ => bytes.extend_from_slice(format!("word{} ", state % 97).as_bytes()),
            }
        }
        bytes.truncate(len);
        bytes
    }

    fn libdeflate(data: &[u8], level: i32) -> Vec<u8> {
        let mut compressor =
            libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        let mut out = vec![0; compressor.deflate_compress_bound(data.len())];
        let len = compressor.deflate_compress(data, &mut out).unwrap();
        out.truncate(len);
        out
    }

    /// Every block type, many block boundaries, every end-of-stream bit position: two
    /// reopened streams and a final block decode to both inputs, in order.
    #[test]
    fn reopened_streams_concatenate() {
        let mut ends = std::collections::BTreeSet::new();
        for level in 0..=12 {
            for (len, seed) in [(0, 1), (1, 2), (7, 3), (300, 4), (70_000, 5), (400_000, 6)] {
                let first = text(len, seed);
                let second = text(len / 2 + 3, seed + 100);
                let mut joined = libdeflate(&first, level);
                ends.insert(walk(&joined).unwrap().end % 8);
                reopen(&mut joined).unwrap();
                assert_eq!(decode_open(&joined), first, "level {level}, {len} bytes");
                let mut tail = libdeflate(&second, level);
                reopen(&mut tail).unwrap();
                joined.extend_from_slice(&tail);
                joined.extend_from_slice(&[0x03, 0x00]);
                let mut expected = first.clone();
                expected.extend_from_slice(&second);
                assert_eq!(decode(&joined), expected, "level {level}, {len} bytes");
            }
        }
        // The end fell on enough different bit positions to cover both padding cases.
        assert!(ends.len() >= 5, "{ends:?}");
    }

    /// An open stream decodes completely once a final block follows.
    fn decode_open(stream: &[u8]) -> Vec<u8> {
        let mut closed = stream.to_vec();
        closed.extend_from_slice(&[0x03, 0x00]);
        decode(&closed)
    }

    /// A fixed-Huffman block holding `symbol` (a literal/length code, sent most significant
    /// bit first), then zeros.
    fn fixed_block_with(symbol: u32) -> Vec<u8> {
        let (code, length) = match symbol {
            0..=143 => (0x30 + symbol, 8),
            144..=255 => (0x190 + symbol - 144, 9),
            256..=279 => (symbol - 256, 7),
            _ => (0xc0 + symbol - 280, 8),
        };
        // BFINAL 1, BTYPE 01 (fixed), then the code.
        let mut bits: Vec<u32> = vec![1, 1, 0];
        bits.extend((0..length).rev().map(|bit| (code >> bit) & 1));
        let mut stream = vec![0u8; 32];
        for (at, bit) in bits.iter().enumerate() {
            stream[at / 8] |= (*bit as u8) << (at % 8);
        }
        stream
    }

    /// Symbols the fixed code assigns but deflate forbids are refused.
    #[test]
    fn invalid_fixed_code_symbols_are_refused() {
        for symbol in [286, 287] {
            let mut stream = fixed_block_with(symbol);
            let error = reopen(&mut stream).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("length symbol {symbol}")),
                "{error}"
            );
        }
    }

    #[test]
    fn zlib_streams_reopen_too() {
        let data = text(200_000, 9);
        for level in 0..=9 {
            let mut encoder =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
            std::io::Write::write_all(&mut encoder, &data).unwrap();
            let mut stream = encoder.finish().unwrap();
            reopen(&mut stream).unwrap();
            assert_eq!(decode_open(&stream), data, "level {level}");
        }
    }

    #[test]
    fn truncated_or_padded_streams_are_refused() {
        let stream = libdeflate(&text(50_000, 11), 6);
        for cut in [1, 2, stream.len() / 2] {
            let mut truncated = stream[..stream.len() - cut].to_vec();
            let error = reopen(&mut truncated).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut {cut}");
        }
        let mut padded = stream.clone();
        padded.push(0);
        let error = reopen(&mut padded).unwrap_err();
        assert!(error.to_string().contains("1 bytes follow"), "{error}");
        let mut reserved = vec![0b111];
        assert!(reopen(&mut reserved).is_err());
    }
}
