//! Counting the canonical k-mers of one record, fast.
//!
//! Records arrive as FASTA lines (copied into a small staging buffer that stays in the L1/L2
//! cache, line ends left out on the way) or as a whole FASTQ read, and are counted window by
//! window: a window of k letters is a k-mer when all its letters are
//! A/C/G/T (either case), so carrying the last k-1 letters over to the next fill keeps k-mers
//! that straddle two fills. Any byte that is not a sequence letter stops the record with its
//! position.
//!
//! The loop counts non-canonical k-mers, coded from the letters' ASCII bits (`kmer::ascii_code`),
//! into tables of 4^k entries (for k <= 4, (k+1)-mers at every other position into tables of
//! 4^(k+1), each standing for two k-mers), and folds the tables into the canonical columns once
//! per record: a k-mer and its reverse complement simply land in the same column. Stretches of
//! `CHUNK` windows whose letters are all ACGT take a branch-free path whose codes the compiler
//! computes with vector instructions; stretches with an N or an invalid byte take a byte-by-byte
//! path. Consecutive windows go to different tables, so a run of one k-mer (AAAA...) does not
//! chain every increment on the one before. Records too short to repay the fold of 4^k entries
//! per table are counted straight into their canonical row instead.

use crate::kmer::{ascii_code, ascii_order_columns, canonical_count, AMBIGUOUS, BASE_CODE, MAX_K};

/// Windows examined per step of the branch-free path.
const CHUNK: usize = 128;
/// Letters gathered before they are counted in one go.
pub const STAGING_LETTERS: usize = 16 << 10;
/// Room past `STAGING_LETTERS` for the last 32-byte store of the line-end removal.
const STAGING_SLACK: usize = 32;

/// Tables of k-mer counts side by side, so that a run of one k-mer does not chain each increment
/// on the one before. For k <= 4 the fast path counts (k+1)-mers (`PAIR_LANES`) and only the
/// byte-by-byte path, which uses one table, counts k-mers; k = 5 has two tables to fold, k = 6
/// one (4^k entries each: a larger k costs more to fold and repeats an entry less often).
const fn lanes_for(k: usize) -> usize {
    match k {
        5 => 2,
        _ => 1,
    }
}

/// Tables of (k+1)-mer counts side by side, for k <= 4: in stretches of ACGT only, a (k+1)-mer
/// at every other position holds two k-mers (its first k letters and its last k), so one
/// increment counts two k-mers; the fold splits them once per record. For larger k the tables
/// would not fit the L1 cache. Two tables measured faster than one and no slower than four.
const PAIR_LANES: usize = 2;

const fn paired(k: usize) -> bool {
    k <= 4
}

/// Entries of one (k+1)-mer table, sized for the largest paired k (4): a fixed size lets the
/// compiler see that a masked code is in bounds.
const PAIR_TABLE: usize = 1 << (2 * 5);

#[inline(always)]
fn is_acgt(byte: u8) -> bool {
    let upper = byte & 0xDF;
    (upper == b'A') | (upper == b'C') | (upper == b'G') | (upper == b'T')
}

/// Where the counting loop puts a window's k-mer code.
trait Tally {
    /// Takes (k+1)-mer codes that stand for two k-mers each (`add_pair`).
    const PAIRS: bool;
    fn add(&mut self, lane: usize, code: usize);
    fn add_pair(&mut self, lane: usize, code: usize);
}

/// Non-canonical counts: `lanes_for(k)` tables of `SIZE` = 4^k entries, and for k <= 4
/// `PAIR_LANES` tables of 4 * `SIZE` (k+1)-mer entries.
struct Tables<'a, const SIZE: usize> {
    counts: &'a mut [u32],
    pairs: &'a mut [[u32; PAIR_TABLE]; PAIR_LANES],
}

impl<const SIZE: usize> Tally for Tables<'_, SIZE> {
    const PAIRS: bool = true;

    #[inline(always)]
    fn add(&mut self, lane: usize, code: usize) {
        self.counts[lane * SIZE + (code & (SIZE - 1))] += 1;
    }

    #[inline(always)]
    fn add_pair(&mut self, lane: usize, code: usize) {
        self.pairs[lane][code & (4 * SIZE - 1)] += 1;
    }
}

