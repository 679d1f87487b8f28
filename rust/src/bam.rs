//! BAM reading for coverage: BGZF blocks inflated by libdeflate on worker threads, records
//! decoded by hand from the inflated stream without a copy (a record is copied only when it
//! straddles two batches of blocks).
//!
//! Why not a general BAM library: coverage needs six fixed fields, the CIGAR and one tag per
//! record. Reading those in place from the inflated bytes leaves inflating as the only real cost,
//! which is then spread over the threads; memory stays at a few batches of 64 KiB blocks per
//! thread whatever the size of the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libdeflater::Decompressor;

use crate::errors::{CoreError, CoreResult};

/// Blocks are gathered into a batch until it holds this many compressed bytes (about 2 MiB
/// once inflated); large enough that handing batches between threads costs nothing measurable,
/// small enough that the batches in flight (about three per thread) stay a few MB each.
///
/// Fuzz builds (`cfg(fuzzing)`, set by cargo-fuzz) use tiny batches: small inputs then cross
/// batch boundaries, and an execution does not spend its time zeroing megabytes.
const BATCH_COMPRESSED_BYTES: usize = if cfg!(fuzzing) { 1 << 10 } else { 1 << 19 };
/// ... or this many inflated bytes: highly compressible data (unmapped reads without qualities,
/// say) would otherwise make a batch of compressed bytes inflate to tens of MB.
const BATCH_INFLATED_BYTES: usize = if cfg!(fuzzing) { 1 << 12 } else { 1 << 21 };
const BGZF_HEADER_BYTES: usize = 12;
const MAX_BLOCK_BYTES: usize = 1 << 16;

pub const FLAG_PAIRED: u16 = 0x1;
pub const FLAG_UNMAPPED: u16 = 0x4;
pub const FLAG_SECONDARY: u16 = 0x100;
pub const FLAG_QC_FAIL: u16 = 0x200;
pub const FLAG_DUPLICATE: u16 = 0x400;
pub const FLAG_SUPPLEMENTARY: u16 = 0x800;

pub const CIGAR_MATCH: u32 = 0;
pub const CIGAR_INSERTION: u32 = 1;
pub const CIGAR_DELETION: u32 = 2;
pub const CIGAR_SKIP: u32 = 3;
pub const CIGAR_SOFT_CLIP: u32 = 4;
pub const CIGAR_HARD_CLIP: u32 = 5;
pub const CIGAR_PAD: u32 = 6;
pub const CIGAR_EQUAL: u32 = 7;
pub const CIGAR_DIFF: u32 = 8;

/// Whether a CIGAR operation moves along the query (read) and along the reference.
#[inline]
pub fn consumes(op: u32) -> (bool, bool) {
    match op {
        CIGAR_MATCH | CIGAR_EQUAL | CIGAR_DIFF => (true, true),
        CIGAR_INSERTION | CIGAR_SOFT_CLIP => (true, false),
        CIGAR_DELETION | CIGAR_SKIP => (false, true),
        _ => (false, false),
    }
}

/// Reference names and lengths from the BAM header, in reference-id order.
#[derive(Debug, Clone, Default)]
pub struct BamHeader {
    pub names: Vec<String>,
    pub lengths: Vec<u64>,
    /// `SO:` of the `@HD` line, when present (only used to explain an unsorted file).
    pub sort_order: Option<String>,
}

/// One inflated batch of consecutive blocks.
struct Chunk {
    data: Vec<u8>,
}

/// A batch of raw BGZF blocks as read from the file.
#[derive(Debug)]
struct RawBatch {
    index: u64,
    bytes: Vec<u8>,
    /// Per block: compressed payload range in `bytes`, CRC32 and inflated size, file offset.
    blocks: Vec<RawBlock>,
}

#[derive(Debug, Clone, Copy)]
struct RawBlock {
    start: usize,
    end: usize,
    crc: u32,
    inflated: usize,
    offset: u64,
}

/// Splits the file into BGZF blocks; knows the byte offset it is at for error messages.
///
/// The file is read in large pieces straight into a batch buffer; the blocks lying whole in it
/// form the batch and the cut block at its end is carried to the front of the next buffer.
struct BlockSplitter {
    path: PathBuf,
    source: Box<dyn Read + Send>,
    /// File offset of the next block to split.
    offset: u64,
    carry: Vec<u8>,
    end_of_file: bool,
    last_block_empty: bool,
    finished: bool,
    batches: u64,
    pending_error: Option<CoreError>,
}

/// A batch buffer holds a batch's worth of data plus one whole block carried over.
const BATCH_BUFFER_BYTES: usize = BATCH_COMPRESSED_BYTES + MAX_BLOCK_BYTES + 1024;

