//! Per-contig depth of coverage from coordinate-sorted BAM files, with the semantics of MetaBAT2's
//! `jgi_summarize_bam_contig_depths` (2.15) so that depth tables from either tool agree:
//!
//! - records flagged secondary, QC-fail or duplicate are left out; supplementary ones count;
//!   unmapped ones and those under the MAPQ threshold (default 0) are left out;
//! - a read counts only when its identity `exact / (exact + mismatches + insertions + deletions)`
//!   reaches the threshold (0.97); mismatches come from NM minus the indels (or from `X`
//!   operations), computed in 32-bit float as MetaBAT does;
//! - depth is added over `M`, `=` and `X` operations only (not over deletions, skips, clips);
//! - an alignment running past the contig end is cut before the operation that crosses it;
//! - per contig, mean and sample variance (n - 1) of the per-base depth leave out
//!   `min(75, average read length)` bases at each end, unless the contig is no longer than twice
//!   that plus one; windows of 2 bases or fewer give 0. The average read length is the running
//!   integer mean of the stored sequence lengths of all records read so far, taken when the
//!   contig is finished, exactly as MetaBAT updates it;
//! - the sums are accumulated in 32-bit float in base order, as MetaBAT does, so large contigs
//!   round the same way.
//!
//! The `Mean` mode is the plain mean and sample variance over every base, with the same flag and
//! MAPQ filters but no identity filter and no edge trimming, computed in 64-bit.
//!
//! Memory: one depth array of the longest contig plus the BAM reader's buffers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::bam::{
    consumes, BamHeader, BamReader, CigarWords, CIGAR_DELETION, CIGAR_DIFF, CIGAR_EQUAL,
    CIGAR_INSERTION, CIGAR_MATCH, FLAG_DUPLICATE, FLAG_QC_FAIL, FLAG_SECONDARY, FLAG_UNMAPPED,
};
use crate::errors::{CoreError, CoreResult};
use crate::seqio::{self, SequenceFormat};

/// How many reference mismatches an error message lists before giving the total.
const MISMATCHES_SHOWN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthMode {
    /// `jgi_summarize_bam_contig_depths` semantics (identity filter, edge trimming).
    MetaBat,
    /// Plain per-base mean and variance over the whole contig.
    Mean,
}

#[derive(Debug, Clone, Copy)]
pub struct CoverageOptions {
    pub mode: DepthMode,
    /// Minimum read identity in [0, 1] (MetaBAT mode only).
    pub min_identity: f32,
    /// Most bases left out at each contig end (MetaBAT's `--maxEdgeBases`; 0 keeps the edges).
    pub trim_edges: u32,
    pub min_mapq: u8,
    /// BGZF inflating threads; None uses every available core.
    pub threads: Option<usize>,
}

impl Default for CoverageOptions {
    fn default() -> Self {
        CoverageOptions {
            mode: DepthMode::MetaBat,
            min_identity: 0.97,
            trim_edges: 75,
            min_mapq: 0,
            threads: None,
        }
    }
}

impl CoverageOptions {
    pub fn check(&self) -> CoreResult<()> {
        if !(0.0..=1.0).contains(&self.min_identity) {
            return Err(CoreError::Parameter(format!(
                "minimum identity must be between 0 and 1, got {}",
                self.min_identity
            )));
        }
        if self.threads == Some(0) {
            return Err(CoreError::Parameter("threads must be at least 1".into()));
        }
        Ok(())
    }