/// Canonical counts, straight into the record's row.
struct Direct<'a, const SIZE: usize> {
    columns: &'a [u16],
    row: &'a mut [u32],
}

impl<const SIZE: usize> Tally for Direct<'_, SIZE> {
    const PAIRS: bool = false;

    #[inline(always)]
    fn add(&mut self, _lane: usize, code: usize) {
        self.row[self.columns[code & (SIZE - 1)] as usize] += 1;
    }

    fn add_pair(&mut self, _lane: usize, _code: usize) {
        unreachable!("PAIRS is false");
    }
}

/// Counts the windows that lie wholly inside `bytes`, one byte at a time; checks every byte.
/// Returns the number of k-mers, or the index (plus `offset`) of the first invalid byte.
#[inline(always)]
fn count_bytewise<const K: usize, const SIZE: usize>(
    bytes: &[u8],
    offset: usize,
    tally: &mut impl Tally,
) -> Result<u64, usize> {
    let mut code = 0usize;
    let mut run = 0usize;
    let mut counted = 0u64;
    for (i, &byte) in bytes.iter().enumerate() {
        let class = BASE_CODE[byte as usize];
        if class < AMBIGUOUS {
            code = ((code << 2) | ascii_code(byte) as usize) & (SIZE - 1);
            run += 1;
            if run >= K {
                tally.add(0, code);
                counted += 1;
            }
        } else if class == AMBIGUOUS {
            run = 0;
        } else {
            return Err(offset + i);
        }
    }
    Ok(counted)
}

/// K-mer codes of the `CHUNK` windows starting in `window` (which holds CHUNK + K - 1 letters,
/// all ACGT), as `u8` for k <= 4 and `u16` above. Each letter's digit is read straight from the
/// buffer, once per k-mer it is in: loads are cheap, and a staged digit array would be read back
/// at offsets the store forwarding cannot serve.
macro_rules! window_codes {
    ($window:expr, $k:expr, $int:ty) => {{
        let window: &[u8] = $window;
        let mut codes = [0 as $int; CHUNK];
        for t in 0..$k {
            let shift = 2 * ($k - 1 - t);
            for (code, &byte) in codes.iter_mut().zip(&window[t..t + CHUNK]) {
                *code |= (ascii_code(byte) as $int) << shift;
            }
        }
        codes
    }};
}

/// `count_windows` compiled for AVX2: twice the vector width for the k-mer codes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn count_windows_avx2<const K: usize, const SIZE: usize, T: Tally>(
    buffer: &[u8],
    tally: &mut T,
) -> Result<u64, usize> {
    count_windows::<K, SIZE, T>(buffer, tally)
}