impl BlockSplitter {
    fn new(path: &Path, source: Box<dyn Read + Send>) -> BlockSplitter {
        BlockSplitter {
            path: path.to_path_buf(),
            source,
            offset: 0,
            carry: Vec::new(),
            end_of_file: false,
            last_block_empty: false,
            finished: false,
            batches: 0,
            pending_error: None,
        }
    }

    fn block_error(&self, message: String) -> CoreError {
        CoreError::format(&self.path, 0, message)
    }

    /// Reads the next batch of blocks; None after the last one. At the end of the file the last
    /// block must be BGZF's empty end-of-file marker, else the file was cut at a block boundary.
    fn next_batch(&mut self, mut bytes: Vec<u8>) -> CoreResult<Option<RawBatch>> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        if self.finished {
            return Ok(None);
        }
        if bytes.len() < BATCH_BUFFER_BYTES {
            bytes.resize(BATCH_BUFFER_BYTES, 0);
        }
        let mut filled = self.carry.len();
        bytes[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        while filled < BATCH_COMPRESSED_BYTES && !self.end_of_file {
            match self.source.read(&mut bytes[filled..]) {
                Ok(0) => self.end_of_file = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CoreError::file(&self.path, &e)),
            }
        }
        let mut blocks = Vec::new();
        let (used, full, outcome) = self.split(&bytes[..filled], &mut blocks);
        let outcome = outcome.and_then(|()| {
            if full || !self.end_of_file {
                self.carry.extend_from_slice(&bytes[used..filled]);
                return Ok(());
            }
            self.finished = true;
            if used < filled {
                let what = if filled - used < BGZF_HEADER_BYTES {
                    "block header"
                } else {
                    "block data"
                };
                Err(self.block_error(format!(
                    "file ends inside a BGZF block at byte {} ({what}); the BAM file is truncated",
                    self.offset
                )))
            } else if !self.last_block_empty {
                Err(self.block_error(
                    "no BGZF end-of-file marker: the BAM file is truncated".to_string(),
                ))
            } else {
                Ok(())
            }
        });
        if let Err(error) = outcome {
            self.finished = true;
            if blocks.is_empty() {
                return Err(error);
            }
            // Hand over the good blocks first so the error names the record it cut.
            self.pending_error = Some(error);
        }
        if blocks.is_empty() {
            return Ok(None);
        }
        let index = self.batches;
        self.batches += 1;
        Ok(Some(RawBatch {
            index,
            bytes,
            blocks,
        }))
    }

    /// Records the whole blocks at the start of `data`, up to a batch's worth of inflated bytes;
    /// returns how many bytes they take and whether the batch is full.
    fn split(&mut self, data: &[u8], blocks: &mut Vec<RawBlock>) -> (usize, bool, CoreResult<()>) {
        let mut at = 0;
        let mut inflated_total = 0;
        while data.len() - at >= BGZF_HEADER_BYTES {
            if inflated_total >= BATCH_INFLATED_BYTES {
                return (at, true, Ok(()));
            }
            let header = &data[at..at + BGZF_HEADER_BYTES];
            if header[0] == 0x1f && header[1] == 0x8b && header[2] == 8 && header[3] & 4 == 0 {
                let message = format!(
                    "gzip member at byte {} has no BGZF size field: the file is gzip, not BGZF/BAM",
                    self.offset
                );
                return (at, false, Err(self.block_error(message)));
            }
            if header[0] != 0x1f || header[1] != 0x8b || header[2] != 8 {
                let message = format!(
                    "corrupt BAM: no BGZF block header at byte {} (the file is damaged or not BAM)",
                    self.offset
                );
                return (at, false, Err(self.block_error(message)));
            }
            let extra_len = u16::from_le_bytes([header[10], header[11]]) as usize;
            let header_len = BGZF_HEADER_BYTES + extra_len;
            if data.len() - at < header_len {
                break;
            }
            let Some(block_size) = bgzf_block_size(&data[at + BGZF_HEADER_BYTES..at + header_len])
            else {
                let message = format!(
                    "gzip member at byte {} has no BGZF size field: the file is gzip, not BGZF/BAM",
                    self.offset
                );
                return (at, false, Err(self.block_error(message)));
            };
            if block_size < header_len + 8 {
                let message = format!("corrupt BGZF block size at byte {}", self.offset);
                return (at, false, Err(self.block_error(message)));
            }
            if data.len() - at < block_size {
                break;
            }
            let trailer = &data[at + block_size - 8..at + block_size];
            let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let inflated = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            if inflated as usize > MAX_BLOCK_BYTES {
                let message = format!(
                    "corrupt BGZF block at byte {}: inflated size {inflated} over 64 KiB",
                    self.offset
                );
                return (at, false, Err(self.block_error(message)));
            }
            blocks.push(RawBlock {
                start: at + header_len,
                end: at + block_size - 8,
                crc,
                inflated: inflated as usize,
                offset: self.offset,
            });
            self.last_block_empty = inflated == 0;
            self.offset += block_size as u64;
            at += block_size;
            inflated_total += inflated as usize;
        }
        (at, false, Ok(()))
    }
}

