//! Canonical k-mer composition per record, in parallel over blocks (FASTA) or batches (FASTQ)
//! of records.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::errors::{CoreError, CoreResult};
use crate::kmer::{canonical_count, MAX_K};
use crate::kmer_count::{KmerCounter, STAGING_LETTERS};
use crate::seqio::rules::{SeenNames, EMPTY_RECORD, NO_RECORDS};
use crate::seqio::{
    invalid_character, letter_at, letter_count, lines_letters, open_sequences, record_name,
    sequences_from_reader, FastaBlock, FastaBlockReader, FastaRecords, ReadStats, SequenceBatch,
    SequenceInput, SequenceReader,
};

#[derive(Debug, Clone, Copy)]
pub struct CompositionOptions {
    pub k: usize,
    pub min_length: u64,
    /// Worker threads; None uses every available core.
    pub threads: Option<usize>,
    /// Frequencies (rows sum to 1) when true, raw counts when false.
    pub normalize: bool,
}

impl Default for CompositionOptions {
    fn default() -> Self {
        CompositionOptions {
            k: 4,
            min_length: 0,
            threads: None,
            normalize: true,
        }
    }
}

#[derive(Debug)]
pub enum CompositionMatrix {
    Frequencies(Vec<f32>),
    Counts(Vec<u32>),
}

/// Row-major matrix (records x canonical k-mers) with the records' names, lengths and the number
/// of valid k-mers each had (0 flags a record with no countable k-mer).
#[derive(Debug)]
pub struct Composition {
    pub columns: usize,
    pub matrix: CompositionMatrix,
    pub names: Vec<u8>,
    pub name_ends: Vec<usize>,
    pub lengths: Vec<i64>,
    pub kmer_totals: Vec<i64>,
    pub stats: ReadStats,
}

impl Composition {
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.name_ends[i - 1] };
        &self.names[start..self.name_ends[i]]
    }
}

/// The kept records of one batch or block, ready to append to the output.
#[derive(Default)]
struct BatchResult {
    /// Row-major counts while the records are counted ...
    counts: Vec<u32>,
    /// ... and the output's matrix kind made from them by the worker (`seal`).
    matrix: Option<CompositionMatrix>,
    names: Vec<u8>,
    name_lengths: Vec<usize>,
    lengths: Vec<i64>,
    kmer_totals: Vec<i64>,
}

impl BatchResult {
    /// Turns the counts into the output's matrix kind (outside the assembler's lock).
    fn seal(&mut self, width: usize, normalize: bool) {
        let counts = std::mem::take(&mut self.counts);
        self.matrix = Some(if normalize {
            Self::frequencies(counts, &self.kmer_totals, width)
        } else {
            CompositionMatrix::Counts(counts)
        });
    }

    fn frequencies(counts: Vec<u32>, kmer_totals: &[i64], width: usize) -> CompositionMatrix {
        let mut frequencies = vec![0f32; counts.len()];
        for ((out, row), &total) in frequencies
            .chunks_exact_mut(width)
            .zip(counts.chunks_exact(width))
            .zip(kmer_totals)
        {
            if total > 0 {
                let scale = 1.0 / total as f64;
                for (o, &c) in out.iter_mut().zip(row) {
                    *o = (c as f64 * scale) as f32;
                }
            }
        }
        CompositionMatrix::Frequencies(frequencies)
    }
}

/// Counts the records of a line reader's batch (FASTQ).
fn featurize_batch(
    batch: &SequenceBatch,
    counter: &mut KmerCounter,
    path: &Path,
) -> CoreResult<BatchResult> {
    let width = counter.width();
    let rows = batch.len();
    let mut result = BatchResult {
        counts: vec![0u32; rows * width],
        lengths: Vec::with_capacity(rows),
        kmer_totals: Vec::with_capacity(rows),
        ..BatchResult::default()
    };
    for (i, row) in result.counts.chunks_exact_mut(width).enumerate() {
        let sequence = batch.sequence(i);
        let counted = counter.count_record(sequence, row).map_err(|position| {
            let message = invalid_character(sequence[position as usize], position);
            CoreError::format(path, batch.record_numbers[i], message)
        })?;
        result.lengths.push(sequence.len() as i64);
        result.kmer_totals.push(counted as i64);
    }
    result.name_lengths = (0..rows).map(|i| batch.name(i).len()).collect();
    result.names = batch.names.clone();
    Ok(result)
}

