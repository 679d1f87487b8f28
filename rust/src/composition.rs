//! Canonical k-mer composition per record, in parallel over batches of records.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::errors::{CoreError, CoreResult};
use crate::kmer::{canonical_columns, canonical_count, AMBIGUOUS, BASE_CODE, MAX_K};
use crate::seqio::{ReadStats, SequenceBatch, SequenceReader};

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

/// Adds the canonical k-mer counts of `sequence` to `row`; returns how many k-mers were counted,
/// or the 0-based position of the first byte that is not a sequence letter.
pub fn count_canonical(
    sequence: &[u8],
    k: usize,
    columns: &[u16],
    row: &mut [u32],
) -> Result<u64, usize> {
    let mask = (1u32 << (2 * k)) - 1;
    let mut code = 0u32;
    let mut run = 0usize;
    let mut counted = 0u64;
    for (position, &byte) in sequence.iter().enumerate() {
        let base = BASE_CODE[byte as usize];
        if base < AMBIGUOUS {
            code = ((code << 2) | base as u32) & mask;
            run += 1;
            if run >= k {
                row[columns[code as usize] as usize] += 1;
                counted += 1;
            }
        } else if base == AMBIGUOUS {
            run = 0;
        } else {
            return Err(position);
        }
    }
    Ok(counted)
}

struct BatchResult {
    matrix: CompositionMatrix,
    names: Vec<u8>,
    name_lengths: Vec<usize>,
    lengths: Vec<i64>,
    kmer_totals: Vec<i64>,
}

fn featurize_batch(
    batch: &SequenceBatch,
    k: usize,
    columns: &[u16],
    width: usize,
    normalize: bool,
    path: &Path,
) -> CoreResult<BatchResult> {
    let rows = batch.len();
    let mut counts = vec![0u32; rows * width];
    let mut lengths = Vec::with_capacity(rows);
    let mut kmer_totals = Vec::with_capacity(rows);
    for (i, row) in counts.chunks_exact_mut(width).enumerate() {
        let sequence = batch.sequence(i);
        let counted = count_canonical(sequence, k, columns, row).map_err(|position| {
            let byte = sequence[position];
            let shown = if byte.is_ascii_graphic() {
                format!("'{}'", byte as char)
            } else {
                format!("byte 0x{byte:02x}")
            };
            CoreError::format(
                path,
                batch.record_numbers[i],
                format!(
                    "invalid character {shown} at sequence position {} (binary or corrupt file?)",
                    position + 1
                ),
            )
        })?;
        lengths.push(sequence.len() as i64);
        kmer_totals.push(counted as i64);
    }
    let matrix = if normalize {
        let mut frequencies = vec![0f32; rows * width];
        for ((out, row), &total) in frequencies
            .chunks_exact_mut(width)
            .zip(counts.chunks_exact(width))
            .zip(&kmer_totals)
        {
            if total > 0 {
                let scale = 1.0 / total as f64;
                for (o, &c) in out.iter_mut().zip(row) {
                    *o = (c as f64 * scale) as f32;
                }
            }
        }
        CompositionMatrix::Frequencies(frequencies)
    } else {
        CompositionMatrix::Counts(counts)
    };
    let name_lengths = (0..rows).map(|i| batch.name(i).len()).collect();
    Ok(BatchResult {
        matrix,
        names: batch.names.clone(),
        name_lengths,
        lengths,
        kmer_totals,
    })
}

/// Appends batch results in file order, whatever order the workers finish them in.
struct Assembler {
    next: u64,
    pending: BTreeMap<u64, BatchResult>,
    out: Composition,
}

impl Assembler {
    fn push(&mut self, index: u64, result: BatchResult) {
        self.pending.insert(index, result);
        while let Some(result) = self.pending.remove(&self.next) {
            self.next += 1;
            let out = &mut self.out;
            match (&mut out.matrix, result.matrix) {
                (CompositionMatrix::Frequencies(all), CompositionMatrix::Frequencies(part)) => {
                    all.extend_from_slice(&part)
                }
                (CompositionMatrix::Counts(all), CompositionMatrix::Counts(part)) => {
                    all.extend_from_slice(&part)
                }
                _ => unreachable!("all batches share one matrix kind"),
            }
            out.names.extend_from_slice(&result.names);
            let mut end = out.name_ends.last().copied().unwrap_or(0);
            for length in result.name_lengths {
                end += length;
                out.name_ends.push(end);
            }
            out.lengths.extend_from_slice(&result.lengths);
            out.kmer_totals.extend_from_slice(&result.kmer_totals);
        }
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
    check_k(options.k)?;
    let pool = thread_pool(options.threads)?;
    let mut reader = SequenceReader::open(path, options.min_length)?;
    let k = options.k;
    let width = canonical_count(k);
    let columns = canonical_columns(k);
    let normalize = options.normalize;
    let assembler = Mutex::new(Assembler {
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
    });
    let in_flight = pool.current_num_threads() * 2;
    let (sender, receiver) = sync_channel::<SequenceBatch>(in_flight);
    let (read_result, work_result) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> CoreResult<ReadStats> {
            while let Some(batch) = reader.next_batch()? {
                if sender.send(batch).is_err() {
                    break;
                }
            }
            Ok(reader.stats)
        });
        let work_result = pool.install(|| {
            receiver.into_iter().par_bridge().try_for_each(|batch| {
                let result = featurize_batch(&batch, k, &columns, width, normalize, path)?;
                let index = batch.index;
                drop(batch);
                assembler
                    .lock()
                    .expect("no worker panics while holding the lock")
                    .push(index, result);
                Ok::<(), CoreError>(())
            })
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
            if stats.records == 0 {
                return Err(CoreError::input(path, "contains no sequences (empty file)"));
            }
            Ok(out)
        }
    }
}