/// BSIZE + 1 from the `BC` subfield of a gzip extra field.
fn bgzf_block_size(extra: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let length = u16::from_le_bytes([extra[at + 2], extra[at + 3]]) as usize;
        if extra[at] == b'B' && extra[at + 1] == b'C' && length == 2 && at + 6 <= extra.len() {
            return Some(u16::from_le_bytes([extra[at + 4], extra[at + 5]]) as usize + 1);
        }
        at += 4 + length;
    }
    None
}

fn inflate_batch(
    path: &Path,
    decompressor: &mut Decompressor,
    batch: &RawBatch,
    mut out: Vec<u8>,
) -> CoreResult<Chunk> {
    let total: usize = batch.blocks.iter().map(|b| b.inflated).sum();
    // Every byte is overwritten by the inflater; resizing a recycled buffer zeroes only growth.
    out.resize(total, 0);
    let mut at = 0;
    for block in &batch.blocks {
        let target = &mut out[at..at + block.inflated];
        let corrupt = |problem: &str| {
            CoreError::format(
                path,
                0,
                format!("corrupt BGZF block at byte {}: {problem}", block.offset),
            )
        };
        match decompressor.deflate_decompress(&batch.bytes[block.start..block.end], target) {
            Ok(n) if n == block.inflated => {}
            Ok(_) => return Err(corrupt("inflated size differs from the block trailer")),
            Err(_) => return Err(corrupt("invalid deflate data")),
        }
        if libdeflater::crc32(target) != block.crc {
            return Err(corrupt("CRC32 checksum mismatch"));
        }
        at += block.inflated;
    }
    Ok(Chunk { data: out })
}

type BufferPool = Arc<Mutex<Vec<Vec<u8>>>>;

fn take_buffer(pool: &BufferPool) -> Vec<u8> {
    pool.lock()
        .ok()
        .and_then(|mut buffers| buffers.pop())
        .unwrap_or_default()
}

fn give_buffer(pool: &BufferPool, buffer: Vec<u8>) {
    if let Ok(mut buffers) = pool.lock() {
        if buffers.len() < 64 {
            buffers.push(buffer);
        }
    }
}

/// Source of inflated chunks in file order: inline on the calling thread, or from a reader
/// thread and `threads` inflating workers whose results are put back in order.
enum ChunkSource {
    Inline {
        splitter: Box<BlockSplitter>,
        decompressor: Decompressor,
        raw: Vec<u8>,
    },
    Parallel {
        results: Option<Receiver<(u64, CoreResult<Chunk>)>>,
        pending: BTreeMap<u64, CoreResult<Chunk>>,
        next: u64,
        handles: Vec<JoinHandle<()>>,
    },
}

impl ChunkSource {
    fn start(
        path: &Path,
        source: Box<dyn Read + Send>,
        threads: usize,
        pool: &BufferPool,
    ) -> ChunkSource {
        let splitter = Box::new(BlockSplitter::new(path, source));
        if threads <= 1 {
            return ChunkSource::Inline {
                splitter,
                decompressor: Decompressor::new(),
                raw: Vec::new(),
            };
        }
        let (job_sender, job_receiver) = sync_channel::<(u64, CoreResult<RawBatch>)>(threads);
        let (result_sender, result_receiver) = sync_channel(threads);
        let raw_pool: BufferPool = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::with_capacity(threads + 1);
        {
            let raw_pool = raw_pool.clone();
            let mut splitter = splitter;
            handles.push(std::thread::spawn(move || loop {
                let buffer = take_buffer(&raw_pool);
                let index = splitter.batches;
                match splitter.next_batch(buffer) {
                    Ok(Some(batch)) => {
                        if job_sender.send((batch.index, Ok(batch))).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = job_sender.send((index, Err(e)));
                        return;
                    }
                }
            }));
        }
        let jobs = Arc::new(Mutex::new(job_receiver));
        for _ in 0..threads {
            let jobs = jobs.clone();
            let results: SyncSender<(u64, CoreResult<Chunk>)> = result_sender.clone();
            let raw_pool = raw_pool.clone();
            let pool = pool.clone();
            let path = path.to_path_buf();
            handles.push(std::thread::spawn(move || {
                let mut decompressor = Decompressor::new();
                loop {
                    let job = match jobs.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, batch)) = job else { return };
                    let result = batch.and_then(|batch| {
                        let chunk =
                            inflate_batch(&path, &mut decompressor, &batch, take_buffer(&pool));
                        give_buffer(&raw_pool, batch.bytes);
                        chunk
                    });
                    if results.send((index, result)).is_err() {
                        return;
                    }
                }
            }));
        }
        ChunkSource::Parallel {
            results: Some(result_receiver),
            pending: BTreeMap::new(),
            next: 0,
            handles,
        }
    }

    fn next_chunk(&mut self, pool: &BufferPool) -> CoreResult<Option<Chunk>> {
        match self {
            ChunkSource::Inline {
                splitter,
                decompressor,
                raw,
            } => {
                let bytes = std::mem::take(raw);
                match splitter.next_batch(bytes)? {
                    None => Ok(None),
                    Some(batch) => {
                        let chunk =
                            inflate_batch(&splitter.path, decompressor, &batch, take_buffer(pool));
                        *raw = batch.bytes;
                        chunk.map(Some)
                    }
                }
            }
            ChunkSource::Parallel {
                results,
                pending,
                next,
                ..
            } => loop {
                if let Some(result) = pending.remove(next) {
                    *next += 1;
                    return result.map(Some);
                }
                let Some(receiver) = results.as_ref() else {
                    return Ok(None);
                };
                match receiver.recv() {
                    Ok((index, result)) => {
                        pending.insert(index, result);
                    }
                    Err(_) => {
                        // Every worker is done; whatever is pending is all there will be.
                        *results = None;
                        if pending.is_empty() {
                            return Ok(None);
                        }
                        let (&first, _) = pending.iter().next().expect("not empty");
                        *next = first;
                    }
                }
            },
        }
    }
}

