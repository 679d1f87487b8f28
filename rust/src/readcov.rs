//! Long-read features without an assembly: per read, its low-k composition and, for every
//! sample, a histogram of how often the read's k-mers (k about 15) occur in that sample's whole
//! read set, plus a robust abundance from the same counts.
//!
//! **Counting structure.** Each sample's k-mer counts live in one dense table of saturating
//! 16-bit counters, indexed directly by the canonical k-mer, so a count is exact (no collisions,
//! no sketch error) and a lookup is one memory access. For odd k the canonical form is the
//! orientation whose middle base is A or C, which drops one bit: 4^k / 2 slots, none wasted.
//! Only a hashed subset of the k-mers is counted and looked up, 1 in `sampling` (a power of two,
//! default 8), chosen by a bijective mix of the canonical code (Fibonacci hashing), so the kept k-mers are spread
//! evenly over the genome and over composition, and every sample keeps the same ones. A read of
//! 5 kbp still has about 600 sampled k-mers for its histogram, while the table shrinks to
//! 4^k / 2 / sampling slots (k = 15: 64 Mi slots, 128 MiB per sample) and the random memory
//! accesses, which bound the speed, fall by the same factor. The tables of all samples are
//! interleaved (slot-major), so one cache line gives a k-mer's count in every sample.
//!
//! Two passes, reading every file once: (1) stream each sample's reads in batches through the
//! workers, which keep every read's sampled slots (4 bytes per sampled k-mer: half a byte per
//! base at the default sampling) and each kept read's composition; then count the slots into
//! the sample's table, each thread owning one range of slots (exact, no atomic
//! read-modify-write, and independent of the threads); (2) for every kept read and sample, look
//! the slots up and build the histogram and abundance. Memory: the tables plus the slots, about
//! 0.5 GB per Gbp of reads at the default settings, whatever the thread count.
//!
//! Reads shorter than `min_length` are counted into the tables (their k-mers are real evidence
//! of abundance) but get no features. A read's own occurrences of a k-mer are taken off its own
//! sample's counts, so that in every sample a count says how many *other* reads hold the k-mer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::composition::thread_pool;
use crate::errors::{CoreError, CoreResult};
use crate::kmer::{BASE_CODE, MAX_K};
use crate::kmer_count::KmerCounter;
use crate::overlaps::{overlap_graph, OverlapGraph, OverlapOptions};
use crate::seqio::{ReadStats, SequenceBatch, SequenceFormat, SequenceReader};

pub const MIN_ABUNDANCE_K: usize = 8;
pub const MAX_ABUNDANCE_K: usize = 16;
/// Counters stop here; the margin keeps concurrent increments that passed the check from
/// wrapping around.
const SATURATED: u16 = u16::MAX - 1024;
/// The abundance is the mean of the counts between these quantiles of a read's solid k-mers:
/// the top tenth holds the k-mers of repeats (rRNA operons, transposases) that inflate a plain
/// mean, and the lower half the k-mers that carry an error yet match another read somewhere
/// (low-complexity sequence), whose share grows with the read's error rate.
const ABUNDANCE_BAND: (f64, f64) = (0.5, 0.9);
/// Table lookups are prefetched this many k-mers ahead.
const PREFETCH_DISTANCE: usize = 16;
/// Slots a counting thread filters for its own range at a time.
const COUNT_CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub struct ReadFeatureOptions {
    /// k of the abundance k-mers.
    pub k: usize,
    /// k of the composition (canonical k-mer frequencies, rows sum to 1).
    pub composition_k: usize,
    /// Histogram bins per sample; the last one also holds every larger count.
    pub bins: usize,
    /// Counts per histogram bin: bin `i` holds counts `i * bin_width ..= (i + 1) * bin_width - 1`.
    pub bin_width: u32,
    /// 1 in `sampling` k-mers (by hash) is counted and looked up; a power of two.
    pub sampling: u32,
    /// Reads shorter than this get no features (their k-mers are still counted).
    pub min_length: u64,
    /// Histograms of the solid k-mers only (those other reads hold too): a read's errors make
    /// k-mers no other read has, so with every k-mer the histograms would shift with each
    /// read's error rate rather than with its genome's abundance. False: every k-mer, as
    /// LRBinner does.
    pub solid_histograms: bool,
    /// The read overlap graph (`crate::overlaps`), or None for none.
    pub graph: Option<OverlapOptions>,
    pub threads: Option<usize>,
}

impl Default for ReadFeatureOptions {
    fn default() -> Self {
        ReadFeatureOptions {
            k: 15,
            composition_k: 4,
            bins: 32,
            bin_width: 2,
            sampling: 8,
            min_length: 1000,
            solid_histograms: true,
            graph: None,
            threads: None,
        }
    }
}