/// Counts every window wholly inside `buffer` and checks every byte of it. Returns the number of
/// k-mers, or the index of the first byte that is not a sequence letter.
#[inline(always)]
fn count_windows<const K: usize, const SIZE: usize, T: Tally>(
    buffer: &[u8],
    tally: &mut T,
) -> Result<u64, usize> {
    let lanes = lanes_for(K);
    let windows = buffer.len().saturating_sub(K - 1);
    let mut counted = 0u64;
    let mut start = 0;
    while start + CHUNK <= windows {
        let window = &buffer[start..start + CHUNK + K - 1];
        let clean = window
            .iter()
            .fold(true, |clean, &byte| clean & is_acgt(byte));
        if clean {
            if K <= 4 {
                let codes = window_codes!(window, K, u8);
                if paired(K) && T::PAIRS {
                    // The k-mers at j and j+1 make the (k+1)-mer code[j] * 4 + last letter
                    // of code[j+1], for even j: 16-bit lanes of the codes, rearranged.
                    let mut pairs = [0u16; CHUNK / 2];
                    for (pair, two) in pairs.iter_mut().zip(codes.chunks_exact(2)) {
                        let two = u16::from_le_bytes([two[0], two[1]]);
                        *pair = ((two & 0xFF) << 2) | ((two >> 8) & 3);
                    }
                    for four in pairs.chunks_exact(4) {
                        let four = u64::from(four[0])
                            | (u64::from(four[1]) << 16)
                            | (u64::from(four[2]) << 32)
                            | (u64::from(four[3]) << 48);
                        for i in 0..4 {
                            tally.add_pair(i % PAIR_LANES, ((four >> (16 * i)) & 0xFFFF) as usize);
                        }
                    }
                    start += CHUNK;
                    counted += CHUNK as u64;
                    continue;
                }
                // Eight codes per register, taken apart by shifts: the compiler otherwise
                // spills each code to the stack and reads it back.
                for eight in codes.chunks_exact(8) {
                    let eight = u64::from_le_bytes(eight.try_into().expect("8 codes"));
                    for i in 0..8 {
                        tally.add(i % lanes, ((eight >> (8 * i)) & 0xFF) as usize);
                    }
                }
            } else {
                let codes = window_codes!(window, K, u16);
                for group in codes.chunks_exact(lanes) {
                    for (lane, &code) in group.iter().enumerate() {
                        tally.add(lane, code as usize);
                    }
                }
            }
            counted += CHUNK as u64;
        } else {
            counted += count_bytewise::<K, SIZE>(window, start, tally)?;
        }
        start += CHUNK;
    }
    Ok(counted + count_bytewise::<K, SIZE>(&buffer[start..], start, tally)?)
}

/// Copies letters of a record's sequence lines into `out`: `data` starts at a line start, and
/// copying begins at `data[from..]`. Leaves out "\n", "\r\n" and a "\r" at the very end of
/// `data`; a "\r" elsewhere, and a '>' inside a line, are kept (the letter check reports them).
/// Stops at the first '>' that starts a line (the next record's header), at the end of `data`,
/// or when `out` is full. Returns where it stopped in `data`, the bytes written, and whether the
/// record ends there. One pass finds both the line ends and the record's end.
fn copy_letters(data: &[u8], from: usize, out: &mut [u8]) -> (usize, usize, bool) {
    let (mut read, mut written) = (from, 0);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_prefetch,
            _mm_set1_epi8, _mm_storeu_si128, _MM_HINT_T0,
        };
        // Sixteen bytes at a time (SSE2, always there on x86_64): copy them whole, then step
        // past the first line end or '>' among them, if any.
        while read + 16 <= data.len() && written + 16 <= out.len() {
            // SAFETY: both ranges of 16 bytes were checked to lie inside their slices; a
            // prefetch (as in `copy_letters_avx2`) is only a hint and never faults.
            let special = unsafe {
                _mm_prefetch::<_MM_HINT_T0>(
                    data.as_ptr().wrapping_add(read + PREFETCH_AHEAD).cast(),
                );
                let bytes = _mm_loadu_si128(data.as_ptr().add(read).cast());
                _mm_storeu_si128(out.as_mut_ptr().add(written).cast(), bytes);
                let newline = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\n' as i8));
                let carriage = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\r' as i8));
                let header = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'>' as i8));
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(newline, carriage), header))
            };
            if special == 0 {
                read += 16;
                written += 16;
                continue;
            }
            let letters = special.trailing_zeros() as usize;
            read += letters;
            written += letters;
            let Some((step, kept)) = special_at(data, read) else {
                return (read, written, true);
            };
            if kept {
                out[written] = data[read];
                written += 1;
            }
            read += step;
        }
    }
    while read < data.len() && written < out.len() {
        let byte = data[read];
        if byte == b'\n' || byte == b'\r' || byte == b'>' {
            let Some((step, kept)) = special_at(data, read) else {
                return (read, written, true);
            };
            if kept {
                out[written] = byte;
                written += 1;
            }
            read += step;
        } else {
            out[written] = byte;
            written += 1;
            read += 1;
        }
    }
    (read, written, read == data.len())
}

/// How far ahead of the copy the file's bytes are asked for.
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = 2048;