/// What a worker found in one FASTA block.
#[derive(Default)]
struct BlockResult {
    kept: BatchResult,
    /// Names of every record whose header was read, kept or not, for the duplicate check.
    names: Vec<u8>,
    name_ends: Vec<usize>,
    records_too_short: u64,
    bases: u64,
    /// The first problem in the block: 0-based record index in the block, and the words.
    error: Option<(u64, String)>,
}

impl BlockResult {
    /// Records the name of the block's record `index` from its header line and returns where
    /// it starts in `names`; None (with the error recorded) when the header has no valid name.
    fn push_name(&mut self, header: &[u8], index: u64) -> Option<usize> {
        match record_name(header) {
            Ok(name) => {
                let start = self.names.len();
                self.names.extend_from_slice(name);
                self.name_ends.push(self.names.len());
                Some(start)
            }
            Err(problem) => {
                self.error = Some((index, problem.to_string()));
                None
            }
        }
    }

    /// Ends the block's record `index`, whose name starts at `name_start` in `names` and whose
    /// counts row starts at `row_start`: a record of fewer than `min_length` letters is checked
    /// by the reader's rules and dropped; a longer one is kept, its row finished by `count`
    /// (whose letter check is the rules' too), unless `count` reports an invalid character at a
    /// position of `lines`. A problem becomes the block's error. Returns false after an error.
    #[allow(clippy::too_many_arguments)]
    fn end_record(
        &mut self,
        index: u64,
        name_start: usize,
        row_start: usize,
        letters: u64,
        min_length: u64,
        lines: &[u8],
        count: impl FnOnce(&mut [u32]) -> Result<u64, u64>,
    ) -> bool {
        self.bases += letters;
        let kept = &mut self.kept;
        if letters < min_length || letters == 0 {
            kept.counts.truncate(row_start);
            // Never counted, so never checked yet: a short record must be valid all the same.
            let problem = match lines_letters(lines) {
                Err((position, byte)) => Some(invalid_character(byte, position)),
                Ok(0) => Some(EMPTY_RECORD.to_string()),
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                self.error = Some((index, problem));
                return false;
            }
            self.records_too_short += 1;
            return true;
        }
        match count(&mut kept.counts[row_start..]) {
            Ok(counted) => {
                let name = &self.names[name_start..];
                kept.names.extend_from_slice(name);
                kept.name_lengths.push(name.len());
                kept.lengths.push(letters as i64);
                kept.kmer_totals.push(counted as i64);
                true
            }
            Err(position) => {
                let byte = letter_at(lines, position).expect("position in the record");
                self.error = Some((index, invalid_character(byte, position)));
                false
            }
        }
    }
}

/// Parses and counts the records of one FASTA block.
fn featurize_block(block: &FastaBlock, counter: &mut KmerCounter, min_length: u64) -> BlockResult {
    if block.read_error.is_none() && min_length <= STAGING_LETTERS as u64 {
        return featurize_block_in_one_pass(block.content(), counter, min_length);
    }
    let width = counter.width();
    let mut result = BlockResult::default();
    let content = block.content();
    let mut records = FastaRecords::new(content).peekable();
    let mut index = 0u64;
    while let Some(record) = records.next() {
        let cut_short = block.read_error.is_some() && records.peek().is_none();
        if cut_short {
            // The read failed inside this record: the error is at the record being read.
            let problem = block.read_error.clone().expect("checked above");
            result.error = Some((index + u64::from(record.header_complete), problem));
            return result;
        }
        let Some(name_start) = result.push_name(record.header, index) else {
            return result;
        };
        // A record shorter than the cut-off is measured and checked, not counted.
        let lines = record.lines;
        let row_start = result.kept.counts.len();
        let (letters, counted) = if (lines.len() as u64) < min_length {
            (letter_count(lines), Ok(0))
        } else {
            let kept = &mut result.kept;
            kept.counts.resize(row_start + width, 0);
            let row = &mut kept.counts[row_start..];
            counter.begin(lines.len());
            let counted = counter
                .push_lines(lines, row)
                .and_then(|()| counter.finish(row));
            let letters = if counted.is_ok() {
                counter.letters()
            } else {
                letter_count(lines)
            };
            (letters, counted)
        };
        if !result.end_record(
            index,
            name_start,
            row_start,
            letters,
            min_length,
            lines,
            |_| counted,
        ) {
            return result;
        }
        index += 1;
    }
    if let Some(problem) = &block.read_error {
        // The read failed right at the end of the block's last whole record.
        result.error = Some((index, problem.clone()));
    }
    result
}