    fn thread_count(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// Contig names and lengths, in assembly order.
#[derive(Debug, Clone, Default)]
pub struct Contigs {
    pub names: Vec<String>,
    pub lengths: Vec<u64>,
}

impl Contigs {
    /// Names and lengths of every record of a FASTA file (plain, gzip or bgzip), read and
    /// checked by the sequence reader's rules, as every other command reads them.
    pub fn from_fasta(path: &Path) -> CoreResult<Contigs> {
        let records = seqio::names_and_lengths(path)?;
        if records.format == Some(SequenceFormat::Fastq) {
            return Err(CoreError::format(
                path,
                1,
                "is FASTQ; the contigs must be FASTA",
            ));
        }
        Ok(Contigs {
            names: records.names,
            lengths: records.lengths,
        })
    }
}

/// Depth statistics of one BAM file, indexed like the contigs.
#[derive(Debug, Clone, Default)]
pub struct SampleDepths {
    pub means: Vec<f64>,
    pub variances: Vec<f64>,
    /// Bases left out at each contig end when the table's total depth is computed (MetaBAT's
    /// `min(maxEdgeBases, final average read length)`; 0 in `Mean` mode).
    pub edge_trim: u32,
    pub stats: ReadCounts,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReadCounts {
    pub records: u64,
    /// Secondary, QC-fail or duplicate records.
    pub filtered_flags: u64,
    pub unmapped: u64,
    pub low_mapq: u64,
    pub low_identity: u64,
    /// Reads whose aligned bases were added to the depth.
    pub counted: u64,
    /// MetaBAT's running average read length at the end of the file.
    pub average_read_length: u64,
}

/// Maps BAM reference ids to contig indices; the references must be exactly the contigs
/// (same names and lengths, any order).
pub fn match_references(
    bam: &Path,
    header: &BamHeader,
    contigs: &Contigs,
    contigs_path: &Path,
) -> CoreResult<Vec<usize>> {
    let index: HashMap<&str, usize> = contigs
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut seen = vec![false; contigs.names.len()];
    let mut mapping = Vec::with_capacity(header.names.len());
    let mut problems = Vec::new();
    let mut total = 0usize;
    let mut note = |problem: String, problems: &mut Vec<String>| {
        total += 1;
        if problems.len() < MISMATCHES_SHOWN {
            problems.push(problem);
        }
    };
    for (name, &length) in header.names.iter().zip(&header.lengths) {
        match index.get(name.as_str()) {
            None => {
                note(format!("reference '{name}' is not a contig"), &mut problems);
                mapping.push(usize::MAX);
            }
            Some(&i) => {
                if seen[i] {
                    note(format!("reference '{name}' appears twice"), &mut problems);
                }
                seen[i] = true;
                if contigs.lengths[i] != length {
                    note(
                        format!(
                            "'{name}' is {length} bp in the BAM but {} bp in the contigs",
                            contigs.lengths[i]
                        ),
                        &mut problems,
                    );
                }
                mapping.push(i);
            }
        }
    }
    for (i, name) in contigs.names.iter().enumerate() {
        if !seen[i] {
            note(
                format!("contig '{name}' is not a BAM reference"),
                &mut problems,
            );
        }
    }
    if total > 0 {
        let more = if total > problems.len() {
            format!("; and {} more", total - problems.len())
        } else {
            String::new()
        };
        return Err(CoreError::input(
            bam,
            format!(
                "BAM references do not match the contigs of {} ({total} mismatch{}: {}{more})",
                contigs_path.display(),
                if total == 1 { "" } else { "es" },
                problems.join("; "),
            ),
        ));
    }
    Ok(mapping)
}

/// Depth of every contig in one BAM file.
pub fn sample_depths(
    bam: &Path,
    contigs: &Contigs,
    contigs_path: &Path,
    options: &CoverageOptions,
) -> CoreResult<SampleDepths> {
    options.check()?;
    let reader = BamReader::open(bam, options.thread_count())?;
    depths_from_reader(reader, contigs, contigs_path, options)
}

/// `sample_depths` of a BAM reader already open (`BamReader::from_reader` reads any stream).
pub fn depths_from_reader(
    mut reader: BamReader,
    contigs: &Contigs,
    contigs_path: &Path,
    options: &CoverageOptions,
) -> CoreResult<SampleDepths> {
    let path = reader.path().to_path_buf();
    let bam = path.as_path();
    let contig_of_reference = match_references(bam, &reader.header, contigs, contigs_path)?;
    let header = std::mem::take(&mut reader.header);
    let mut accumulator = DepthAccumulator::new(options, header.names.len());
    let mut previous: Option<(i32, i32)> = None;
    let mut unplaced_seen = false;
    while let Some(record) = reader.next_record()? {
        let reference = record.reference_id();
        let position = record.position();
        if reference >= 0 {
            if reference as usize >= header.lengths.len() {
                return Err(CoreError::format(
                    bam,
                    reader.records(),
                    format!("reference id {reference} is not in the header"),
                ));
            }
            let out_of_order = unplaced_seen || previous.is_some_and(|p| p > (reference, position));
            if out_of_order {
                return Err(unsorted_error(
                    bam,
                    &header,
                    reader.records(),
                    previous,
                    reference,
                    position,
                ));
            }
            previous = Some((reference, position));
        } else {
            unplaced_seen = true;
        }
        let length = if reference >= 0 {
            header.lengths[reference as usize]
        } else {
            0
        };
        accumulator.add(&record_view(&record), length);
    }
    Ok(accumulator.finish(&contig_of_reference, contigs.names.len()))
}

fn unsorted_error(
    bam: &Path,
    header: &BamHeader,
    record: u64,
    previous: Option<(i32, i32)>,
    reference: i32,
    position: i32,
) -> CoreError {
    let name = |id: i32| header.names[id as usize].as_str();
    let after = match previous {
        Some((id, at)) => format!("'{}' position {}", name(id), at as i64 + 1),
        None => "unmapped reads".to_string(),
    };
    let claimed = match header.sort_order.as_deref() {
        Some("coordinate") | None => String::new(),
        Some(other) => format!(" (its header says SO:{other})"),
    };
    CoreError::input(
        bam,
        format!(
            "not sorted by coordinate{claimed}: record {record} at '{}' position {} comes after {after}; sort it with `samtools sort`",
            name(reference),
            position as i64 + 1
        ),
    )
}

/// The fields of a record the depth computation reads.
pub struct AlignedRead<'a> {
    pub reference: i32,
    pub position: i32,
    pub flags: u16,
    pub mapq: u8,
    pub sequence_length: u32,
    pub cigar: CigarOps<'a>,
    /// NM as htslib's `bam_aux2i` reads it; Err when the tags are malformed.
    pub edit_distance: Result<Option<i64>, crate::bam::MalformedTags>,
}

/// CIGAR operations, from a BAM record or a plain list (tests).
#[derive(Clone, Copy)]
pub enum CigarOps<'a> {
    Packed(CigarWords<'a>),
    List(&'a [(u32, u32)]),
}

impl CigarOps<'_> {
    fn len(&self) -> usize {
        match self {
            CigarOps::Packed(words) => words.len(),
            CigarOps::List(ops) => ops.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> (u32, u32) {
        match self {
            CigarOps::Packed(words) => words.get(i),
            CigarOps::List(ops) => ops[i],
        }
    }
}

fn record_view<'a>(record: &crate::bam::Record<'a>) -> AlignedRead<'a> {
    AlignedRead {
        reference: record.reference_id(),
        position: record.position(),
        flags: record.flags(),
        mapq: record.mapping_quality(),
        sequence_length: record.sequence_length(),
        cigar: CigarOps::Packed(record.cigar()),
        edit_distance: record.edit_distance(),
    }
}

/// Number of leading CIGAR operations kept: MetaBAT turns the operation that carries an
/// alignment past the contig end into a soft clip and drops the rest.
pub fn operations_within(cigar: &CigarOps, position: u64, contig_length: u64) -> usize {
    let mut reference = position;
    for i in 0..cigar.len() {
        let (op, length) = cigar.get(i);
        if consumes(op).1 {
            reference += length as u64;
        }
        if reference > contig_length {
            return i;
        }
    }
    cigar.len()
}

/// MetaBAT's read identity: exact matches over matches, mismatches and indel bases, with the
/// mismatches taken from NM (or `X` operations), in the same 32-bit arithmetic. NaN when the
/// read has no aligned base (MetaBAT then keeps it; it adds no depth anyway).
pub fn metabat_identity(cigar: &CigarOps, operations: usize, edit_distance: Option<i64>) -> f32 {
    let (mut exact, mut mismatches, mut insertions, mut deletions) = (0u32, 0u32, 0u32, 0u32);
    let mut m_operations = 0u32;
    let mut equal_or_diff = false;
    for i in 0..operations {
        let (op, length) = cigar.get(i);
        match op {
            CIGAR_MATCH => {
                m_operations = m_operations.wrapping_add(length);
                exact = exact.wrapping_add(length);
            }
            CIGAR_DIFF => {
                equal_or_diff = true;
                mismatches = mismatches.wrapping_add(length);
            }
            CIGAR_EQUAL => {
                equal_or_diff = true;
                exact = exact.wrapping_add(length);
            }
            CIGAR_INSERTION => insertions = insertions.wrapping_add(length),
            CIGAR_DELETION => deletions = deletions.wrapping_add(length),
            _ => {}
        }
    }
    if let Some(tag) = edit_distance {
        let indels = insertions.wrapping_add(deletions);
        // MetaBAT stores NM in an int32 and compares it signed.
        let mut nm = tag as i32;
        if nm < indels as i32 {
            nm = indels.wrapping_add(mismatches) as i32;
        }
        let nm = nm as u32;
        let from_nm = |exact: u32, mismatches: u32| {
            let new_mismatches = nm.wrapping_sub(indels);
            (
                exact.wrapping_sub(new_mismatches.wrapping_sub(mismatches)),
                new_mismatches,
            )
        };
        if equal_or_diff {
            // With =/X present, M marks ambiguous bases: matches unless NM says otherwise.
            if m_operations > 0 && nm != indels.wrapping_add(mismatches) {
                if nm == indels.wrapping_add(mismatches).wrapping_add(m_operations) {
                    mismatches = mismatches.wrapping_add(m_operations);
                    exact = exact.wrapping_sub(m_operations);
                } else {
                    (exact, mismatches) = from_nm(exact, mismatches);
                }
            }
        } else {
            (exact, mismatches) = from_nm(exact, mismatches);
        }
    }
    let total = exact
        .wrapping_add(mismatches)
        .wrapping_add(insertions)
        .wrapping_add(deletions);
    exact as f32 / total as f32
}

/// Mean and sample variance of a contig's per-base depth, MetaBAT style: `edge` bases left out
/// at each end when the contig is longer than `2 * edge + 1`, 32-bit float sums in base order,
/// and (0, 0) for a window of 2 bases or fewer.
pub fn metabat_contig_stats(depth: &[i32], edge: u64) -> (f32, f32) {
    let length = depth.len() as u64;
    let (start, end) = if length > 2 * edge + 1 {
        (edge, length - edge)
    } else {
        (0, length)
    };
    let bases = end - start;
    if bases <= 2 {
        return (0.0, 0.0);
    }
    let window = &depth[start as usize..end as usize];
    // MetaBAT adds each term in double and stores the sum back into a float. Double holds more
    // than 2 * 24 + 2 bits, so that double rounding equals one float rounding: float32 additions
    // give the same numbers with a shorter dependency chain, as long as every term is a float32
    // itself (depths up to 2^24; deeper ones take MetaBAT's literal path).
    let mut mean = 0f32;
    if window.iter().all(|&d| d.unsigned_abs() <= 1 << 24) {
        for &d in window {
            mean += d as f32;
        }
    } else {
        for &d in window {
            mean = (mean as f64 + d as f64) as f32;
        }
    }
    mean /= bases as f32;
    let mut variance = 0f32;
    for &d in window {
        let difference = d as f32 - mean;
        variance += difference * difference;
    }
    variance /= (bases - 1) as f32;
    (mean, variance)
}

/// Mean and sample variance over every base, exact to 64-bit rounding.
pub fn plain_contig_stats(depth: &[i32]) -> (f64, f64) {
    let bases = depth.len();
    if bases == 0 {
        return (0.0, 0.0);
    }
    let total: i64 = depth.iter().map(|&d| d as i64).sum();
    let mean = total as f64 / bases as f64;
    if bases < 2 {
        return (mean, 0.0);
    }
    let squares: f64 = depth
        .iter()
        .map(|&d| {
            let difference = d as f64 - mean;
            difference * difference
        })
        .sum();
    (mean, squares / (bases - 1) as f64)
}

/// Depths of every contig in every BAM file (one file at a time, each with all the threads).
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub contigs: Contigs,
    pub samples: Vec<SampleDepths>,
}

impl Coverage {
    /// Row-major contigs x samples matrices of the means and the variances.
    pub fn matrices(&self) -> (Vec<f64>, Vec<f64>) {
        let samples = self.samples.len();
        let contigs = self.contigs.names.len();
        let mut means = vec![0.0; contigs * samples];
        let mut variances = vec![0.0; contigs * samples];
        for (column, sample) in self.samples.iter().enumerate() {
            for row in 0..contigs {
                means[row * samples + column] = sample.means[row];
                variances[row * samples + column] = sample.variances[row];
            }
        }
        (means, variances)
    }
}

pub fn coverage(
    contigs_path: &Path,
    bams: &[std::path::PathBuf],
    options: &CoverageOptions,
) -> CoreResult<Coverage> {
    options.check()?;
    if bams.is_empty() {
        return Err(CoreError::Parameter("no BAM file given".into()));
    }
    // The first BAM is opened before the FASTA is read, so its blocks inflate meanwhile.
    let mut first = Some(BamReader::open(&bams[0], options.thread_count())?);
    let contigs = Contigs::from_fasta(contigs_path)?;
    let mut samples = Vec::with_capacity(bams.len());
    for bam in bams {
        let reader = match first.take() {
            Some(reader) => reader,
            None => BamReader::open(bam, options.thread_count())?,
        };
        samples.push(depths_from_reader(reader, &contigs, contigs_path, options)?);
    }
    Ok(Coverage { contigs, samples })
}

/// `total_average_depth` of every row of a row-major contigs x samples matrix of means.
pub fn total_average_depths(lengths: &[f64], means: &[f64], edge_trims: &[u32]) -> Vec<f32> {
    let samples = edge_trims.len();
    if samples == 0 {
        return vec![0.0; lengths.len()];
    }
    lengths
        .iter()
        .zip(means.chunks(samples))
        .map(|(&length, row)| total_average_depth(length, row, edge_trims))
        .collect()
}

/// Follows the reads of one BAM file in order and keeps the depth of the contig being read as a
/// difference array (+1 where an aligned block starts, -1 past its end).
pub struct DepthAccumulator {
    options: CoverageOptions,
    threshold: f32,
    /// Per BAM reference id: (mean, variance); filled when the contig is finished.
    finished: Vec<(f64, f64)>,
    current: Option<(usize, u64)>,
    difference: Vec<i32>,
    read_bases: u64,
    average_read_length: u64,
    counts: ReadCounts,
}

impl DepthAccumulator {
    pub fn new(options: &CoverageOptions, references: usize) -> DepthAccumulator {
        DepthAccumulator {
            options: *options,
            threshold: options.min_identity,
            finished: vec![(0.0, 0.0); references],
            current: None,
            difference: Vec::new(),
            read_bases: 0,
            average_read_length: 0,
            counts: ReadCounts::default(),
        }
    }