impl ReadFeatureOptions {
    pub fn check(&self) -> CoreResult<()> {
        let problem = |message: String| Err(CoreError::Parameter(message));
        if !(MIN_ABUNDANCE_K..=MAX_ABUNDANCE_K).contains(&self.k) {
            return problem(format!(
                "abundance k must be between {MIN_ABUNDANCE_K} and {MAX_ABUNDANCE_K}, got {}",
                self.k
            ));
        }
        if !(1..=MAX_K).contains(&self.composition_k) {
            return problem(format!(
                "composition k must be between 1 and {MAX_K}, got {}",
                self.composition_k
            ));
        }
        if !(1..=1024).contains(&self.bins) {
            return problem(format!(
                "histogram bins must be between 1 and 1024, got {}",
                self.bins
            ));
        }
        if self.bin_width == 0 {
            return problem("histogram bin width must be at least 1".to_string());
        }
        if !self.sampling.is_power_of_two() || self.sampling > 1024 {
            return problem(format!(
                "k-mer sampling must be a power of two up to 1024, got {}",
                self.sampling
            ));
        }
        if let Some(graph) = &self.graph {
            graph.check().map_err(CoreError::Parameter)?;
        }
        if self.min_length < self.k as u64 {
            return problem(format!(
                "minimum read length ({}) must be at least k ({})",
                self.min_length, self.k
            ));
        }
        Ok(())
    }
}

/// Canonical k-mer codes of up to 16 bases, mixed and sampled into table slots.
#[derive(Debug, Clone, Copy)]
pub struct KmerSlots {
    k: usize,
    /// Bits of a canonical index: 2k - 1 for odd k, 2k for even k.
    bits: u32,
    mask: u64,
    sampling_bits: u32,
}

impl KmerSlots {
    pub fn new(k: usize, sampling: u32) -> Self {
        let bits = if k % 2 == 1 {
            2 * k as u32 - 1
        } else {
            2 * k as u32
        };
        KmerSlots {
            k,
            bits,
            mask: (1u64 << bits) - 1,
            sampling_bits: sampling.trailing_zeros(),
        }
    }

    /// Slots of one sample's table.
    pub fn slots(&self) -> usize {
        1usize << (self.bits - self.sampling_bits)
    }

    /// Dense index of the canonical form of a k-mer given by its forward and reverse-complement
    /// codes (2 bits a base, A C G T = 0 1 2 3, first base highest).
    #[inline(always)]
    pub fn canonical_index(&self, forward: u64, reverse: u64) -> u64 {
        canonical_index(self.k, forward, reverse)
    }

    /// A bijection of the `bits`-bit indices: multiplication by an odd constant modulo
    /// 2^bits (Fibonacci hashing), whose top bits depend on every bit of the index.
    #[inline(always)]
    pub fn mix(&self, index: u64) -> u64 {
        index.wrapping_mul(MIX) & self.mask
    }

    /// The table slot of a canonical index, or None when the k-mer is not sampled: sampled
    /// k-mers are those whose mixed value has its top `log2(sampling)` bits zero, and the rest
    /// of the value is their slot (distinct k-mers, distinct slots).
    #[inline(always)]
    pub fn slot(&self, index: u64) -> Option<u32> {
        let mixed = self.mix(index);
        (mixed >> (self.bits - self.sampling_bits) == 0).then_some(mixed as u32)
    }

    /// Calls `found` with the slot of each sampled k-mer of `sequence`, in order; k-mers with a
    /// letter other than A, C, G, T (either case) are skipped.
    #[inline]
    pub fn for_each_slot(&self, sequence: &[u8], found: impl FnMut(u32)) {
        // One copy of the scan per k: with k a constant every shift and mask is too, and the
        // loop keeps its state in registers (a third faster than with k a variable).
        match self.k {
            8 => self.scan::<8>(sequence, found),
            9 => self.scan::<9>(sequence, found),
            10 => self.scan::<10>(sequence, found),
            11 => self.scan::<11>(sequence, found),
            12 => self.scan::<12>(sequence, found),
            13 => self.scan::<13>(sequence, found),
            14 => self.scan::<14>(sequence, found),
            15 => self.scan::<15>(sequence, found),
            16 => self.scan::<16>(sequence, found),
            k => unreachable!("k = {k} is checked by ReadFeatureOptions::check"),
        }
    }

    #[inline(always)]
    fn scan<const K: usize>(&self, sequence: &[u8], mut found: impl FnMut(u32)) {
        let code_mask = (1u64 << (2 * K)) - 1;
        let top = 2 * (K as u32 - 1);
        let bits = if K % 2 == 1 { 2 * K - 1 } else { 2 * K } as u32;
        // The mixed value sits in the top `bits` bits of a word: its top `log2(sampling)` bits
        // are zero exactly when the word is at most `limit`. Every shift is then a constant.
        let limit = u64::MAX >> self.sampling_bits;
        let (mut forward, mut reverse, mut valid) = (0u64, 0u64, 0usize);
        for &byte in sequence {
            // A, C, G, T (either case) are 0-3; every other byte is above.
            let code = BASE_CODE[byte as usize];
            if code > 3 {
                valid = 0;
                continue;
            }
            forward = ((forward << 2) | code as u64) & code_mask;
            reverse = (reverse >> 2) | (((3 - code) as u64) << top);
            valid += 1;
            let word = canonical_index(K, forward, reverse).wrapping_mul(MIX) << (64 - bits);
            if valid >= K && word <= limit {
                found((word >> (64 - bits)) as u32);
            }
        }
    }
}

/// Odd 64-bit multiplier of the mix (2^64 / golden ratio).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// `KmerSlots::canonical_index`; inlined with a constant `k` in the scan.
#[inline(always)]
fn canonical_index(k: usize, forward: u64, reverse: u64) -> u64 {
    if k % 2 == 1 {
        let half = 2 * (k as u32 / 2);
        // The middle base of one orientation is A or C (high bit 0), of the other G or T.
        let code = if (forward >> (half + 1)) & 1 == 0 {
            forward
        } else {
            reverse
        };
        ((code >> (half + 2)) << (half + 1)) | (code & ((1u64 << (half + 1)) - 1))
    } else {
        forward.min(reverse)
    }
}