impl Drop for ChunkSource {
    fn drop(&mut self) {
        if let ChunkSource::Parallel {
            results, handles, ..
        } = self
        {
            // Closing the result channel makes the workers' sends fail, which stops them; the
            // reader stops when the workers have dropped the job channel.
            *results = None;
            for handle in handles.drain(..) {
                let _ = handle.join();
            }
        }
    }
}

/// A BAM record's fields, read in place from the inflated bytes.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    cigar_start: usize,
    n_cigar: usize,
    aux_start: usize,
}

#[inline]
fn le_i32(data: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
fn le_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
fn le_u16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

impl<'a> Record<'a> {
    /// Checks the fixed fields' sizes against the record length; None when they overflow it.
    pub fn parse(data: &'a [u8]) -> Option<Record<'a>> {
        if data.len() < 32 {
            return None;
        }
        let name_len = data[8] as usize;
        let n_cigar = le_u16(data, 12) as usize;
        let seq_len = le_u32(data, 16) as usize;
        let cigar_start = 32 + name_len;
        let aux_start = cigar_start + 4 * n_cigar + seq_len.div_ceil(2) + seq_len;
        if name_len == 0 || aux_start > data.len() {
            return None;
        }
        Some(Record {
            data,
            cigar_start,
            n_cigar,
            aux_start,
        })
    }

    pub fn reference_id(&self) -> i32 {
        le_i32(self.data, 0)
    }

    /// 0-based leftmost position.
    pub fn position(&self) -> i32 {
        le_i32(self.data, 4)
    }

    pub fn mapping_quality(&self) -> u8 {
        self.data[9]
    }

    pub fn flags(&self) -> u16 {
        le_u16(self.data, 14)
    }

    /// Length of the stored sequence (0 when SEQ is `*`).
    pub fn sequence_length(&self) -> u32 {
        le_u32(self.data, 16)
    }

    pub fn name(&self) -> &'a [u8] {
        let end = 32 + self.data[8] as usize;
        let name = &self.data[32..end];
        name.strip_suffix(b"\0").unwrap_or(name)
    }

    /// CIGAR as BAM's packed `length << 4 | op` words.
    pub fn cigar(&self) -> CigarWords<'a> {
        let bytes = &self.data[self.cigar_start..self.cigar_start + 4 * self.n_cigar];
        if self.n_cigar == 2 {
            // Alignments with over 65535 operations keep a placeholder `<len>S<ref>N` here and
            // the real CIGAR in the CG:B,I tag.
            let first = le_u32(bytes, 0);
            let second = le_u32(bytes, 4);
            if first & 0xf == CIGAR_SOFT_CLIP
                && first >> 4 == self.sequence_length()
                && second & 0xf == CIGAR_SKIP
            {
                if let Ok(Some(words)) = self.long_cigar() {
                    return CigarWords { bytes: words };
                }
            }
        }
        CigarWords { bytes }
    }

    fn long_cigar(&self) -> Result<Option<&'a [u8]>, MalformedTags> {
        match find_tag(&self.data[self.aux_start..], *b"CG")? {
            Some((b'B', value)) if value.len() >= 5 && value[0] == b'I' => {
                let count = le_u32(value, 1) as usize;
                Ok(value.get(5..5 + 4 * count))
            }
            _ => Ok(None),
        }
    }

    /// The record's NM tag the way htslib's `bam_aux2i` reads it: Some(value) for an integer
    /// tag, Some(0) for a tag of another type, None when absent. Err when the tags are malformed.
    pub fn edit_distance(&self) -> Result<Option<i64>, MalformedTags> {
        let tag = find_tag(&self.data[self.aux_start..], *b"NM")?;
        Ok(tag.map(|(kind, value)| match kind {
            b'c' => value[0] as i8 as i64,
            b'C' => value[0] as i64,
            b's' => i16::from_le_bytes([value[0], value[1]]) as i64,
            b'S' => le_u16(value, 0) as i64,
            b'i' => le_i32(value, 0) as i64,
            b'I' => le_u32(value, 0) as i64,
            _ => 0,
        }))
    }
}