    fn edge(&self) -> u64 {
        match self.options.mode {
            DepthMode::MetaBat => (self.options.trim_edges as u64).min(self.average_read_length),
            DepthMode::Mean => 0,
        }
    }

    /// Adds one record; `contig_length` is its reference's length (ignored when unplaced).
    pub fn add(&mut self, read: &AlignedRead, contig_length: u64) {
        self.counts.records += 1;
        self.read_bases += read.sequence_length as u64;
        if read.flags & (FLAG_SECONDARY | FLAG_QC_FAIL | FLAG_DUPLICATE) != 0 {
            self.counts.filtered_flags += 1;
            return;
        }
        if read.flags & FLAG_UNMAPPED != 0 || read.reference < 0 {
            self.counts.unmapped += 1;
            return;
        }
        if read.mapq < self.options.min_mapq {
            self.counts.low_mapq += 1;
            return;
        }
        self.average_read_length = self.read_bases / self.counts.records;
        let reference = read.reference as usize;
        if self.current.map(|(id, _)| id) != Some(reference) {
            self.finish_current();
            self.current = Some((reference, contig_length));
            let needed = contig_length as usize + 1;
            if self.difference.len() < needed {
                self.difference.resize(needed, 0);
            }
        }
        let placed = read.position >= 0 && (read.position as u64) < contig_length;
        let operations = if placed {
            operations_within(&read.cigar, read.position as u64, contig_length)
        } else {
            read.cigar.len()
        };
        if self.options.mode == DepthMode::MetaBat {
            let edit_distance = read.edit_distance.unwrap_or(None);
            let identity = metabat_identity(&read.cigar, operations, edit_distance);
            if identity < self.threshold {
                self.counts.low_identity += 1;
                return;
            }
        }
        if !placed {
            return;
        }
        let mut reference_at = read.position as u64;
        for i in 0..operations {
            let (op, length) = read.cigar.get(i);
            let length = length as u64;
            if matches!(op, CIGAR_MATCH | CIGAR_EQUAL | CIGAR_DIFF) {
                if reference_at + length > contig_length {
                    break;
                }
                self.difference[reference_at as usize] += 1;
                self.difference[(reference_at + length) as usize] -= 1;
            }
            if consumes(op).1 {
                reference_at += length;
            }
        }
        self.counts.counted += 1;
    }