/// `featurize_block` for a block read without error and a cut-off that fits the counter's
/// staging: each record's end is found while its letters are copied for counting, so the block
/// is read once. Whether a record is long enough is known when it ends; until then its letters
/// are only staged, and a record whose staging fills (and is counted, and checked) has more
/// letters than the cut-off.
fn featurize_block_in_one_pass(
    content: &[u8],
    counter: &mut KmerCounter,
    min_length: u64,
) -> BlockResult {
    debug_assert!(min_length <= STAGING_LETTERS as u64);
    let width = counter.width();
    let mut result = BlockResult::default();
    let mut position = 0;
    let mut index = 0u64;
    // Every record starts at a '>' (the block's first byte, then where the last record ended).
    while position < content.len() {
        let header_start = position + 1;
        let header_end = memchr::memchr(b'\n', &content[header_start..])
            .map_or(content.len(), |i| header_start + i);
        let mut header = &content[header_start..header_end];
        if let [rest @ .., b'\r'] = header {
            header = rest;
        }
        let Some(name_start) = result.push_name(header, index) else {
            return result;
        };
        let data = &content[(header_end + 1).min(content.len())..];
        let kept = &mut result.kept;
        let row_start = kept.counts.len();
        kept.counts.resize(row_start + width, 0);
        let row = &mut kept.counts[row_start..];
        counter.begin(usize::MAX);
        let lines = match counter.push_record_lines(data, row) {
            Ok(length) => &data[..length],
            Err(position) => {
                let byte = letter_at(data, position).expect("position in the record");
                result.error = Some((index, invalid_character(byte, position)));
                return result;
            }
        };
        position = content.len() - data.len() + lines.len();
        let letters = counter.letters();
        let finish = |row: &mut [u32]| counter.finish(row);
        if !result.end_record(
            index, name_start, row_start, letters, min_length, lines, finish,
        ) {
            return result;
        }
        index += 1;
    }
    result
}

/// Appends results in file order, whatever order the workers finish them in.
struct Assembler {
    next: u64,
    pending: BTreeMap<u64, BlockResult>,
    out: Composition,
    seen_names: SeenNames,
    /// Set at the first problem in file order; nothing after it is appended.
    error: Option<CoreError>,
}

impl Assembler {
    fn new(width: usize, normalize: bool) -> Self {
        Assembler {
            next: 0,
            pending: BTreeMap::new(),
            out: Composition {
                columns: width,
                matrix: if normalize {
                    CompositionMatrix::Frequencies(Vec::new())
                } else {
                    CompositionMatrix::Counts(Vec::new())
                },
                names: Vec::new(),
                name_ends: Vec::new(),
                lengths: Vec::new(),
                kmer_totals: Vec::new(),
                stats: ReadStats::default(),
            },
            seen_names: SeenNames::default(),
            error: None,
        }
    }

    /// Takes a FASTA block's result; checks names for duplicates across the whole file.
    fn push_block(&mut self, index: u64, result: BlockResult, path: &Path) {
        self.pending.insert(index, result);
        while let Some(result) = self.pending.remove(&self.next) {
            self.next += 1;
            if self.error.is_some() {
                continue;
            }
            let first_record = self.out.stats.records + 1;
            let mut start = 0;
            for (i, &end) in result.name_ends.iter().enumerate() {
                let name = &result.names[start..end];
                start = end;
                if let Err(problem) = self.seen_names.insert(name) {
                    self.error = Some(CoreError::format(path, first_record + i as u64, problem));
                    break;
                }
            }
            if self.error.is_some() {
                continue;
            }
            if let Some((record, problem)) = result.error {
                self.error = Some(CoreError::format(path, first_record + record, problem));
                continue;
            }
            let stats = &mut self.out.stats;
            let kept = result.kept.lengths.len() as u64;
            stats.records += kept + result.records_too_short;
            stats.records_kept += kept;
            stats.records_too_short += result.records_too_short;
            stats.bases += result.bases;
            stats.bases_kept += result.kept.lengths.iter().sum::<i64>() as u64;
            self.append(result.kept);
        }
    }

    /// Takes a FASTQ batch's result (the line reader has checked its names).
    fn push_batch(&mut self, index: u64, kept: BatchResult) {
        let result = BlockResult {
            kept,
            ..BlockResult::default()
        };
        self.pending.insert(index, result);
        while let Some(result) = self.pending.remove(&self.next) {
            self.next += 1;
            self.append(result.kept);
        }
    }