/// The optional fields of a record run past its end or hold an unknown type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedTags;

/// Finds `tag` in a record's aux bytes: (type, value bytes).
fn find_tag(mut aux: &[u8], tag: [u8; 2]) -> Result<Option<(u8, &[u8])>, MalformedTags> {
    while aux.len() >= 3 {
        let kind = aux[2];
        let body = &aux[3..];
        let size = match kind {
            b'A' | b'c' | b'C' => 1,
            b's' | b'S' => 2,
            b'i' | b'I' | b'f' => 4,
            b'Z' | b'H' => memchr::memchr(0, body).ok_or(MalformedTags)? + 1,
            b'B' => {
                if body.len() < 5 {
                    return Err(MalformedTags);
                }
                let width = match body[0] {
                    b'c' | b'C' => 1,
                    b's' | b'S' => 2,
                    b'i' | b'I' | b'f' => 4,
                    _ => return Err(MalformedTags),
                };
                5 + width * le_u32(body, 1) as usize
            }
            _ => return Err(MalformedTags),
        };
        if size > body.len() {
            return Err(MalformedTags);
        }
        if aux[0] == tag[0] && aux[1] == tag[1] {
            return Ok(Some((kind, &body[..size])));
        }
        aux = &body[size..];
    }
    if aux.is_empty() {
        Ok(None)
    } else {
        Err(MalformedTags)
    }
}

/// Packed CIGAR words; yields (op, length).
#[derive(Clone, Copy)]
pub struct CigarWords<'a> {
    bytes: &'a [u8],
}

impl<'a> CigarWords<'a> {
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn get(&self, i: usize) -> (u32, u32) {
        let word = le_u32(self.bytes, 4 * i);
        (word & 0xf, word >> 4)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.bytes.chunks_exact(4).map(|w| {
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            (word & 0xf, word >> 4)
        })
    }
}

/// Streaming BAM reader: header first, then records in file order.
pub struct BamReader {
    path: PathBuf,
    source: ChunkSource,
    pool: BufferPool,
    chunk: Vec<u8>,
    at: usize,
    carry: Vec<u8>,
    records: u64,
    in_header: bool,
    pub header: BamHeader,
}