    fn finish_current(&mut self) {
        let Some((reference, length)) = self.current.take() else {
            return;
        };
        let length = length as usize;
        let edge = self.edge();
        let depth = &mut self.difference[..length];
        let mut running = 0i32;
        for value in depth.iter_mut() {
            running += *value;
            *value = running;
        }
        let stats = match self.options.mode {
            DepthMode::MetaBat => {
                let (mean, variance) = metabat_contig_stats(depth, edge);
                (mean as f64, variance as f64)
            }
            DepthMode::Mean => plain_contig_stats(depth),
        };
        self.finished[reference] = stats;
        self.difference[..=length].fill(0);
    }

    /// Statistics per contig: `contig_of_reference` maps BAM reference ids to contig indices.
    pub fn finish(mut self, contig_of_reference: &[usize], contigs: usize) -> SampleDepths {
        self.finish_current();
        let mut means = vec![0.0; contigs];
        let mut variances = vec![0.0; contigs];
        for (&(mean, variance), &contig) in self.finished.iter().zip(contig_of_reference) {
            means[contig] = mean;
            variances[contig] = variance;
        }
        self.counts.average_read_length = self.average_read_length;
        SampleDepths {
            means,
            variances,
            edge_trim: self.edge() as u32,
            stats: self.counts,
        }
    }
}

/// MetaBAT's `totalAvgDepth` for one contig from its per-sample means: each sample's mean times
/// its trimmed length, rounded to whole bases, summed, divided by the summed trimmed lengths and
/// multiplied by the number of samples, in 32-bit float as MetaBAT does.
pub fn total_average_depth(length: f64, means: &[f64], edge_trims: &[u32]) -> f32 {
    let length = length as f32;
    let mut bases = 0u64;
    let mut trimmed_total = 0f32;
    for (&mean, &edge) in means.iter().zip(edge_trims) {
        let both_ends = 2.0 * edge as f32;
        let trimmed = if both_ends >= length {
            length
        } else {
            length - both_ends
        };
        let product = mean as f32 * trimmed;
        bases += (product as f64 + 0.5) as u64;
        trimmed_total += trimmed;
    }
    let mut average = 0f32;
    if trimmed_total > 0.0 {
        average = bases as f32 / trimmed_total;
    }
    average * means.len() as f32
}

/// Writes `value` the way C++ streams print a number by default (printf's `%g`, 6 significant
/// digits), which is how MetaBAT's depth tables are written.
pub fn format_general(value: f64, out: &mut String) {
    const PRECISION: i32 = 6;
    if value.is_nan() {
        out.push_str(if value.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        });
        return;
    }
    if value.is_infinite() {
        out.push_str(if value < 0.0 { "-inf" } else { "inf" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // The exponent after rounding to 6 significant digits decides between the two notations.
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("exponent present");
    let exponent: i32 = exponent.parse().expect("integer exponent");
    if !(-4..PRECISION).contains(&exponent) {
        out.push_str(trim_fraction(mantissa));
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    } else {
        let decimals = (PRECISION - 1 - exponent) as usize;
        let fixed = format!("{value:.decimals$}");
        out.push_str(trim_fraction(&fixed));
    }
}

fn trim_fraction(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// Body rows of a depth table: name, then every value of the row in `%g` form, tab separated.
/// `values` is row-major with `columns` values per row (length, total depth, mean, variance...).
pub fn depth_table_rows(names: &[String], values: &[f64], columns: usize) -> String {
    let mut out = String::with_capacity(names.len() * (16 + 10 * columns));
    for (name, row) in names.iter().zip(values.chunks(columns.max(1))) {
        out.push_str(name);
        for &value in row {
            out.push('\t');
            format_general(value, &mut out);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u32 = CIGAR_MATCH;
    const I: u32 = CIGAR_INSERTION;
    const D: u32 = CIGAR_DELETION;
    const S: u32 = crate::bam::CIGAR_SOFT_CLIP;
    const EQ: u32 = CIGAR_EQUAL;
    const X: u32 = CIGAR_DIFF;

    fn identity(ops: &[(u32, u32)], nm: Option<i64>) -> f32 {
        let cigar = CigarOps::List(ops);
        metabat_identity(&cigar, ops.len(), nm)
    }

    #[test]
    fn identity_counts_indels_in_the_denominator() {
        // 100M with NM 3: 97 / 100.
        assert_eq!(identity(&[(M, 100)], Some(3)), 97.0 / 100.0);
        // 50M2I48M, NM 3 (2 inserted + 1 mismatch): 97 exact of 98 + 2 = 100.
        assert_eq!(identity(&[(M, 50), (I, 2), (M, 48)], Some(3)), 97.0 / 100.0);
        // Deletions add to the denominator but not to the aligned bases.
        assert_eq!(
            identity(&[(M, 50), (D, 3), (M, 50)], Some(3)),
            100.0 / 103.0
        );
        // Soft clips do not count at all.
        assert_eq!(identity(&[(S, 20), (M, 80)], Some(0)), 1.0);
    }

    #[test]
    fn identity_without_nm_sees_only_indels() {
        assert_eq!(identity(&[(M, 100)], None), 1.0);
        assert_eq!(identity(&[(M, 97), (I, 3)], None), 97.0 / 100.0);
    }

    #[test]
    fn identity_nm_below_indels_is_replaced() {
        assert_eq!(identity(&[(M, 90), (D, 10)], Some(2)), 90.0 / 100.0);
    }

    #[test]
    fn identity_with_equal_and_diff_operations() {
        assert_eq!(identity(&[(EQ, 95), (X, 5)], Some(5)), 95.0 / 100.0);
        // NM is ignored when the CIGAR has =/X and no M.
        assert_eq!(identity(&[(EQ, 100)], Some(9)), 1.0);
        // M beside =/X: a mismatch when NM counts it.
        assert_eq!(identity(&[(EQ, 98), (M, 2)], Some(2)), 98.0 / 100.0);
    }

    #[test]
    fn identity_threshold_is_compared_in_single_precision() {
        let threshold = 0.97f32;
        assert!(identity(&[(M, 100)], Some(3)) >= threshold);
        assert!(identity(&[(M, 100)], Some(4)) < threshold);
    }

    #[test]
    fn overhanging_operation_is_cut() {
        let ops = [(S, 5), (M, 50), (D, 2), (M, 40)];
        let cigar = CigarOps::List(&ops);
        assert_eq!(operations_within(&cigar, 0, 100), 4);
        assert_eq!(operations_within(&cigar, 10, 100), 3);
        assert_eq!(operations_within(&cigar, 60, 100), 1);
    }

    #[test]
    fn stats_trim_edges_unless_contig_is_short() {
        let mut depth = vec![0i32; 300];
        depth[..100].fill(1);
        // Window [75, 225): 25 ones of 150 bases.
        let (mean, variance) = metabat_contig_stats(&depth, 75);
        assert!((mean - 25.0 / 150.0).abs() < 1e-7);
        let expected =
            (25.0 * (1.0 - 25.0 / 150.0f64).powi(2) + 125.0 * (25.0 / 150.0f64).powi(2)) / 149.0;
        assert!((variance as f64 - expected).abs() < 1e-6);
        // 151 bases: not longer than 2 * 75 + 1, so the whole contig counts.
        let (mean, _) = metabat_contig_stats(&vec![2i32; 151], 75);
        assert_eq!(mean, 2.0);
        // Two bases or fewer: zero.
        assert_eq!(metabat_contig_stats(&[5, 5], 0), (0.0, 0.0));
        assert_eq!(metabat_contig_stats(&[1, 2, 3], 0), (2.0, 1.0));
    }

    /// MetaBAT's literal arithmetic: each float sum widened to double and stored back.
    fn metabat_literal(window: &[i32]) -> (f32, f32) {
        let mut mean = 0f32;
        for &d in window {
            mean = (mean as f64 + d as f64 * 1.0) as f32;
        }
        mean /= window.len() as f32;
        let mut variance = 0f32;
        for &d in window {
            let difference = d as f32 - mean;
            variance = (variance as f64 + (difference * difference) as f64 * 1.0) as f32;
        }
        variance /= (window.len() as f64 - 1.0) as f32;
        (mean, variance)
    }

    proptest::proptest! {
        #[test]
        fn float_sums_equal_metabat_double_rounding(
            window in proptest::collection::vec(0i32..5000, 3..3000),
            scale in 1i32..4000,
        ) {
            let scaled: Vec<i32> = window.iter().map(|d| d * scale).collect();
            let ours = metabat_contig_stats(&scaled, 0);
            let theirs = metabat_literal(&scaled);
            proptest::prop_assert_eq!(ours.0.to_bits(), theirs.0.to_bits());
            proptest::prop_assert_eq!(ours.1.to_bits(), theirs.1.to_bits());
        }
    }

    #[test]
    fn single_precision_sums_round_like_metabat() {
        // Past 2^24 a float sum of odd depths loses the odd parts; MetaBAT does the same.
        let depth = vec![17i32; 2_000_000];
        let ours = metabat_contig_stats(&depth, 0);
        assert_eq!(ours, metabat_literal(&depth));
        assert_ne!(ours.0, 17.0);
    }

    #[test]
    fn plain_stats_are_exact() {
        assert_eq!(plain_contig_stats(&[1, 2, 3, 4]), (2.5, 5.0 / 3.0));
        assert_eq!(plain_contig_stats(&[7]), (7.0, 0.0));
    }

    fn read(position: i32, ops: &[(u32, u32)], nm: i64) -> AlignedRead<'_> {
        AlignedRead {
            reference: 0,
            position,
            flags: 0,
            mapq: 60,
            sequence_length: 100,
            cigar: CigarOps::List(ops),
            edit_distance: Ok(Some(nm)),
        }
    }

    #[test]
    fn accumulator_counts_aligned_blocks_only() {
        let options = CoverageOptions {
            mode: DepthMode::Mean,
            ..CoverageOptions::default()
        };
        let mut accumulator = DepthAccumulator::new(&options, 1);
        let ops = [(S, 10), (M, 40), (D, 10), (M, 50)];
        accumulator.add(&read(0, &ops, 10), 200);
        let depths = accumulator.finish(&[0], 1);
        // 90 aligned bases over 200.
        assert!((depths.means[0] - 0.45).abs() < 1e-12);
        assert_eq!(depths.stats.counted, 1);
    }

    #[test]
    fn accumulator_filters_flags_and_identity() {
        let mut accumulator = DepthAccumulator::new(&CoverageOptions::default(), 1);
        let ops = [(M, 100)];
        let mut secondary = read(0, &ops, 0);
        secondary.flags = FLAG_SECONDARY;
        accumulator.add(&secondary, 400);
        accumulator.add(&read(0, &ops, 5), 400);
        accumulator.add(&read(100, &ops, 1), 400);
        let depths = accumulator.finish(&[0], 1);
        assert_eq!(depths.stats.filtered_flags, 1);
        assert_eq!(depths.stats.low_identity, 1);
        assert_eq!(depths.stats.counted, 1);
        // Average read length 100 -> 75 bases trimmed; 100 covered bases of 250.
        assert_eq!(depths.edge_trim, 75);
        assert!((depths.means[0] - 0.4).abs() < 1e-6);
    }

    #[test]
    fn total_depth_rounds_to_whole_bases() {
        // One sample: the mean itself, through the rounding of mean * trimmed length.
        assert_eq!(
            total_average_depth(1000.0, &[0.176471], &[75]),
            150.0 / 850.0
        );
        // Two samples with the same trim: the sum of the means.
        let total = total_average_depth(1000.0, &[1.0, 2.0], &[75, 75]);
        assert_eq!(total, 3.0);
        // A contig shorter than both edges keeps its whole length.
        assert_eq!(total_average_depth(100.0, &[0.5], &[75]), 0.5);
    }

    fn contigs_of(name: &str, text: &[u8]) -> CoreResult<Contigs> {
        let dir = std::env::temp_dir().join(format!("vaebin-coverage-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Contigs::from_fasta(&path)
    }

    #[test]
    fn fasta_names_and_lengths() {
        let text = b"\n>a first\nACGT\n\nAC\r\n>b\nn\n>c x\nNNNNN";
        let contigs = contigs_of("names.fa", text).unwrap();
        assert_eq!(contigs.names, ["a", "b", "c"]);
        assert_eq!(contigs.lengths, [6, 1, 5]);
    }

    #[test]
    fn fasta_errors() {
        let message = |text: &[u8]| contigs_of("bad.fa", text).unwrap_err().to_string();
        assert!(message(b">a\nAC\n>a\nGG\n").contains("record 2: duplicate sequence name 'a'"));
        assert!(message(b"@r\nACGT\n+\nIIII\n").contains("record 1: is FASTQ"));
        assert!(message(b"ACGT\n").contains("not FASTA or FASTQ"));
        assert!(message(b">\nACGT\n").contains("empty sequence name"));
        assert!(message(b">a\nAC \n")
            .contains("record 1: invalid character byte 0x20 at sequence position 3"));
        assert!(message(b">a\nAC\n>b\n>c\nA\n").contains("record 2: record has no sequence"));
        assert!(message(b"\n\n").contains("contains no sequences"));
    }

    fn general(value: f64) -> String {
        let mut out = String::new();
        format_general(value, &mut out);
        out
    }

    #[test]
    fn general_format_matches_printf() {
        assert_eq!(general(1000.0), "1000");
        assert_eq!(general(1234567.0), "1.23457e+06");
        assert_eq!(general(1234565.0), "1.23456e+06");
        assert_eq!(general(999999.0), "999999");
        assert_eq!(general(0.176471), "0.176471");
        assert_eq!(general(0.00032404), "0.00032404");
        assert_eq!(general(0.000012345678), "1.23457e-05");
        assert_eq!(general(0.5), "0.5");
        assert_eq!(general(0.0), "0");
        assert_eq!(general(2.0e20), "2e+20");
        assert_eq!(general(-3.25), "-3.25");
        assert_eq!(general(9.9999996), "10");
    }

    #[test]
    fn table_rows() {
        let names = vec!["a".to_string(), "b".to_string()];
        let text = depth_table_rows(&names, &[10.0, 0.5, 1.0, 2.0, 0.0, 0.0], 3);
        assert_eq!(text, "a\t10\t0.5\t1\nb\t2\t0\t0\n");
    }
}