/// The k-mer tables of every sample, interleaved: slot `s` of sample `j` is `s * samples + j`.
pub struct CountTables {
    counts: Vec<AtomicU16>,
    samples: usize,
}

impl CountTables {
    pub fn new(slots: usize, samples: usize) -> Self {
        // Zeroed memory from the allocator is mapped lazily, so the huge-page advice comes
        // before any page is touched.
        let zeros = vec![0u16; slots * samples];
        crate::mapped::advise_huge_pages(zeros.as_ptr().cast(), zeros.len() * 2);
        let mut zeros = std::mem::ManuallyDrop::new(zeros);
        // SAFETY: AtomicU16 has the size, alignment and bit validity of u16, and the vector's
        // allocation is handed over whole (pointer, length, capacity) and never used again. A
        // conversion element by element would touch every page before the advice applies.
        let counts = unsafe {
            Vec::from_raw_parts(
                zeros.as_mut_ptr().cast::<AtomicU16>(),
                zeros.len(),
                zeros.capacity(),
            )
        };
        CountTables { counts, samples }
    }

    /// Adds one occurrence of every slot of `lists` to `sample`'s counts, in parallel without
    /// atomic read-modify-writes: each thread owns one range of slots, reads every list and
    /// counts only its own slots, so no counter is ever written by two threads and the counts
    /// do not depend on the threads. (Locked increments made by the readers as they went cost
    /// half again as much: each waits for its cache line.) A counter a few slots ahead is
    /// fetched meanwhile.
    pub fn count(&self, lists: &[&[u32]], sample: usize, pool: &rayon::ThreadPool) {
        let shards = pool.current_num_threads().max(1) as u64;
        let slot_bits = (self.counts.len() / self.samples).trailing_zeros();
        let shard_of = |slot: u32| ((slot as u64 * shards) >> slot_bits) as usize;
        pool.install(|| {
            (0..shards as usize).into_par_iter().for_each(|shard| {
                let mut mine = Vec::with_capacity(COUNT_CHUNK);
                for list in lists {
                    for chunk in list.chunks(COUNT_CHUNK) {
                        mine.clear();
                        mine.extend(chunk.iter().copied().filter(|&s| shard_of(s) == shard));
                        for (i, &slot) in mine.iter().enumerate() {
                            if let Some(&ahead) = mine.get(i + PREFETCH_DISTANCE) {
                                self.prefetch(ahead);
                            }
                            // Only this thread writes this counter: a plain load and store.
                            let counter = &self.counts[slot as usize * self.samples + sample];
                            let value = counter.load(Ordering::Relaxed);
                            if value < SATURATED {
                                counter.store(value + 1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        });
    }

    #[inline(always)]
    pub fn prefetch(&self, slot: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let index = (slot as usize * self.samples).min(self.counts.len() - 1);
            // SAFETY: prefetching reads nothing observable; the address lies inside the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    self.counts.as_ptr().add(index).cast(),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// The counts of `slot` in every sample.
    #[inline(always)]
    pub fn get(&self, slot: u32) -> &[AtomicU16] {
        let start = slot as usize * self.samples;
        &self.counts[start..start + self.samples]
    }

    pub fn bytes(&self) -> usize {
        self.counts.len() * std::mem::size_of::<AtomicU16>()
    }

    /// Distinct sampled k-mers seen in `sample`.
    pub fn distinct(&self, sample: usize) -> u64 {
        self.counts
            .par_chunks(self.samples * 4096)
            .map(|chunk| {
                chunk
                    .iter()
                    .skip(sample)
                    .step_by(self.samples)
                    .filter(|c| c.load(Ordering::Relaxed) > 0)
                    .count() as u64
            })
            .sum()
    }
}

/// The kept reads of one batch, in file order.
#[derive(Default)]
struct KeptReads {
    names: Vec<u8>,
    name_ends: Vec<usize>,
    lengths: Vec<i64>,
    record_numbers: Vec<u64>,
    /// Rows x composition columns, frequencies.
    composition: Vec<f32>,
    /// Sampled slots of every kept read, back to back; `slot_ends` closes each read.
    slots: Vec<u32>,
    slot_ends: Vec<usize>,
    /// Sampled slots of the batch's reads too short to be kept: counted, then dropped.
    short_slots: Vec<u32>,
}

impl KeptReads {
    fn len(&self) -> usize {
        self.lengths.len()
    }

    fn read_slots(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.slot_ends[i - 1] };
        &self.slots[start..self.slot_ends[i]]
    }
}

/// The kept reads of one sample's file, batch by batch.
struct SampleReads {
    batches: Vec<KeptReads>,
    stats: ReadStats,
    kmers: u64,
    fastq: bool,
    seconds_reading: f64,
    seconds_counting: f64,
}

/// Per-read features of every sample's reads, in sample then file order.
#[derive(Debug)]
pub struct ReadFeatures {
    pub samples: usize,
    pub composition_columns: usize,
    pub bins: usize,
    /// Reads x composition columns.
    pub composition: Vec<f32>,
    /// Reads x (samples x bins): sample 0's histogram, then sample 1's, ...; each sums to 1
    /// (all zero for a read without a counted k-mer).
    pub histograms: Vec<f32>,
    /// Reads x samples: mean count, in each sample, of the read's solid k-mers (those that
    /// other reads hold too, in any sample) between their 50th and 90th percentiles.
    pub abundance: Vec<f32>,
    /// Share of the read's sampled k-mers that are solid: low for reads with many errors.
    pub solid_fraction: Vec<f32>,
    /// Sampled k-mers of each read.
    pub kmers: Vec<u32>,
    pub names: Vec<u8>,
    pub name_ends: Vec<usize>,
    pub lengths: Vec<i64>,
    /// Index of the input file (sample) of each read.
    pub sample_of_read: Vec<u32>,
    /// 1-based record number of each read in its file.
    pub record_numbers: Vec<u64>,
    pub stats: Vec<ReadStats>,
    /// Whether each file is FASTQ (else FASTA).
    pub fastq: Vec<bool>,
    /// Sampled k-mer occurrences counted in each sample, and distinct sampled k-mers.
    pub kmers_counted: Vec<u64>,
    pub distinct_kmers: Vec<u64>,
    pub table_bytes: usize,
    /// Wall time per sample of reading the file (parsing, composition, k-mer slots) and of
    /// counting its slots, and of the histograms and abundances of all reads.
    pub seconds_reading: Vec<f64>,
    pub seconds_counting: Vec<f64>,
    pub seconds_profiles: f64,
    /// Which reads overlap which (same read order), when asked for.
    pub graph: Option<OverlapGraph>,
    pub seconds_graph: f64,
}

impl ReadFeatures {
    pub fn reads(&self) -> usize {
        self.lengths.len()
    }
}

/// Features of the reads of each file in `paths` (one file per sample).
pub fn read_features(paths: &[PathBuf], options: &ReadFeatureOptions) -> CoreResult<ReadFeatures> {
    options.check()?;
    if paths.is_empty() {
        return Err(CoreError::Parameter(
            "at least one read file is needed".to_string(),
        ));
    }
    let pool = thread_pool(options.threads)?;
    let slots = KmerSlots::new(options.k, options.sampling);
    let tables = CountTables::new(slots.slots(), paths.len());
    let mut samples = Vec::with_capacity(paths.len());
    for (sample, path) in paths.iter().enumerate() {
        let reads = count_sample(path, sample, &tables, &slots, &pool, options)?;
        if reads.stats.records == 0 {
            return Err(CoreError::input(path, crate::seqio::rules::NO_RECORDS));
        }
        if reads.stats.records_kept == 0 {
            return Err(CoreError::input(
                path,
                format!(
                    "no read is at least {} bp long ({} reads); lower the minimum read length",
                    options.min_length, reads.stats.records
                ),
            ));
        }
        samples.push(reads);
    }
    let profiling = std::time::Instant::now();
    let distinct = pool.install(|| (0..paths.len()).map(|s| tables.distinct(s)).collect());
    let graph_started = std::time::Instant::now();
    let graph = options.graph.as_ref().map(|graph_options| {
        let lists: Vec<&[u32]> = samples
            .iter()
            .flat_map(|s| &s.batches)
            .flat_map(|b| (0..b.len()).map(move |i| b.read_slots(i)))
            .collect();
        pool.install(|| overlap_graph(&lists, graph_options))
    });
    let seconds_graph = graph_started.elapsed().as_secs_f64();
    let mut out = pool.install(|| assemble(samples, &tables, options, distinct));
    out.graph = graph;
    out.seconds_graph = seconds_graph;
    out.seconds_profiles = profiling.elapsed().as_secs_f64() - seconds_graph;
    Ok(out)
}

fn count_sample(
    path: &Path,
    sample: usize,
    tables: &CountTables,
    slots: &KmerSlots,
    pool: &rayon::ThreadPool,
    options: &ReadFeatureOptions,
) -> CoreResult<SampleReads> {
    let started = std::time::Instant::now();
    let mut reader = SequenceReader::open(path, 0)?;
    let in_flight = pool.current_num_threads() * 2;
    let (sender, receiver) = sync_channel::<SequenceBatch>(in_flight);
    let (spent_sender, spent_receiver) = sync_channel::<SequenceBatch>(in_flight + 2);
    let done: Mutex<BTreeMap<u64, (KeptReads, u64, u64, u64)>> = Mutex::new(BTreeMap::new());
    let (read_result, work_result) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> CoreResult<(ReadStats, bool)> {
            while let Some(batch) = reader.next_batch_reusing(spent_receiver.try_recv().ok())? {
                if sender.send(batch).is_err() {
                    break;
                }
            }
            Ok((reader.stats, reader.format() == Some(SequenceFormat::Fastq)))
        });
        let work_result = pool.install(|| {
            receiver.into_iter().par_bridge().try_for_each_init(
                || KmerCounter::new(options.composition_k),
                |counter, batch| {
                    let result = count_batch(&batch, counter, slots, path, options)?;
                    let index = batch.index;
                    let _ = spent_sender.try_send(batch);
                    done.lock()
                        .expect("no worker panics while holding the lock")
                        .insert(index, result);
                    Ok::<(), CoreError>(())
                },
            )
        });
        let read_result = producer.join().expect("reader thread does not panic");
        (read_result, work_result)
    });
    let (mut stats, fastq) = match (read_result, work_result) {
        (Err(read_error), Err(work_error)) => {
            return Err(if work_error.record() < read_error.record() {
                work_error
            } else {
                read_error
            })
        }
        (Err(error), Ok(())) | (Ok(_), Err(error)) => return Err(error),
        (Ok(read), Ok(())) => read,
    };
    let mut batches = Vec::new();
    let mut kmers = 0;
    stats.records_kept = 0;
    stats.bases_kept = 0;
    stats.records_too_short = 0;
    for (_, (kept, short, kept_bases, batch_kmers)) in done.into_inner().expect("not poisoned") {
        stats.records_kept += kept.len() as u64;
        stats.records_too_short += short;
        stats.bases_kept += kept_bases;
        kmers += batch_kmers;
        batches.push(kept);
    }
    let lists: Vec<&[u32]> = batches
        .iter()
        .flat_map(|b| [b.slots.as_slice(), b.short_slots.as_slice()])
        .collect();
    let counting = std::time::Instant::now();
    tables.count(&lists, sample, pool);
    let counting = counting.elapsed().as_secs_f64();
    batches.retain(|b| !b.lengths.is_empty());
    for batch in &mut batches {
        batch.short_slots = Vec::new();
    }
    Ok(SampleReads {
        batches,
        stats,
        kmers,
        fastq,
        seconds_reading: started.elapsed().as_secs_f64() - counting,
        seconds_counting: counting,
    })
}

/// Counts a batch's sampled k-mers into `sample`'s table and keeps the features of its reads
/// of at least `min_length`. Returns them with the number of shorter reads, the kept bases and
/// the k-mers counted.
fn count_batch(
    batch: &SequenceBatch,
    counter: &mut KmerCounter,
    slots: &KmerSlots,
    path: &Path,
    options: &ReadFeatureOptions,
) -> CoreResult<(KeptReads, u64, u64, u64)> {
    let width = counter.width();
    let mut kept = KeptReads::default();
    let mut row = vec![0u32; width];
    let (mut short, mut kept_bases, mut counted) = (0u64, 0u64, 0u64);
    for i in 0..batch.len() {
        let sequence = batch.sequence(i);
        row.fill(0);
        // The composition counter also checks every letter, with the rules of `featurize`.
        let composition_kmers = counter
            .count_record(sequence, &mut row)
            .map_err(|position| {
                CoreError::format(
                    path,
                    batch.record_numbers[i],
                    crate::seqio::invalid_character(sequence[position as usize], position),
                )
            })?;
        let keep = sequence.len() as u64 >= options.min_length;
        let read_slots = if keep {
            &mut kept.slots
        } else {
            &mut kept.short_slots
        };
        let start = read_slots.len();
        slots.for_each_slot(sequence, |slot| read_slots.push(slot));
        counted += (read_slots.len() - start) as u64;
        if !keep {
            short += 1;
            continue;
        }
        kept_bases += sequence.len() as u64;
        kept.slot_ends.push(kept.slots.len());
        kept.names.extend_from_slice(batch.name(i));
        kept.name_ends.push(kept.names.len());
        kept.lengths.push(sequence.len() as i64);
        kept.record_numbers.push(batch.record_numbers[i]);
        let scale = if composition_kmers > 0 {
            1.0 / composition_kmers as f64
        } else {
            0.0
        };
        kept.composition
            .extend(row.iter().map(|&c| (c as f64 * scale) as f32));
    }
    kept.slots.shrink_to_fit();
    Ok((kept, short, kept_bases, counted))
}

/// Joins the samples' kept reads and computes the histograms and abundances.
fn assemble(
    samples: Vec<SampleReads>,
    tables: &CountTables,
    options: &ReadFeatureOptions,
    distinct_kmers: Vec<u64>,
) -> ReadFeatures {
    let n_samples = samples.len();
    let bins = options.bins;
    let width = crate::kmer::canonical_count(options.composition_k);
    let reads: usize = samples
        .iter()
        .flat_map(|s| &s.batches)
        .map(|b| b.len())
        .sum();
    let mut out = ReadFeatures {
        samples: n_samples,
        composition_columns: width,
        bins,
        composition: Vec::with_capacity(reads * width),
        histograms: vec![0f32; reads * n_samples * bins],
        abundance: vec![0f32; reads * n_samples],
        solid_fraction: vec![0f32; reads],
        kmers: vec![0u32; reads],
        names: Vec::new(),
        name_ends: Vec::with_capacity(reads),
        lengths: Vec::with_capacity(reads),
        sample_of_read: Vec::with_capacity(reads),
        record_numbers: Vec::with_capacity(reads),
        stats: samples.iter().map(|s| s.stats).collect(),
        fastq: samples.iter().map(|s| s.fastq).collect(),
        kmers_counted: samples.iter().map(|s| s.kmers).collect(),
        distinct_kmers,
        table_bytes: tables.bytes(),
        seconds_reading: samples.iter().map(|s| s.seconds_reading).collect(),
        seconds_counting: samples.iter().map(|s| s.seconds_counting).collect(),
        seconds_profiles: 0.0,
        graph: None,
        seconds_graph: 0.0,
    };
    // Work items: (sample, batch) with the output rows they fill.
    let mut work = Vec::new();
    let mut histograms: &mut [f32] = &mut out.histograms;
    let mut abundance: &mut [f32] = &mut out.abundance;
    let mut solid: &mut [f32] = &mut out.solid_fraction;
    let mut kmers: &mut [u32] = &mut out.kmers;
    for (sample, reads) in samples.iter().enumerate() {
        for batch in &reads.batches {
            let rows = batch.len();
            let (h, rest) = std::mem::take(&mut histograms).split_at_mut(rows * n_samples * bins);
            histograms = rest;
            let (a, rest) = std::mem::take(&mut abundance).split_at_mut(rows * n_samples);
            abundance = rest;
            let (s, rest) = std::mem::take(&mut solid).split_at_mut(rows);
            solid = rest;
            let (m, rest) = std::mem::take(&mut kmers).split_at_mut(rows);
            kmers = rest;
            work.push((sample, batch, h, a, s, m));
        }
    }
    work.into_par_iter()
        .for_each(|(sample, batch, h, a, s, m)| {
            let mut counts = vec![Vec::<u16>::new(); n_samples];
            for i in 0..batch.len() {
                let read_slots = batch.read_slots(i);
                m[i] = read_slots.len() as u32;
                let row = &mut h[i * n_samples * bins..(i + 1) * n_samples * bins];
                let (solid_kmers, means) =
                    read_profile(read_slots, sample, tables, options, row, &mut counts);
                s[i] = if read_slots.is_empty() {
                    0.0
                } else {
                    solid_kmers as f32 / read_slots.len() as f32
                };
                a[i * n_samples..(i + 1) * n_samples].copy_from_slice(&means);
            }
        });
    for (sample, reads) in samples.into_iter().enumerate() {
        for batch in reads.batches {
            out.composition.extend_from_slice(&batch.composition);
            let base = out.names.len();
            out.names.extend_from_slice(&batch.names);
            out.name_ends
                .extend(batch.name_ends.iter().map(|&end| base + end));
            out.lengths.extend_from_slice(&batch.lengths);
            out.record_numbers.extend_from_slice(&batch.record_numbers);
            out.sample_of_read
                .extend(std::iter::repeat_n(sample as u32, batch.len()));
        }
    }
    out
}

/// Fills `row` (samples x bins, zeroed) with the read's histograms and returns the number of
/// its solid k-mers and its abundance in every sample. `counts` is scratch space.
fn read_profile(
    read_slots: &[u32],
    own_sample: usize,
    tables: &CountTables,
    options: &ReadFeatureOptions,
    row: &mut [f32],
    counts: &mut [Vec<u16>],
) -> (usize, Vec<f32>) {
    let n_samples = counts.len();
    let bins = options.bins;
    for sample_counts in counts.iter_mut() {
        sample_counts.clear();
    }
    let mut solid = 0usize;
    for (i, &slot) in read_slots.iter().enumerate() {
        if let Some(&ahead) = read_slots.get(i + PREFETCH_DISTANCE) {
            tables.prefetch(ahead);
        }
        let entry = tables.get(slot);
        let mut seen_elsewhere = false;
        for (sample, counter) in entry.iter().enumerate() {
            let mut count = counter.load(Ordering::Relaxed);
            if sample == own_sample && count < SATURATED {
                // The read itself put this occurrence there.
                count = count.saturating_sub(1);
            }
            seen_elsewhere |= count > 0;
            counts[sample].push(count);
        }
        if seen_elsewhere {
            solid += 1;
        } else if options.solid_histograms {
            for sample_counts in counts.iter_mut() {
                sample_counts.pop();
            }
        } else {
            // All k-mers in the histograms (LRBinner's way), the solid ones in the abundance.
            for (sample, sample_counts) in counts.iter_mut().enumerate() {
                sample_counts.pop();
                row[sample * bins] += 1.0;
            }
        }
    }
    for (sample, values) in counts.iter().enumerate() {
        let histogram = &mut row[sample * bins..(sample + 1) * bins];
        for &count in values {
            histogram[((count as u32 / options.bin_width) as usize).min(bins - 1)] += 1.0;
        }
        let total: f32 = histogram.iter().sum();
        if total > 0.0 {
            histogram.iter_mut().for_each(|v| *v /= total);
        }
    }
    let means = counts
        .iter_mut()
        .map(|values| band_mean(values))
        .collect::<Vec<f32>>();
    debug_assert_eq!(means.len(), n_samples);
    (solid, means)
}

/// Mean of the counts between the `ABUNDANCE_BAND` quantiles (at least one value); 0 when
/// empty. Linear time: two selections, no sort.
fn band_mean(values: &mut [u16]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len();
    let low = ((n as f64 * ABUNDANCE_BAND.0).floor() as usize).min(n - 1);
    let high = ((n as f64 * ABUNDANCE_BAND.1).ceil() as usize).clamp(low + 1, n);
    values.select_nth_unstable(low);
    let upper = &mut values[low..];
    let kept = high - low;
    if kept < upper.len() {
        upper.select_nth_unstable(kept - 1);
    }
    let sum: u64 = upper[..kept].iter().map(|&v| v as u64).sum();
    (sum as f64 / kept as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    fn reverse_complement(kmer: &[u8]) -> Vec<u8> {
        kmer.iter()
            .rev()
            .map(|&b| match b {
                b'A' => b'T',
                b'C' => b'G',
                b'G' => b'C',
                _ => b'A',
            })
            .collect()
    }

    fn code(kmer: &[u8]) -> u64 {
        kmer.iter().fold(0u64, |acc, &b| {
            (acc << 2)
                | match b {
                    b'A' => 0,
                    b'C' => 1,
                    b'G' => 2,
                    _ => 3,
                }
        })
    }

    /// Slow reference: every k-mer's canonical string, with its slot when sampled.
    fn naive_slots(sequence: &[u8], slots: &KmerSlots, k: usize) -> Vec<(Vec<u8>, Option<u32>)> {
        let upper: Vec<u8> = sequence.to_ascii_uppercase();
        upper
            .windows(k)
            .filter(|w| w.iter().all(|b| b"ACGT".contains(b)))
            .map(|w| {
                let rc = reverse_complement(w);
                let canonical = if w <= &rc[..] { w.to_vec() } else { rc.clone() };
                let slot = slots.slot(slots.canonical_index(code(w), code(&rc)));
                (canonical, slot)
            })
            .collect()
    }

    #[test]
    fn canonical_index_is_a_dense_bijection_of_canonical_kmers() {
        for k in [5usize, 6, 7, 8] {
            let slots = KmerSlots::new(k, 1);
            let mut seen = HashMap::new();
            for forward in 0..(1u64 << (2 * k)) {
                let kmer: Vec<u8> = (0..k)
                    .rev()
                    .map(|i| b"ACGT"[((forward >> (2 * i)) & 3) as usize])
                    .collect();
                let reverse = code(&reverse_complement(&kmer));
                let index = slots.canonical_index(forward, reverse);
                assert_eq!(index, slots.canonical_index(reverse, forward));
                assert!(index < (1u64 << slots.bits));
                let canonical = kmer.clone().min(reverse_complement(&kmer));
                let previous = seen.insert(index, canonical.clone());
                assert!(previous.is_none() || previous == Some(canonical));
            }
            // Odd k: every slot used; even k: one slot per canonical k-mer.
            assert_eq!(seen.len(), crate::kmer::canonical_count(k));
            let mixed: std::collections::HashSet<u64> =
                seen.keys().map(|&i| slots.mix(i)).collect();
            assert_eq!(mixed.len(), seen.len(), "mix is injective");
        }
    }

    #[test]
    fn slots_match_a_naive_scan_and_skip_non_acgt() {
        let sequence = b"ACGTNACGTTGCAacgtggtcaRTTTTACGGGCATCGATCGATNNNACGATCGTAGCTAGCTAGGATC";
        for k in [8usize, 9, 11] {
            for sampling in [1u32, 2, 8] {
                let slots = KmerSlots::new(k, sampling);
                let mut fast = Vec::new();
                slots.for_each_slot(sequence, |s| fast.push(s));
                let naive: Vec<u32> = naive_slots(sequence, &slots, k)
                    .into_iter()
                    .filter_map(|(_, s)| s)
                    .collect();
                assert_eq!(fast, naive, "k={k} sampling={sampling}");
            }
        }
    }

    #[test]
    fn sampling_keeps_about_its_share() {
        let slots = KmerSlots::new(15, 8);
        let mut state = 12345u64;
        let sequence: Vec<u8> = (0..200_000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                b"ACGT"[(state >> 62) as usize]
            })
            .collect();
        let mut kept = 0usize;
        slots.for_each_slot(&sequence, |_| kept += 1);
        let expected = (sequence.len() - 14) as f64 / 8.0;
        assert!((kept as f64 - expected).abs() < 0.05 * expected, "{kept}");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vaebin-readcov-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn histograms_and_abundance_by_hand() {
        // k = 8, no sampling, bin width 1, 4 bins. r1 (9 bases) holds ACGTACGG and CGTACGGA;
        // r2 holds ACGTACGG twice (once as its reverse complement CCGTACGT, after an N); r3 is
        // too short to be featurized but its CGTACGGA is counted. Sample b's one read holds
        // ACGTACGG (as CCGTACGT) and CGTACGGA (as TCCGTACG) once each.
        let dir = temp_dir("hand");
        let a = write(
            &dir,
            "a.fq",
            "@r1\nACGTACGGA\n+\nIIIIIIIII\n@r2\nACGTACGGNCCGTACGT\n+\nIIIIIIIIIIIIIIIII\n@r3\nCGTACGGA\n+\nIIIIIIII\n",
        );
        let b = write(&dir, "b.fa", ">s\nTTTTTTTTTCCGTACGT\n");
        let options = ReadFeatureOptions {
            k: 8,
            composition_k: 1,
            bins: 4,
            bin_width: 1,
            sampling: 1,
            min_length: 9,
            solid_histograms: true,
            graph: None,
            threads: Some(2),
        };
        let out = read_features(&[a, b], &options).unwrap();
        assert_eq!(out.reads(), 3);
        assert_eq!(out.record_numbers, vec![1, 2, 1]);
        assert_eq!(out.sample_of_read, vec![0, 0, 1]);
        assert_eq!(out.stats[0].records_too_short, 1);
        assert_eq!(out.kmers_counted, vec![5, 10]);
        assert_eq!(out.fastq, vec![true, false]);
        // r1 in a: ACGTACGG 3 - 1 own = 2, CGTACGGA 2 - 1 = 1; in b: 1 and 1.
        assert_eq!(
            &out.histograms[0..8],
            &[0.0, 0.5, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(out.kmers[0], 2);
        assert_eq!(out.solid_fraction[0], 1.0);
        // The 50-90 % band of two counts is the larger one.
        assert_eq!(&out.abundance[0..2], &[2.0, 1.0]);
        // r2: ACGTACGG twice, 3 - 1 = 2 in a (one own occurrence taken off each), 1 in b.
        assert_eq!(out.kmers[1], 2);
        assert_eq!(
            &out.histograms[8..16],
            &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(&out.abundance[2..4], &[2.0, 1.0]);
        let composition_a: f32 = out.composition[0..2].iter().sum();
        assert!((composition_a - 1.0).abs() < 1e-6);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn counts_match_a_naive_counter() {
        let dir = temp_dir("naive");
        let mut state = 99u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let genome: Vec<u8> = (0..3000).map(|_| b"ACGT"[(next() % 4) as usize]).collect();
        let mut reads = Vec::new();
        for i in 0..60 {
            let start = (next() % 2500) as usize;
            let length = 100 + (next() % 400) as usize;
            let mut read = genome[start..(start + length).min(genome.len())].to_vec();
            if i % 3 == 0 {
                read = reverse_complement(&read);
            }
            if i % 5 == 0 {
                read[10] = b'N';
            }
            reads.push(read);
        }
        let text: String = reads
            .iter()
            .enumerate()
            .map(|(i, r)| format!(">r{i}\n{}\n", String::from_utf8_lossy(r)))
            .collect();
        let path = write(&dir, "reads.fa", &text);
        for (k, sampling, solid) in [(9usize, 1u32, false), (10, 2, true), (13, 4, true)] {
            let options = ReadFeatureOptions {
                k,
                composition_k: 2,
                bins: 8,
                bin_width: 3,
                sampling,
                min_length: 100,
                solid_histograms: solid,
                graph: None,
                threads: Some(2),
            };
            let out = read_features(std::slice::from_ref(&path), &options).unwrap();
            let slots = KmerSlots::new(k, sampling);
            let mut counts: HashMap<Vec<u8>, u16> = HashMap::new();
            for read in &reads {
                for (canonical, slot) in naive_slots(read, &slots, k) {
                    if slot.is_some() {
                        *counts.entry(canonical).or_default() += 1;
                    }
                }
            }
            for (i, read) in reads.iter().enumerate() {
                let mut histogram = vec![0f32; 8];
                let kmers = naive_slots(read, &slots, k);
                let sampled: Vec<_> = kmers.iter().filter(|(_, s)| s.is_some()).collect();
                let mut total = 0.0;
                for (canonical, _) in &sampled {
                    let count = counts[canonical] - 1;
                    if count > 0 || !solid {
                        histogram[((count / 3) as usize).min(7)] += 1.0;
                        total += 1.0;
                    }
                }
                for v in histogram.iter_mut() {
                    *v /= f32::max(total, 1.0);
                }
                assert_eq!(out.kmers[i] as usize, sampled.len());
                let got = &out.histograms[i * 8..(i + 1) * 8];
                for (g, h) in got.iter().zip(&histogram) {
                    assert!(
                        (g - h).abs() < 1e-6,
                        "k={k} read {i}: {got:?} vs {histogram:?}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_inputs_are_one_clear_error() {
        let dir = temp_dir("bad");
        let options = ReadFeatureOptions {
            k: 9,
            min_length: 10,
            ..ReadFeatureOptions::default()
        };
        let empty = write(&dir, "empty.fq", "");
        let error = read_features(std::slice::from_ref(&empty), &options).unwrap_err();
        assert!(error
            .to_string()
            .ends_with("contains no sequences (empty file)"));
        let short = write(&dir, "short.fq", "@a\nACGT\n+\nIIII\n");
        let error = read_features(std::slice::from_ref(&short), &options).unwrap_err();
        assert!(error
            .to_string()
            .contains("no read is at least 10 bp long (1 reads)"));
        let quality = write(&dir, "q.fq", "@a\nACGTACGTACGT\n+\nIII\n");
        let error = read_features(std::slice::from_ref(&quality), &options).unwrap_err();
        assert!(error
            .to_string()
            .contains("record 1: FASTQ quality line has 3"));
        let digits = write(&dir, "d.fa", ">a\nACGTACGTACGT\n>b\nACGT5ACGTACGT\n");
        let error = read_features(std::slice::from_ref(&digits), &options).unwrap_err();
        assert!(error
            .to_string()
            .contains("record 2: invalid character '5'"));
        let bad_k = ReadFeatureOptions {
            k: 17,
            ..ReadFeatureOptions::default()
        };
        assert!(read_features(&[digits], &bad_k).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod band_tests {
    use super::band_mean;

    #[test]
    fn band_mean_keeps_the_50_to_90_percent_quantiles() {
        let mut values: Vec<u16> = (1..=10).rev().collect();
        // Sorted 1..=10: indices 5..9 hold 6, 7, 8, 9.
        assert_eq!(band_mean(&mut values), 7.5);
        assert_eq!(band_mean(&mut [4]), 4.0);
        assert_eq!(band_mean(&mut []), 0.0);
        let mut skewed = vec![1u16; 40];
        skewed.extend([20u16; 60]);
        skewed.push(60_000);
        assert_eq!(band_mean(&mut skewed), 20.0);
    }
}