impl BamReader {
    /// Opens `path`, recognising SAM, CRAM and plain gzip passed as BAM, and reads the header.
    pub fn open(path: &Path, threads: usize) -> CoreResult<BamReader> {
        let file = File::open(path).map_err(|e| CoreError::file(path, &e))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(CoreError::input(path, "is a directory, not a BAM file"));
        }
        BamReader::from_reader(path, Box::new(file), threads)
    }

    /// Reads a BAM stream from any source (`path` names it in messages): the same checks and
    /// decoding as `open`, for tests and fuzzing without a file.
    pub fn from_reader(
        path: &Path,
        mut source: Box<dyn Read + Send>,
        threads: usize,
    ) -> CoreResult<BamReader> {
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match source.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CoreError::file(path, &e)),
            }
        }
        let magic = &magic[..got];
        if got == 0 {
            return Err(CoreError::input(path, "is empty, not a BAM file"));
        }
        if magic.starts_with(b"CRAM") {
            return Err(CoreError::input(
                path,
                "is a CRAM file, not BAM (convert it with `samtools view -b`)",
            ));
        }
        if magic.starts_with(b"@") {
            return Err(CoreError::input(
                path,
                "is a SAM text file, not BAM (convert it with `samtools view -b`)",
            ));
        }
        if !magic.starts_with(&[0x1f, 0x8b]) {
            return Err(CoreError::input(
                path,
                "is not a BAM file (no BGZF/gzip magic bytes)",
            ));
        }
        // The bytes looked at go back in front of the stream.
        let source = Box::new(io::Cursor::new(magic.to_vec()).chain(source));
        let pool: BufferPool = Arc::new(Mutex::new(Vec::new()));
        let source = ChunkSource::start(path, source, threads, &pool);
        let mut reader = BamReader {
            path: path.to_path_buf(),
            source,
            pool,
            chunk: Vec::new(),
            at: 0,
            carry: Vec::new(),
            records: 0,
            in_header: true,
            header: BamHeader::default(),
        };
        reader.read_header()?;
        reader.in_header = false;
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn header_error(&self, message: impl Into<String>) -> CoreError {
        CoreError::input(&self.path, message)
    }

    fn read_header(&mut self) -> CoreResult<()> {
        let magic = match self.take(4)? {
            Some(bytes) => [bytes[0], bytes[1], bytes[2], bytes[3]],
            None => return Err(self.header_error("contains no data: not a BAM file")),
        };
        if &magic != b"BAM\x01" {
            let what = if magic[0] == b'@' {
                "is bgzip-compressed SAM text, not BAM (convert it with `samtools view -b`)"
            } else {
                "is BGZF-compressed but not BAM (no BAM magic)"
            };
            return Err(self.header_error(what));
        }
        let text_len = self.take_u32("header")? as usize;
        let sort_order = match self.take(text_len)? {
            Some(text) => header_sort_order(text),
            None => return Err(self.header_error("header ends early: the BAM file is truncated")),
        };
        let n_ref = self.take_u32("header")? as usize;
        let mut names = Vec::with_capacity(n_ref.min(1 << 20));
        let mut lengths = Vec::with_capacity(n_ref.min(1 << 20));
        for _ in 0..n_ref {
            let name_len = self.take_u32("header")? as usize;
            let name = match self.take(name_len)? {
                Some(name) => name.strip_suffix(b"\0").unwrap_or(name),
                None => {
                    return Err(self.header_error("header ends early: the BAM file is truncated"))
                }
            };
            names.push(String::from_utf8_lossy(name).into_owned());
            lengths.push(self.take_u32("header")? as u64);
        }
        self.header = BamHeader {
            names,
            lengths,
            sort_order,
        };
        Ok(())
    }

    fn take_u32(&mut self, what: &str) -> CoreResult<u32> {
        match self.take(4)? {
            Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(self.header_error(format!("{what} ends early: the BAM file is truncated"))),
        }
    }

    /// The next `n` bytes of the inflated stream, contiguous; None at a clean end of stream
    /// (no byte left at all).
    fn take(&mut self, n: usize) -> CoreResult<Option<&[u8]>> {
        Ok(self.advance(n)?.map(|place| self.bytes_at(place, n)))
    }

    fn bytes_at(&self, place: Place, n: usize) -> &[u8] {
        match place {
            Place::Chunk(start) => &self.chunk[start..start + n],
            Place::Carry => &self.carry[..n],
        }
    }

    /// Moves past the next `n` bytes and says where they lie; bytes that straddle chunks are
    /// gathered in `carry`.
    fn advance(&mut self, n: usize) -> CoreResult<Option<Place>> {
        if self.chunk.len() - self.at >= n {
            let start = self.at;
            self.at += n;
            return Ok(Some(Place::Chunk(start)));
        }
        self.carry.clear();
        self.carry.extend_from_slice(&self.chunk[self.at..]);
        loop {
            let next = match self.source.next_chunk(&self.pool) {
                Ok(next) => next,
                Err(e) => return Err(self.locate(e)),
            };
            let Some(next) = next else {
                self.at = self.chunk.len();
                if self.carry.is_empty() {
                    return Ok(None);
                }
                return Err(CoreError::format(
                    &self.path,
                    self.records + 1,
                    "data ends inside a record: the BAM file is truncated",
                ));
            };
            let finished = std::mem::replace(&mut self.chunk, next.data);
            give_buffer(&self.pool, finished);
            let need = n - self.carry.len();
            if self.chunk.len() >= need {
                self.carry.extend_from_slice(&self.chunk[..need]);
                self.at = need;
                return Ok(Some(Place::Carry));
            }
            self.carry.extend_from_slice(&self.chunk);
            self.at = self.chunk.len();
        }
    }

    /// Block-level errors are raised without a record number: in the header they become
    /// whole-file errors, afterwards they name the record being read.
    fn locate(&self, error: CoreError) -> CoreError {
        match error {
            CoreError::Format {
                path,
                record: 0,
                message,
            } => {
                if self.in_header {
                    CoreError::Input { path, message }
                } else {
                    CoreError::Format {
                        path,
                        record: self.records + 1,
                        message,
                    }
                }
            }
            other => other,
        }
    }

    /// The next record, or None at the end of the file.
    pub fn next_record(&mut self) -> CoreResult<Option<Record<'_>>> {
        let size = match self.take(4)? {
            None => return Ok(None),
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
        };
        self.records += 1;
        if !(32..=(1 << 30)).contains(&size) {
            return Err(CoreError::format(
                &self.path,
                self.records,
                format!("malformed record (block size {size})"),
            ));
        }
        let Some(place) = self.advance(size)? else {
            return Err(CoreError::format(
                &self.path,
                self.records,
                "data ends inside a record: the BAM file is truncated",
            ));
        };
        match Record::parse(self.bytes_at(place, size)) {
            Some(record) => Ok(Some(record)),
            None => Err(CoreError::format(
                &self.path,
                self.records,
                "malformed record (field sizes exceed the record length)",
            )),
        }
    }
}