    fn append(&mut self, kept: BatchResult) {
        let out = &mut self.out;
        let part = kept.matrix.expect("sealed by the worker");
        match (&mut out.matrix, part) {
            (CompositionMatrix::Frequencies(all), CompositionMatrix::Frequencies(part)) => {
                all.extend_from_slice(&part)
            }
            (CompositionMatrix::Counts(all), CompositionMatrix::Counts(part)) => {
                all.extend_from_slice(&part)
            }
            _ => unreachable!("all batches share one matrix kind"),
        }
        out.names.extend_from_slice(&kept.names);
        let mut end = out.name_ends.last().copied().unwrap_or(0);
        for length in kept.name_lengths {
            end += length;
            out.name_ends.push(end);
        }
        out.lengths.extend_from_slice(&kept.lengths);
        out.kmer_totals.extend_from_slice(&kept.kmer_totals);
    }
}

pub fn check_k(k: usize) -> CoreResult<()> {
    if !(1..=MAX_K).contains(&k) {
        return Err(CoreError::Parameter(format!(
            "k must be between 1 and {MAX_K}, got {k}"
        )));
    }
    Ok(())
}

pub fn thread_pool(threads: Option<usize>) -> CoreResult<rayon::ThreadPool> {
    if threads == Some(0) {
        return Err(CoreError::Parameter(
            "threads must be at least 1".to_string(),
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| CoreError::Parameter(format!("cannot start worker threads: {e}")))
}

/// Canonical k-mer composition of every record of a FASTA/FASTQ file (plain, gzip or bgzip).
pub fn composition(path: &Path, options: &CompositionOptions) -> CoreResult<Composition> {
    composition_reading(path, options, true)
}

/// `composition`, with plain FASTA memory mapped or read.
fn composition_reading(
    path: &Path,
    options: &CompositionOptions,
    map_plain: bool,
) -> CoreResult<Composition> {
    check_k(options.k)?;
    let input = open_sequences(path, options.min_length, map_plain)?;
    composition_of(path, input, options)
}

/// `composition` of any stream (`path` names it in messages), FASTA cut into blocks of
/// `block_bytes`: for tests and fuzzing without a file.
pub fn composition_from_reader(
    path: &Path,
    source: Box<dyn Read + Send>,
    options: &CompositionOptions,
    block_bytes: usize,
) -> CoreResult<Composition> {
    check_k(options.k)?;
    let input = sequences_from_reader(path, source, options.min_length, block_bytes)?;
    composition_of(path, input, options)
}

fn composition_of(
    path: &Path,
    input: SequenceInput,
    options: &CompositionOptions,
) -> CoreResult<Composition> {
    let out = match input {
        SequenceInput::Fasta { blocks, compressed } => {
            let mut out = if cfg!(fuzzing) {
                fasta_composition_in_order(blocks, path, options)?
            } else {
                fasta_composition(blocks, &thread_pool(options.threads)?, path, options)?
            };
            out.stats.compressed = compressed;
            out
        }
        SequenceInput::Fastq(reader) => {
            fastq_composition(reader, &thread_pool(options.threads)?, path, options)?
        }
        SequenceInput::Empty { .. } => Composition {
            columns: 0,
            matrix: CompositionMatrix::Counts(Vec::new()),
            names: Vec::new(),
            name_ends: Vec::new(),
            lengths: Vec::new(),
            kmer_totals: Vec::new(),
            stats: ReadStats::default(),
        },
    };
    if out.stats.records == 0 {
        return Err(CoreError::input(path, NO_RECORDS));
    }
    Ok(out)
}

/// FASTA: the reader thread only reads and cuts blocks; the workers parse and count them.
fn fasta_composition(
    mut blocks: FastaBlockReader,
    pool: &rayon::ThreadPool,
    path: &Path,
    options: &CompositionOptions,
) -> CoreResult<Composition> {
    let (k, normalize, min_length) = (options.k, options.normalize, options.min_length);
    let assembler = Mutex::new(Assembler::new(canonical_count(k), normalize));
    // Index of the first block with a problem: the reader stops, workers skip later blocks.
    let failed_block = AtomicU64::new(u64::MAX);
    let in_flight = pool.current_num_threads() * 2;
    let (sender, receiver) = sync_channel::<FastaBlock>(in_flight);
    let (spent_sender, spent_receiver) = sync_channel::<FastaBlock>(in_flight + 2);
    std::thread::scope(|scope| {
        let failed_block = &failed_block;
        scope.spawn(move || {
            loop {
                // Spent mapped blocks are unmapped here, off the workers; one spent buffer is
                // refilled.
                let spare = spent_receiver
                    .try_iter()
                    .filter(|spent| spent.mapped.is_none())
                    .last();
                let Some(block) = blocks.next_block(spare) else {
                    break;
                };
                if failed_block.load(Ordering::Relaxed) != u64::MAX || sender.send(block).is_err() {
                    break;
                }
            }
        });
        pool.install(|| {
            receiver.into_iter().par_bridge().for_each_init(
                || KmerCounter::new(k),
                |counter, block| {
                    let index = block.index;
                    if index > failed_block.load(Ordering::Relaxed) {
                        return;
                    }
                    let mut result = featurize_block(&block, counter, min_length);
                    result.kept.seal(counter.width(), normalize);
                    if result.error.is_some() {
                        failed_block.fetch_min(index, Ordering::Relaxed);
                    }
                    // Hand the block back to the reader, which unmaps or refills it (if its queue
                    // is full, just free it here).
                    let _ = spent_sender.try_send(block);
                    assembler
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .push_block(index, result, path);
                },
            )
        });
    });
    let assembler = assembler.into_inner().expect("lock not poisoned");
    match assembler.error {
        Some(error) => Err(error),
        None => Ok(assembler.out),
    }
}

/// `fasta_composition` in the calling thread, block after block: the same block reader, block
/// parser and assembly without a thread pool and a reader thread. Only fuzz builds use it
/// (`cfg(fuzzing)`): starting threads and handing small blocks between them took most of an
/// execution's time, and they are not what the fuzzing is after.
fn fasta_composition_in_order(
    mut blocks: FastaBlockReader,
    path: &Path,
    options: &CompositionOptions,
) -> CoreResult<Composition> {
    let mut counter = KmerCounter::new(options.k);
    let mut assembler = Assembler::new(canonical_count(options.k), options.normalize);
    let mut spare = None;
    while let Some(block) = blocks.next_block(spare.take()) {
        let mut result = featurize_block(&block, &mut counter, options.min_length);
        result.kept.seal(counter.width(), options.normalize);
        let failed = result.error.is_some();
        assembler.push_block(block.index, result, path);
        if failed || assembler.error.is_some() {
            break;
        }
        spare = Some(block);
    }
    match assembler.error {
        Some(error) => Err(error),
        None => Ok(assembler.out),
    }
}

/// FASTQ: the line reader gathers batches of kept records (and checks names); workers count.
fn fastq_composition(
    mut reader: SequenceReader,
    pool: &rayon::ThreadPool,
    path: &Path,
    options: &CompositionOptions,
) -> CoreResult<Composition> {
    let (k, normalize) = (options.k, options.normalize);
    let assembler = Mutex::new(Assembler::new(canonical_count(k), normalize));
    let in_flight = pool.current_num_threads() * 2;
    let (sender, receiver) = sync_channel::<SequenceBatch>(in_flight);
    let (spent_sender, spent_receiver) = sync_channel::<SequenceBatch>(in_flight + 2);
    let (read_result, work_result) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> CoreResult<ReadStats> {
            while let Some(batch) = reader.next_batch_reusing(spent_receiver.try_recv().ok())? {
                if sender.send(batch).is_err() {
                    break;
                }
            }
            Ok(reader.stats)
        });
        let work_result = pool.install(|| {
            receiver.into_iter().par_bridge().try_for_each_init(
                || KmerCounter::new(k),
                |counter, batch| {
                    let mut result = featurize_batch(&batch, counter, path)?;
                    result.seal(counter.width(), normalize);
                    let index = batch.index;
                    // Hand the buffers back to the reader; if its queue is full, just free them.
                    let _ = spent_sender.try_send(batch);
                    assembler
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .push_batch(index, result);
                    Ok::<(), CoreError>(())
                },
            )
        });
        let read_result = producer.join().expect("reader thread does not panic");
        (read_result, work_result)
    });
    // When both sides failed, the error at the earlier record is the one the user must fix first.
    match (read_result, work_result) {
        (Err(read_error), Err(work_error)) => {
            if work_error.record() < read_error.record() {
                Err(work_error)
            } else {
                Err(read_error)
            }
        }
        (Err(error), Ok(())) | (Ok(_), Err(error)) => Err(error),
        (Ok(stats), Ok(())) => {
            let mut out = assembler.into_inner().expect("lock not poisoned").out;
            out.stats = stats;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmer_count::tests::naive;
    use std::io::Write;

    /// A FASTA file from records (name, sequence): `width` letters a line, optional CRLF and
    /// blank lines; returned with the file's bytes.
    fn fasta_text(records: &[(String, Vec<u8>)], width: usize, crlf: bool, blank: bool) -> Vec<u8> {
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut text = Vec::new();
        for (name, sequence) in records {
            text.extend_from_slice(format!(">{name} some description").as_bytes());
            text.extend_from_slice(eol);
            for line in sequence.chunks(width) {
                text.extend_from_slice(line);
                text.extend_from_slice(eol);
            }
            if blank {
                text.extend_from_slice(eol);
            }
        }
        text
    }

    fn records() -> impl proptest::strategy::Strategy<Value = Vec<(String, Vec<u8>)>> {
        let sequence = proptest::collection::vec(
            proptest::sample::select(b"ACGTACGTACGTACGTacgtNRy".to_vec()),
            // An empty record is an error under the reader's rules (`seqio::rules`), tested apart.
            1..3000,
        );
        proptest::collection::vec(sequence, 1..12).prop_map(|sequences| {
            sequences
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("r{i}"), s))
                .collect()
        })
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The block parser (line ends skipped in place) against the line reader, which copies
        /// each line's letters, and the naive counter.
        #[test]
        fn blocks_count_like_the_line_reader(
            records in records(),
            width in 1usize..100,
            crlf in proptest::bool::ANY,
            blank in proptest::bool::ANY,
            min_length in 0u64..1500,
            k in 1usize..=MAX_K,
            threads in 1usize..3,
            map_plain in proptest::bool::ANY,
        ) {
            let path = write_temp(
                &format!("blocks-{k}-{width}-{min_length}.fa"),
                &fasta_text(&records, width, crlf, blank),
            );
            let options = CompositionOptions { k, min_length, threads: Some(threads), normalize: false };
            let result = composition_reading(&path, &options, map_plain).unwrap();
            let mut reader = SequenceReader::open(&path, min_length).unwrap();
            let mut expected_counts = Vec::new();
            let mut expected_names = Vec::new();
            let mut expected_lengths = Vec::new();
            while let Some(batch) = reader.next_batch().unwrap() {
                for i in 0..batch.len() {
                    expected_counts.extend(naive(batch.sequence(i), k));
                    expected_names.push(batch.name(i).to_vec());
                    expected_lengths.push(batch.sequence(i).len() as i64);
                }
            }
            let names: Vec<Vec<u8>> = (0..result.rows()).map(|i| result.name(i).to_vec()).collect();
            proptest::prop_assert_eq!(names, expected_names);
            proptest::prop_assert_eq!(&result.lengths, &expected_lengths);
            let counts = match &result.matrix {
                CompositionMatrix::Counts(counts) => counts,
                CompositionMatrix::Frequencies(_) => unreachable!("asked for counts"),
            };
            proptest::prop_assert_eq!(counts, &expected_counts);
            let totals: Vec<i64> = counts
                .chunks_exact(canonical_count(k))
                .map(|row| row.iter().map(|&c| c as i64).sum())
                .collect();
            proptest::prop_assert_eq!(&result.kmer_totals, &totals);
            let (stats, line_stats) = (result.stats, reader.stats);
            proptest::prop_assert_eq!(
                (stats.records, stats.records_kept, stats.records_too_short, stats.bases, stats.bases_kept),
                (line_stats.records, line_stats.records_kept, line_stats.records_too_short, line_stats.bases, line_stats.bases_kept)
            );
        }
    }

    fn write_temp(name: &str, content: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vaebin-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        path
    }

    #[test]
    fn composition_of_a_small_file() {
        let path = write_temp("small.fa", b">a x\nACGT\nAC\r\n>b\nNNNN\n>c\nTTTT\n");
        let options = CompositionOptions {
            k: 2,
            normalize: false,
            threads: Some(2),
            ..CompositionOptions::default()
        };
        let result = composition(&path, &options).unwrap();
        assert_eq!(result.rows(), 3);
        assert_eq!(result.name(0), b"a");
        assert_eq!(result.name(2), b"c");
        assert_eq!(result.lengths, vec![6, 4, 4]);
        assert_eq!(result.kmer_totals, vec![5, 0, 3]);
        match result.matrix {
            CompositionMatrix::Counts(counts) => {
                assert_eq!(&counts[..10], naive(b"ACGTAC", 2).as_slice());
                assert_eq!(&counts[20..30], naive(b"TTTT", 2).as_slice());
            }
            CompositionMatrix::Frequencies(_) => panic!("asked for counts"),
        }
    }

    #[test]
    fn errors_name_file_and_record() {
        let path = write_temp("dup.fa", b">a\nAC\n>b\nGG\n>a\nTT\n");
        let error = composition(&path, &CompositionOptions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}: record 3: duplicate sequence name 'a'", path.display())
        );
        let path = write_temp("bad.fa", b">a\nAC\n>b\nG\x01G\n");
        let error = composition(&path, &CompositionOptions::default()).unwrap_err();
        assert!(error
            .to_string()
            .ends_with("record 2: invalid character byte 0x01 at sequence position 2 (a sequence holds letters, '-', '.' and '*' only)"));
        let options = CompositionOptions {
            k: 7,
            ..CompositionOptions::default()
        };
        assert!(matches!(
            composition(&path, &options),
            Err(CoreError::Parameter(_))
        ));
    }

    /// The first problem in file order wins, whichever worker or check finds it.
    #[test]
    fn first_problem_in_file_order_is_reported() {
        let cases: [(&[u8], u64, &str); 9] = [
            (
                b">a\nAC\n>b\nA\nC>G\n>a\nTT\n",
                2,
                "invalid character '>' at sequence position 3",
            ),
            (b">a\nAC\n>a\nA-\x02\n", 2, "duplicate sequence name 'a'"),
            (
                b">a\nAC\n>\nA\x02\n>a\n",
                2,
                "empty sequence name in header",
            ),
            (b">a\nAC\n>b\x01\nAC\n>a\n", 2, "non-printable or non-ASCII"),
            (
                b">a\nAC\n>b c\nACGT\r\rA\n",
                2,
                "invalid character byte 0x0d at sequence position 5",
            ),
            (
                b"\n\r\n>a\nAC\n>b\nNN \n",
                2,
                "invalid character byte 0x20 at sequence position 3",
            ),
            (
                b" \t\n>a\nAC\n",
                1,
                "not FASTA or FASTQ: expected '>' or '@' at the start of a record, found byte 0x20",
            ),
            (b">a\nAC\n>b\n\n>c\nA\x02\n", 2, "record has no sequence"),
            (
                b"\n\n  x\n>a\nAC\n",
                1,
                "not FASTA or FASTQ: expected '>' or '@' at the start of a record, found byte 0x20",
            ),
        ];
        for (i, (content, record, problem)) in cases.into_iter().enumerate() {
            let path = write_temp(&format!("first-{i}.fa"), content);
            let error = composition(&path, &CompositionOptions::default()).unwrap_err();
            let message = error.to_string();
            let expected = format!("{}: record {record}: ", path.display());
            assert!(message.starts_with(&expected), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    /// Records below the cut-off are measured and checked, not counted, as the line reader does.
    #[test]
    fn short_records_are_checked_but_not_counted() {
        let options = CompositionOptions {
            min_length: 4,
            normalize: false,
            ..CompositionOptions::default()
        };
        let path = write_temp("short.fa", b">a\nAC\n>b\nACGTA\nC\n>c\nA-C\n");
        let result = composition(&path, &options).unwrap();
        assert_eq!(result.rows(), 1);
        assert_eq!(result.name(0), b"b");
        assert_eq!(result.lengths, vec![6]);
        let stats = result.stats;
        assert_eq!(
            (stats.records, stats.records_too_short, stats.bases),
            (3, 2, 11)
        );
        for (i, (content, record, problem)) in [
            (
                &b">a\nA\x01\n>b\nACGTA\n"[..],
                1,
                "byte 0x01 at sequence position 2",
            ),
            (
                b">b\nACGTA\n>c\nA C\n",
                2,
                "byte 0x20 at sequence position 2",
            ),
            (b">b\nACGTA\n>c\n\n", 2, "record has no sequence"),
        ]
        .into_iter()
        .enumerate()
        {
            let path = write_temp(&format!("short-{i}.fa"), content);
            let message = composition(&path, &options).unwrap_err().to_string();
            let expected = format!("{}: record {record}: ", path.display());
            assert!(message.starts_with(&expected), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    /// With a cut-off above the counter's staging, a record too short to keep is checked even
    /// where its letters fill the staging (the block's records are found before counting).
    #[test]
    fn long_records_below_a_large_cut_off_are_checked() {
        let min_length = STAGING_LETTERS as u64 + 5000;
        let long = b"ACGTTGCA".repeat(STAGING_LETTERS / 8 + 1000);
        let file = |short_start: &[u8]| {
            let mut text = b">short\n".to_vec();
            text.extend_from_slice(short_start);
            text.extend_from_slice(&b"ACGT".repeat(STAGING_LETTERS / 4 + 100));
            text.extend_from_slice(b"\n>long\n");
            text.extend_from_slice(&long);
            text.push(b'\n');
            text
        };
        let options = CompositionOptions {
            min_length,
            normalize: false,
            ..CompositionOptions::default()
        };
        let path = write_temp("large-cut-off.fa", &file(b"An"));
        let result = composition(&path, &options).unwrap();
        assert_eq!(result.rows(), 1);
        assert_eq!(result.name(0), b"long");
        assert_eq!(result.lengths, vec![long.len() as i64]);
        assert_eq!(result.stats.records_too_short, 1);
        match result.matrix {
            CompositionMatrix::Counts(counts) => assert_eq!(counts, naive(&long, 4)),
            CompositionMatrix::Frequencies(_) => panic!("asked for counts"),
        }
        let path = write_temp("large-cut-off-bad.fa", &file(b"A\x01"));
        let message = composition(&path, &options).unwrap_err().to_string();
        assert!(
            message.contains("record 1: invalid character byte 0x01 at sequence position 2"),
            "{message}"
        );
    }

    /// The composition's answer for a file, as the names and lengths reader would give it.
    fn composition_answer(
        path: &Path,
        map_plain: bool,
        min_length: u64,
    ) -> Result<(Vec<String>, Vec<u64>), String> {
        let options = CompositionOptions {
            k: 1,
            min_length,
            threads: Some(2),
            normalize: false,
        };
        let result = composition_reading(path, &options, map_plain).map_err(|e| e.to_string())?;
        let names = (0..result.rows())
            .map(|i| String::from_utf8_lossy(result.name(i)).into_owned())
            .collect();
        Ok((names, result.lengths.iter().map(|&l| l as u64).collect()))
    }

    fn reader_answer(path: &Path) -> Result<(Vec<String>, Vec<u64>), String> {
        crate::seqio::names_and_lengths(path)
            .map(|records| (records.names, records.lengths))
            .map_err(|e| e.to_string())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The block-parallel composition and the streaming reader apply one set of rules: on
        /// any file of header-like and letter-like lines they accept it with the same names and
        /// lengths, or refuse it with the same words at the same record.
        #[test]
        fn both_reading_modes_give_the_same_answer(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(b">>@+acgtNAC \t\r1-x\x00".to_vec()),
                    0..6,
                ),
                0..10,
            ),
            crlf in proptest::bool::ANY,
            final_line_end in proptest::bool::ANY,
            map_plain in proptest::bool::ANY,
            short_cut_off in proptest::bool::ANY,
        ) {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut text = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                text.extend_from_slice(line);
                if i + 1 < lines.len() || final_line_end {
                    text.extend_from_slice(eol);
                }
            }
            let path = write_temp(&format!("agree-{}.fa", text.len() % 7), &text);
            let expected = reader_answer(&path);
            let min_length = if short_cut_off { 3 } else { 0 };
            let found = composition_answer(&path, map_plain, min_length);
            match (&expected, &found) {
                (Ok((names, lengths)), Ok((kept_names, kept_lengths))) => {
                    let kept: Vec<(String, u64)> = names
                        .iter()
                        .cloned()
                        .zip(lengths.iter().copied())
                        .filter(|&(_, length)| length >= min_length)
                        .collect();
                    let found: Vec<(String, u64)> =
                        kept_names.iter().cloned().zip(kept_lengths.iter().copied()).collect();
                    proptest::prop_assert_eq!(kept, found, "{:?}", String::from_utf8_lossy(&text));
                }
                _ => proptest::prop_assert_eq!(&expected, &found, "{:?}", String::from_utf8_lossy(&text)),
            }
        }
    }

    /// A gzip stream cut short names the record after the last one whose header was read.
    #[test]
    fn truncated_gzip_names_the_record_being_read() {
        use flate2::write::GzEncoder;
        let mut text = Vec::new();
        for i in 0..3000 {
            text.extend_from_slice(format!(">r{i}\n{}\n", "ACGTTGCA".repeat(40)).as_bytes());
        }
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(&text).unwrap();
        let compressed = encoder.finish().unwrap();
        let path = write_temp("cut.fa.gz", &compressed[..compressed.len() / 2]);
        let error = composition(&path, &CompositionOptions::default()).unwrap_err();
        let mut reader = SequenceReader::open(&path, 0).unwrap();
        let line_error = loop {
            match reader.next_batch() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the line reader must fail too"),
                Err(error) => break error,
            }
        };
        assert_eq!(error.to_string(), line_error.to_string());
        assert!(error.to_string().contains("truncated gzip"));
    }
}
