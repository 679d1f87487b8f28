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

/// Rolling state of one scan over a stretch of sequence.
#[derive(Clone, Copy)]
struct Scan {
    code: u32,
    run: usize,
}

impl Scan {
    /// Feeds one byte; returns the k-mer code when a complete k-mer ends here, `Err` on a byte
    /// that is not a sequence letter.
    #[inline(always)]
    fn step(&mut self, byte: u8, k: usize, mask: u32) -> Result<Option<u32>, ()> {
        let base = BASE_CODE[byte as usize];
        if base < AMBIGUOUS {
            self.code = ((self.code << 2) | base as u32) & mask;
            self.run += 1;
            Ok((self.run >= k).then_some(self.code))
        } else if base == AMBIGUOUS {
            self.run = 0;
            Ok(None)
        } else {
            Err(())
        }
    }
}

/// Independent scans per record; the rolling code is a serial dependency chain, so several
/// stretches of the record are scanned in one loop to keep the core busy.
const LANES: usize = 2;

/// Adds the canonical k-mer counts of `sequence` to `row`; returns how many k-mers were counted,
/// or the 0-based position of the first byte that is not a sequence letter.
///
/// The record is cut into `LANES` stretches scanned side by side; each stretch after the first
/// starts k-1 bytes early so that every k-mer is counted exactly once, by the stretch where it
/// ends.
pub fn count_canonical(
    sequence: &[u8],
    k: usize,
    columns: &[u16],
    row: &mut [u32],
) -> Result<u64, usize> {
    let mask = (1u32 << (2 * k)) - 1;
    let before: u64 = row.iter().map(|&c| c as u64).sum();
    let stretch = sequence.len() / LANES;
    let mut starts = [0usize; LANES];
    let mut ends = [0usize; LANES];
    for lane in 0..LANES {
        starts[lane] = (lane * stretch).saturating_sub(k - 1);
        ends[lane] = if lane + 1 == LANES {
            sequence.len()
        } else {
            (lane + 1) * stretch
        };
    }
    let shortest = (0..LANES).map(|l| ends[l] - starts[l]).min().unwrap_or(0);
    let mut scans = [Scan { code: 0, run: 0 }; LANES];
    let mut failed = false;
    'side_by_side: for i in 0..shortest {
        for lane in 0..LANES {
            match scans[lane].step(sequence[starts[lane] + i], k, mask) {
                Ok(Some(code)) => row[columns[code as usize] as usize] += 1,
                Ok(None) => {}
                Err(()) => {
                    failed = true;
                    break 'side_by_side;
                }
            }
        }
    }
    if !failed {
        'tails: for lane in 0..LANES {
            for &byte in &sequence[starts[lane] + shortest..ends[lane]] {
                match scans[lane].step(byte, k, mask) {
                    Ok(Some(code)) => row[columns[code as usize] as usize] += 1,
                    Ok(None) => {}
                    Err(()) => {
                        failed = true;
                        break 'tails;
                    }
                }
            }
        }
    }
    if failed {
        // Report the earliest bad byte, which may precede the one a lane stopped at.
        let first_bad = sequence
            .iter()
            .position(|&byte| BASE_CODE[byte as usize] > AMBIGUOUS)
            .expect("a lane stopped at a bad byte");
        return Err(first_bad);
    }
    let after: u64 = row.iter().map(|&c| c as u64).sum();
    Ok(after - before)
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
            receiver.into_iter().par_bridge().try_for_each(|batch| {
                let result = featurize_batch(&batch, k, &columns, width, normalize, path)?;
                let index = batch.index;
                // Hand the buffers back to the reader; if its queue is full, just free them.
                let _ = spent_sender.try_send(batch);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmer::{canonical_columns, canonical_count, reverse_complement};
    use std::io::Write;

    /// Window-by-window counter without rolling state or halves.
    fn naive(sequence: &[u8], k: usize) -> Vec<u32> {
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

    proptest::proptest! {
        #[test]
        fn halves_count_every_kmer_once(
            sequence in proptest::collection::vec(proptest::sample::select(b"ACGTacgtNRn".to_vec()), 0..200),
            k in 1usize..=MAX_K,
        ) {
            let columns = canonical_columns(k);
            let mut row = vec![0u32; canonical_count(k)];
            let counted = count_canonical(&sequence, k, &columns, &mut row).unwrap();
            let expected = naive(&sequence, k);
            proptest::prop_assert_eq!(&row, &expected);
            proptest::prop_assert_eq!(counted, expected.iter().map(|&c| c as u64).sum::<u64>());
        }

        #[test]
        fn first_invalid_byte_is_reported(length in 1usize..100, bad in 0usize..100, k in 1usize..=MAX_K) {
            let mut sequence = vec![b'A'; length];
            let bad = bad % length;
            sequence[bad] = b'\t';
            if bad + 1 < length {
                sequence[length - 1] = 0;
            }
            let columns = canonical_columns(k);
            let mut row = vec![0u32; canonical_count(k)];
            proptest::prop_assert_eq!(count_canonical(&sequence, k, &columns, &mut row), Err(bad));
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
            .ends_with("record 2: invalid character byte 0x01 at sequence position 2 (binary or corrupt file?)"));
        let options = CompositionOptions {
            k: 7,
            ..CompositionOptions::default()
        };
        assert!(matches!(
            composition(&path, &options),
            Err(CoreError::Parameter(_))
        ));
    }
}