#[derive(Clone, Copy)]
enum Place {
    Chunk(usize),
    Carry,
}

fn header_sort_order(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let first = text.lines().next()?;
    if !first.starts_with("@HD") {
        return None;
    }
    first
        .split('\t')
        .find_map(|field| field.strip_prefix("SO:"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One BGZF block holding `data`.
    fn bgzf_block(data: &[u8]) -> Vec<u8> {
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut deflated = vec![0u8; compressor.deflate_compress_bound(data.len())];
        let size = compressor.deflate_compress(data, &mut deflated).unwrap();
        deflated.truncate(size);
        let mut block = vec![
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
        ];
        block.extend_from_slice(&((deflated.len() + 25) as u16).to_le_bytes());
        block.extend_from_slice(&deflated);
        block.extend_from_slice(&libdeflater::crc32(data).to_le_bytes());
        block.extend_from_slice(&(data.len() as u32).to_le_bytes());
        block
    }

    fn splitter_over(bytes: &[u8], name: &str) -> BlockSplitter {
        BlockSplitter::new(Path::new(name), Box::new(io::Cursor::new(bytes.to_vec())))
    }

    #[test]
    fn reader_from_bytes_reads_header_and_records() {
        let mut stream = b"BAM\x01".to_vec();
        stream.extend_from_slice(&0u32.to_le_bytes());
        stream.extend_from_slice(&1u32.to_le_bytes());
        stream.extend_from_slice(&3u32.to_le_bytes());
        stream.extend_from_slice(b"c1\0");
        stream.extend_from_slice(&500u32.to_le_bytes());
        let record = record_with_tags(b"NMC\x07");
        stream.extend_from_slice(&(record.len() as u32).to_le_bytes());
        stream.extend_from_slice(&record);
        let mut file = bgzf_block(&stream);
        file.extend_from_slice(&bgzf_block(b""));
        let source = Box::new(io::Cursor::new(file));
        let mut reader = BamReader::from_reader(Path::new("mem.bam"), source, 1).unwrap();
        assert_eq!(reader.header.names, ["c1"]);
        assert_eq!(reader.header.lengths, [500]);
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.edit_distance(), Ok(Some(7)));
        assert!(reader.next_record().unwrap().is_none());

        let sam = Box::new(io::Cursor::new(b"@HD\tVN:1.6\n".to_vec()));
        let error = BamReader::from_reader(Path::new("mem.sam"), sam, 1)
            .err()
            .unwrap();
        assert!(error.to_string().contains("SAM text"), "{error}");
    }

    #[test]
    fn batches_are_bounded_by_inflated_size_and_keep_every_block() {
        // Blocks of zeros inflate 64 KiB from ~100 bytes: a batch of compressed bytes alone
        // would inflate to tens of MB.
        let block = bgzf_block(&vec![0u8; 65280]);
        let mut file = Vec::new();
        for _ in 0..300 {
            file.extend_from_slice(&block);
        }
        file.extend_from_slice(&bgzf_block(b""));
        let mut splitter = splitter_over(&file, "bounded");
        let (mut blocks, mut batches) = (0, 0);
        while let Some(batch) = splitter.next_batch(Vec::new()).unwrap() {
            let inflated: usize = batch.blocks.iter().map(|b| b.inflated).sum();
            assert!(inflated <= BATCH_INFLATED_BYTES + MAX_BLOCK_BYTES);
            let mut decompressor = Decompressor::new();
            let chunk = inflate_batch(Path::new("x"), &mut decompressor, &batch, Vec::new());
            assert_eq!(chunk.unwrap().data.len(), inflated);
            blocks += batch.blocks.len();
            batches += 1;
        }
        assert_eq!(blocks, 301);
        assert!(batches > 5);
    }

    #[test]
    fn truncation_is_reported_after_the_good_blocks() {
        let block = bgzf_block(&[7u8; 1000]);
        let mut file = Vec::new();
        for _ in 0..3 {
            file.extend_from_slice(&block);
        }
        file.truncate(file.len() - 10);
        let mut splitter = splitter_over(&file, "cut");
        let batch = splitter.next_batch(Vec::new()).unwrap().unwrap();
        assert_eq!(batch.blocks.len(), 2);
        let error = splitter.next_batch(Vec::new()).unwrap_err().to_string();
        assert!(error.contains("ends inside a BGZF block"), "{error}");
        assert!(splitter.next_batch(Vec::new()).unwrap().is_none());
        // Whole blocks but no end-of-file marker.
        let mut splitter = splitter_over(&block, "noeof");
        assert!(splitter.next_batch(Vec::new()).unwrap().is_some());
        let error = splitter.next_batch(Vec::new()).unwrap_err().to_string();
        assert!(error.contains("end-of-file marker"), "{error}");
    }

    #[test]
    fn block_size_found_among_other_subfields() {
        let extra = [b'X', b'Y', 1, 0, 9, b'B', b'C', 2, 0, 0x1b, 0x00];
        assert_eq!(bgzf_block_size(&extra), Some(0x1c));
        assert_eq!(bgzf_block_size(&[b'X', b'Y', 0, 0]), None);
    }

    fn record_with_tags(tags: &[u8]) -> Vec<u8> {
        let mut data = vec![0u8; 32];
        data[8] = 2; // name "r\0"
        data[12] = 1; // one CIGAR op
        data[16] = 3; // 3 bases
        data.extend_from_slice(b"r\0");
        data.extend_from_slice(&((3u32 << 4) | CIGAR_MATCH).to_le_bytes());
        data.extend_from_slice(&[0x12, 0x40]); // packed sequence
        data.extend_from_slice(&[30, 30, 30]);
        data.extend_from_slice(tags);
        data
    }

    #[test]
    fn nm_read_after_other_tags_of_every_kind() {
        let mut tags = Vec::new();
        tags.extend_from_slice(b"MDZ10A5\0");
        tags.extend_from_slice(b"XAA!");
        tags.extend_from_slice(b"BQB");
        tags.push(b's');
        tags.extend_from_slice(&2u32.to_le_bytes());
        tags.extend_from_slice(&[1, 0, 2, 0]);
        tags.extend_from_slice(b"NMs");
        tags.extend_from_slice(&(-3i16).to_le_bytes());
        let data = record_with_tags(&tags);
        let record = Record::parse(&data).expect("valid record");
        assert_eq!(record.edit_distance(), Ok(Some(-3)));
        assert_eq!(record.name(), b"r");
        assert_eq!(record.cigar().iter().collect::<Vec<_>>(), vec![(0, 3)]);
    }

    #[test]
    fn nm_absent_float_or_malformed() {
        let data = record_with_tags(b"ASC\x05");
        assert_eq!(Record::parse(&data).unwrap().edit_distance(), Ok(None));
        let mut tags = b"NMf".to_vec();
        tags.extend_from_slice(&1.5f32.to_le_bytes());
        let data = record_with_tags(&tags);
        assert_eq!(Record::parse(&data).unwrap().edit_distance(), Ok(Some(0)));
        let data = record_with_tags(b"MDZ10A5");
        assert_eq!(
            Record::parse(&data).unwrap().edit_distance(),
            Err(MalformedTags)
        );
    }

    #[test]
    fn record_shorter_than_its_fields_is_rejected() {
        let mut data = record_with_tags(b"");
        data.truncate(data.len() - 1);
        assert!(Record::parse(&data).is_none());
    }

    #[test]
    fn long_cigar_is_read_from_cg_tag() {
        let mut data = vec![0u8; 32];
        data[8] = 2;
        data[12] = 2;
        data[16] = 4;
        data.extend_from_slice(b"r\0");
        data.extend_from_slice(&((4u32 << 4) | CIGAR_SOFT_CLIP).to_le_bytes());
        data.extend_from_slice(&((5u32 << 4) | CIGAR_SKIP).to_le_bytes());
        data.extend_from_slice(&[0x11, 0x11]);
        data.extend_from_slice(&[30; 4]);
        data.extend_from_slice(b"CGBI");
        data.extend_from_slice(&2u32.to_le_bytes());
        data.extend_from_slice(&((2u32 << 4) | CIGAR_MATCH).to_le_bytes());
        data.extend_from_slice(&((2u32 << 4) | CIGAR_EQUAL).to_le_bytes());
        let record = Record::parse(&data).unwrap();
        assert_eq!(
            record.cigar().iter().collect::<Vec<_>>(),
            vec![(CIGAR_MATCH, 2), (CIGAR_EQUAL, 2)]
        );
    }

    #[test]
    fn sort_order_from_hd_line() {
        assert_eq!(
            header_sort_order(b"@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:a\tLN:5\n"),
            Some("coordinate".to_string())
        );
        assert_eq!(header_sort_order(b"@SQ\tSN:a\tLN:5\n"), None);
    }
}