/// `copy_letters` 32 bytes at a time, for CPUs with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_letters_avx2(data: &[u8], from: usize, out: &mut [u8]) -> (usize, usize, bool) {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_storeu_si256, _mm_prefetch, _MM_HINT_T0,
    };
    let (mut read, mut written) = (from, 0);
    while read + 32 <= data.len() && written + 32 <= out.len() {
        // Each load's address depends on the last one's bytes, so a load that misses the L1
        // cache stalls the loop: ask for the bytes a few lines ahead (a hint; it never faults).
        _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().wrapping_add(read + PREFETCH_AHEAD).cast());
        // SAFETY: both ranges of 32 bytes were checked to lie inside their slices.
        let bytes = unsafe { _mm256_loadu_si256(data.as_ptr().add(read).cast()) };
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(written).cast(), bytes) };
        let newline = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'\n' as i8));
        let carriage = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'\r' as i8));
        let header = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'>' as i8));
        let special =
            _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(newline, carriage), header))
                as u32;
        if special == 0 {
            read += 32;
            written += 32;
            continue;
        }
        let letters = special.trailing_zeros() as usize;
        read += letters;
        written += letters;
        let Some((step, kept)) = special_at(data, read) else {
            return (read, written, true);
        };
        if kept {
            out[written] = data[read];
            written += 1;
        }
        read += step;
    }
    let (stop, more_written, ended) = copy_letters(data, read, &mut out[written..]);
    (stop, written + more_written, ended)
}

/// At a '\n', '\r' or '>' of `data`: None if it is a '>' that starts a line (a header), else
/// how many bytes to step over and whether the byte stays a letter.
#[inline(always)]
fn special_at(data: &[u8], at: usize) -> Option<(usize, bool)> {
    if data[at] == b'>' {
        if at == 0 || data[at - 1] == b'\n' {
            return None;
        }
        return Some((1, true));
    }
    Some(line_end_at(data, at))
}

/// At a '\n' or '\r' of `lines`: how many bytes to step over, and whether it is a stray '\r'
/// that stays a letter.
#[inline(always)]
fn line_end_at(lines: &[u8], at: usize) -> (usize, bool) {
    match (lines[at], lines.get(at + 1)) {
        (b'\n', _) => (1, false),
        (_, Some(b'\n')) => (2, false),
        (_, None) => (1, false),
        _ => (1, true),
    }
}

/// Counts the canonical k-mers of one record at a time; reused across records.
pub struct KmerCounter {
    k: usize,
    /// `ascii_code` k-mer code -> canonical column.
    columns: Vec<u16>,
    /// Canonical column -> the `ascii_code` codes of its two k-mers, and a mask that keeps the
    /// second one's count (zero for a palindrome, whose one code is given twice).
    column_codes: Vec<(u16, u16, u32)>,
    /// `lanes_for(k)` tables of 4^k non-canonical counts; all zero between records.
    tables: Vec<u32>,
    /// `PAIR_LANES` tables of (k+1)-mer counts for k <= 4 (the first 4^(k+1) entries used, else
    /// none); zero too.
    pairs: Box<[[u32; PAIR_TABLE]; PAIR_LANES]>,
    /// Letters of the record not yet counted (`staging[..staged]`), after the last k-1 counted.
    staging: Box<[u8]>,
    staged: usize,
    /// Letters of the record that come before `staging[0]`.
    staged_before: u64,
    /// This record is counted straight into its row rather than into `tables`.
    direct: bool,
    /// The CPU runs AVX2 instructions (always false off x86_64).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    avx2: bool,
    counted: u64,
}

impl KmerCounter {
    pub fn new(k: usize) -> Self {
        assert!((1..=MAX_K).contains(&k), "k checked by the caller");
        let columns = ascii_order_columns(k);
        let mut column_codes = vec![(u16::MAX, u16::MAX, 0); canonical_count(k)];
        for (code, &column) in columns.iter().enumerate() {
            let entry = &mut column_codes[column as usize];
            if entry.0 == u16::MAX {
                *entry = (code as u16, code as u16, 0);
            } else {
                *entry = (entry.0, code as u16, u32::MAX);
            }
        }
        KmerCounter {
            k,
            columns,
            column_codes,
            tables: vec![0; lanes_for(k) << (2 * k)],
            pairs: Box::new([[0; PAIR_TABLE]; PAIR_LANES]),
            staging: vec![0; STAGING_LETTERS + STAGING_SLACK].into_boxed_slice(),
            staged: 0,
            staged_before: 0,
            direct: true,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            avx2: false,
            counted: 0,
        }
    }

    /// Number of canonical columns, the length of a row.
    pub fn width(&self) -> usize {
        canonical_count(self.k)
    }

    /// Starts a record of at most `letters_bound` letters.
    pub fn begin(&mut self, letters_bound: usize) {
        self.staged = 0;
        self.staged_before = 0;
        self.counted = 0;
        self.direct = letters_bound < self.direct_below();
    }

    /// Below this length the per-record fold of the tables costs more than direct counting (an
    /// extra lookup per k-mer) saves.
    fn direct_below(&self) -> usize {
        let pair_entries = if paired(self.k) {
            PAIR_LANES * 4 * self.columns.len()
        } else {
            0
        };
        (self.tables.len() + pair_entries) / 2
    }

    /// Adds the next letters of the record. `row` (zeroed at `begin`) receives canonical counts.
    /// On an invalid byte, returns its 0-based position in the record and abandons the record.
    pub fn push(&mut self, mut letters: &[u8], row: &mut [u32]) -> Result<(), u64> {
        while !letters.is_empty() {
            let take = (STAGING_LETTERS - self.staged).min(letters.len());
            self.staging[self.staged..self.staged + take].copy_from_slice(&letters[..take]);
            self.staged += take;
            letters = &letters[take..];
            if self.staged >= STAGING_LETTERS {
                self.count_full_staging(row)?;
            }
        }
        Ok(())
    }

    /// Adds the letters of a record's lines as they are in a FASTA file: line ends ("\n",
    /// "\r\n", and a "\r" that ends `lines`) are left out, as `seqio::for_each_line`
    /// does, without one call per line. `lines` holds no '>' that starts a line.
    pub fn push_lines(&mut self, lines: &[u8], row: &mut [u32]) -> Result<(), u64> {
        let read = self.push_record_lines(lines, row)?;
        debug_assert_eq!(read, lines.len(), "no header inside the lines");
        Ok(())
    }

    /// Adds the letters of the sequence lines that start `data`, as `push_lines` does, up to
    /// the first '>' that starts a line (the next record's header) or the end of `data`: the
    /// record's end is found in the same pass. Returns the length of the record's lines in
    /// `data`.
    pub fn push_record_lines(&mut self, data: &[u8], row: &mut [u32]) -> Result<usize, u64> {
        let mut read = 0;
        loop {
            let out = &mut self.staging[self.staged..];
            #[cfg(target_arch = "x86_64")]
            let (stop, written, ended) = if self.avx2 {
                // SAFETY: the CPU was found to support AVX2 when the counter was made.
                unsafe { copy_letters_avx2(data, read, out) }
            } else {
                copy_letters(data, read, out)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let (stop, written, ended) = copy_letters(data, read, out);
            self.staged += written;
            read = stop;
            if self.staged >= STAGING_LETTERS {
                self.count_full_staging(row)?;
            }
            if ended {
                return Ok(read);
            }
        }
    }

    /// Letters of the record so far.
    pub fn letters(&self) -> u64 {
        self.staged_before + self.staged as u64
    }

    /// Counts the staged letters and keeps the last k-1, which start the next k-mers.
    fn count_full_staging(&mut self, row: &mut [u32]) -> Result<(), u64> {
        self.count_staged(row)?;
        let keep = self.k - 1;
        let spent = self.staged - keep;
        self.staging.copy_within(spent..self.staged, 0);
        self.staged = keep;
        self.staged_before += spent as u64;
        Ok(())
    }

    /// Ends the record: its k-mer counts are in `row`; returns how many k-mers it had.
    pub fn finish(&mut self, row: &mut [u32]) -> Result<u64, u64> {
        if self.staged_before == 0 {
            // Nothing counted yet: the record's length is known now, whatever `begin` was told.
            self.direct = self.staged < self.direct_below();
        }
        self.count_staged(row)?;
        if !self.direct {
            self.fold_tables(row);
        }
        Ok(self.counted)
    }

    /// Counts a record held in one piece, without staging it; `row` must be zeroed.
    pub fn count_record(&mut self, sequence: &[u8], row: &mut [u32]) -> Result<u64, u64> {
        self.begin(sequence.len());
        let counted = self
            .count(sequence, row)
            .map_err(|index| self.abandon(index))?;
        if !self.direct {
            self.fold_tables(row);
        }
        Ok(counted)
    }

    fn count_staged(&mut self, row: &mut [u32]) -> Result<(), u64> {
        let staging = std::mem::take(&mut self.staging);
        let result = self.count(&staging[..self.staged], row);
        self.staging = staging;
        match result {
            Ok(counted) => {
                self.counted += counted;
                Ok(())
            }
            Err(index) => Err(self.abandon(index)),
        }
    }

    /// Clears what the record left in the tables; returns its error position in the record.
    fn abandon(&mut self, index: usize) -> u64 {
        self.tables.fill(0);
        self.pairs.iter_mut().for_each(|table| table.fill(0));
        self.staged_before + index as u64
    }

    fn count(&mut self, buffer: &[u8], row: &mut [u32]) -> Result<u64, usize> {
        match self.k {
            1 => self.count_k::<1, 4>(buffer, row),
            2 => self.count_k::<2, 16>(buffer, row),
            3 => self.count_k::<3, 64>(buffer, row),
            4 => self.count_k::<4, 256>(buffer, row),
            5 => self.count_k::<5, 1024>(buffer, row),
            6 => self.count_k::<6, 4096>(buffer, row),
            _ => unreachable!("k checked at construction"),
        }
    }

    fn count_k<const K: usize, const SIZE: usize>(
        &mut self,
        buffer: &[u8],
        row: &mut [u32],
    ) -> Result<u64, usize> {
        if self.direct {
            let mut tally = Direct::<SIZE> {
                columns: &self.columns[..SIZE],
                row,
            };
            Self::count_with::<K, SIZE, _>(self.avx2, buffer, &mut tally)
        } else {
            let mut tally = Tables::<SIZE> {
                counts: &mut self.tables[..lanes_for(K) * SIZE],
                pairs: &mut self.pairs,
            };
            Self::count_with::<K, SIZE, _>(self.avx2, buffer, &mut tally)
        }
    }

    #[inline(always)]
    fn count_with<const K: usize, const SIZE: usize, T: Tally>(
        avx2: bool,
        buffer: &[u8],
        tally: &mut T,
    ) -> Result<u64, usize> {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU was found to support AVX2 when the counter was made.
            return unsafe { count_windows_avx2::<K, SIZE, T>(buffer, tally) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = avx2;
        count_windows::<K, SIZE, T>(buffer, tally)
    }

    fn fold_tables(&mut self, row: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU was found to support AVX2 when the counter was made.
            return unsafe { self.fold_tables_avx2(row) };
        }
        self.fold_tables_portable(row);
    }

    /// `fold_tables_portable` compiled for AVX2: the sums over tables take half the instructions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fold_tables_avx2(&mut self, row: &mut [u32]) {
        self.fold_tables_portable(row);
    }

    #[inline(always)]
    fn fold_tables_portable(&mut self, row: &mut [u32]) {
        let size = self.columns.len();
        if paired(self.k) {
            let (first, rest) = self.pairs.split_at_mut(1);
            let pairs = &mut first[0][..4 * size];
            for other in rest {
                for (total, count) in pairs.iter_mut().zip(&mut other[..4 * size]) {
                    *total += *count;
                    *count = 0;
                }
            }
            // A (k+1)-mer's first k letters: its code without the last digit; its last k
            // letters: the code without the first digit.
            let singles = &mut self.tables[..size];
            for (single, four) in singles.iter_mut().zip(pairs.chunks_exact(4)) {
                *single += four.iter().sum::<u32>();
            }
            for block in pairs.chunks_exact(size) {
                for (single, &count) in singles.iter_mut().zip(block) {
                    *single += count;
                }
            }
            pairs.fill(0);
        }
        let (first, rest) = self.tables.split_at_mut(size);
        for other in rest.chunks_exact_mut(size) {
            for (total, count) in first.iter_mut().zip(other.iter_mut()) {
                *total += *count;
                *count = 0;
            }
        }
        // Each column gathers its k-mer and the reverse complement's (a palindrome's only once):
        // fewer, independent updates than adding each of the 4^k entries to its column.
        for (total, &(code, complement, mask)) in row.iter_mut().zip(&self.column_codes) {
            *total += first[code as usize] + (first[complement as usize] & mask);
        }
        first.fill(0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kmer::{canonical_columns, reverse_complement};

    /// Window-by-window canonical counter without rolling state, tables or staging.
    pub(crate) fn naive(sequence: &[u8], k: usize) -> Vec<u32> {
        let columns = canonical_columns(k);
        let mut row = vec![0u32; canonical_count(k)];
        for window in sequence.windows(k) {
            let mut code = 0u32;
            let mut valid = true;
            for &byte in window {
                let base = BASE_CODE[byte as usize];
                valid &= base < AMBIGUOUS;
                code = (code << 2) | (base as u32 & 3);
            }
            if valid {
                let canonical = code.min(reverse_complement(code, k));
                row[columns[canonical as usize] as usize] += 1;
            }
        }
        row
    }

    /// Mostly ACGT with some N runs and lower case, long enough to cross chunks and stagings.
    fn letters() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(proptest::sample::select(b"ACGTacgtNRn".to_vec()), 0..400),
            proptest::collection::vec(proptest::sample::select(b"ACGT".to_vec()), 0..3000),
            (
                proptest::collection::vec(
                    proptest::sample::select(b"ACGTacgt".to_vec()),
                    0..40_000
                ),
                proptest::collection::vec((0usize..40_000, 1usize..8), 0..4),
            )
                .prop_map(|(mut sequence, gaps)| {
                    for (start, length) in gaps {
                        for i in start..(start + length).min(sequence.len()) {
                            sequence[i] = b'N';
                        }
                    }
                    sequence
                }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn whole_records_count_every_kmer_once(sequence in letters(), k in 1usize..=MAX_K) {
            let mut counter = KmerCounter::new(k);
            let expected = naive(&sequence, k);
            // With AVX2 where the CPU has it, and the baseline build of the same loop.
            for avx2 in [counter.avx2, false] {
                counter.avx2 = avx2;
                let mut row = vec![0u32; counter.width()];
                let counted = counter.count_record(&sequence, &mut row).unwrap();
                proptest::prop_assert_eq!(&row, &expected);
                proptest::prop_assert_eq!(counted, expected.iter().map(|&c| c as u64).sum::<u64>());
            }
        }

        #[test]
        fn pieces_count_like_the_whole(
            sequence in letters(),
            cuts in proptest::collection::vec(0usize..40_000, 0..30),
            k in 1usize..=MAX_K,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(sequence.len())).collect();
            cuts.push(0);
            cuts.push(sequence.len());
            cuts.sort_unstable();
            let mut counter = KmerCounter::new(k);
            // A long record after a short one: the tables must come back clean.
            for bound in [0, sequence.len(), usize::MAX] {
                let mut row = vec![0u32; counter.width()];
                counter.begin(bound);
                for piece in cuts.windows(2) {
                    counter.push(&sequence[piece[0]..piece[1]], &mut row).unwrap();
                }
                let counted = counter.finish(&mut row).unwrap();
                let expected = naive(&sequence, k);
                proptest::prop_assert_eq!(&row, &expected);
                proptest::prop_assert_eq!(counted, expected.iter().map(|&c| c as u64).sum::<u64>());
            }
        }

        /// Line ends left out in place and the record's end found, against the line reader's
        /// split into lines.
        #[test]
        fn line_ends_are_left_out_like_the_line_reader(
            data in proptest::collection::vec(
                proptest::sample::select(b"ACGTACGTACGTn\r\n\n".to_vec()),
                0..40_000,
            ),
            headers in proptest::collection::vec(0usize..40_000, 0..4),
            out_sizes in proptest::collection::vec(1usize..100, 1..8),
            k in 1usize..=MAX_K,
            bounded in proptest::bool::ANY,
        ) {
            // A few '>', some of them at a line start (a header, which ends the record).
            let mut data = data;
            for at in headers {
                if at <= data.len() {
                    data.insert(at, b'>');
                }
            }
            let end = (0..data.len())
                .find(|&i| data[i] == b'>' && (i == 0 || data[i - 1] == b'\n'))
                .unwrap_or(data.len());
            let mut letters = Vec::new();
            crate::seqio::for_each_line(&data[..end], |line| {
                letters.extend_from_slice(line);
                Ok::<(), ()>(())
            })
            .unwrap();
            // Output buffers of any size, down to one byte.
            let mut copied = Vec::new();
            let mut read = 0;
            for size in out_sizes.iter().cycle() {
                let mut out = vec![0u8; *size];
                let (stop, written, ended) = copy_letters(&data, read, &mut out);
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut wide = vec![0u8; *size];
                    // SAFETY: AVX2 checked just above.
                    let wide_result = unsafe { copy_letters_avx2(&data, read, &mut wide) };
                    proptest::prop_assert_eq!(wide_result, (stop, written, ended));
                    proptest::prop_assert_eq!(&wide[..written], &out[..written]);
                }
                proptest::prop_assert!(stop > read || ended);
                copied.extend_from_slice(&out[..written]);
                read = stop;
                if ended {
                    break;
                }
            }
            proptest::prop_assert_eq!(read, end);
            proptest::prop_assert_eq!(&copied, &letters);
            let mut counter = KmerCounter::new(k);
            let mut row = vec![0u32; counter.width()];
            counter.begin(if bounded { end } else { usize::MAX });
            let counted = counter.push_record_lines(&data, &mut row).and_then(|read| {
                assert_eq!(read, end, "the record's end");
                counter.finish(&mut row)
            });
            match letters.iter().position(|&b| b == b'\r' || b == b'>') {
                Some(stray) => proptest::prop_assert_eq!(counted, Err(stray as u64)),
                None => {
                    let expected = naive(&letters, k);
                    proptest::prop_assert_eq!(counted, Ok(expected.iter().map(|&c| c as u64).sum::<u64>()));
                    proptest::prop_assert_eq!(row, expected);
                    proptest::prop_assert_eq!(counter.letters(), letters.len() as u64);
                }
            }
        }

        #[test]
        fn first_invalid_byte_is_reported(
            sequence in letters(),
            bad in 0usize..40_000,
            later in proptest::option::of(0usize..40_000),
            byte in proptest::sample::select(b"\t\n\r >0\x00\xff".to_vec()),
            k in 1usize..=MAX_K,
        ) {
            proptest::prop_assume!(!sequence.is_empty());
            let mut sequence = sequence;
            let bad = bad % sequence.len();
            sequence[bad] = byte;
            if let Some(later) = later {
                let later = bad + later % (sequence.len() - bad);
                sequence[later] = 0;
            }
            let mut counter = KmerCounter::new(k);
            let mut row = vec![0u32; counter.width()];
            proptest::prop_assert_eq!(counter.count_record(&sequence, &mut row), Err(bad as u64));
            let mut row = vec![0u32; counter.width()];
            counter.begin(usize::MAX);
            let pushed = sequence
                .chunks(81)
                .try_for_each(|piece| counter.push(piece, &mut row))
                .and_then(|()| counter.finish(&mut row).map(|_| ()));
            proptest::prop_assert_eq!(pushed, Err(bad as u64));
            // The counter is usable again after an error.
            let clean = b"ACGTTGCAACGTAAAACCCC".repeat(200);
            let mut row = vec![0u32; counter.width()];
            counter.count_record(&clean, &mut row).unwrap();
            proptest::prop_assert_eq!(row, naive(&clean, k));
        }
    }
}
