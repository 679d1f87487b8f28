//! The streaming mode of the sequence reader: FASTA or FASTQ read line by line on one thread,
//! records gathered into batches of concatenated sequence bytes so that workers can count k-mers
//! without one allocation per record. Every record is checked against the rules of the `seqio`
//! module as it is read, whether or not it is long enough to keep.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::rules::{
    check_quality, first_invalid_letter, invalid_character, not_fasta_or_fastq, record_name,
    SeenNames, EMPTY_RECORD,
};
use super::source::{decompressed, open_decompressed, read_problem, READ_CHUNK_BYTES};
use crate::errors::{CoreError, CoreResult};

/// A batch is handed to the workers once it holds this many sequence bytes.
///
/// Fuzz builds (`cfg(fuzzing)`, set by cargo-fuzz) use small batches: small inputs then cross
/// batch boundaries.
pub const BATCH_TARGET_BYTES: usize = if cfg!(fuzzing) { 1 << 8 } else { 4 << 20 };
/// ... or this many records (keeps batches of short reads from growing huge name tables).
const BATCH_MAX_RECORDS: usize = if cfg!(fuzzing) { 8 } else { 65_536 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceFormat {
    Fasta,
    Fastq,
}

/// Kept records of one stretch of the file, stored back to back.
#[derive(Debug, Default)]
pub struct SequenceBatch {
    /// Position of this batch in the file (0-based), for putting results back in order.
    pub index: u64,
    /// 1-based record number in the file of each kept record.
    pub record_numbers: Vec<u64>,
    pub names: Vec<u8>,
    pub name_ends: Vec<usize>,
    pub sequence: Vec<u8>,
    pub sequence_ends: Vec<usize>,
    /// FASTQ quality letters, back to back at the same offsets as `sequence`; empty unless the
    /// reader was asked to keep them (`SequenceReader::keep_quality`).
    pub quality: Vec<u8>,
}

impl SequenceBatch {
    pub fn len(&self) -> usize {
        self.sequence_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequence_ends.is_empty()
    }

    pub fn sequence(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.sequence_ends[i - 1] };
        &self.sequence[start..self.sequence_ends[i]]
    }

    pub fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.name_ends[i - 1] };
        &self.names[start..self.name_ends[i]]
    }

    /// Quality letters of record `i` (empty for FASTA or when qualities are not kept).
    pub fn quality(&self, i: usize) -> &[u8] {
        if self.quality.is_empty() {
            return &[];
        }
        let start = if i == 0 { 0 } else { self.sequence_ends[i - 1] };
        &self.quality[start..self.sequence_ends[i]]
    }

    fn push_record(&mut self, record_number: u64, name: &[u8]) {
        self.record_numbers.push(record_number);
        self.names.extend_from_slice(name);
        self.name_ends.push(self.names.len());
        self.sequence_ends.push(self.sequence.len());
    }
}

/// Counts over the whole file, kept and skipped records alike.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadStats {
    pub records: u64,
    pub records_kept: u64,
    pub records_too_short: u64,
    pub bases: u64,
    pub bases_kept: u64,
    pub compressed: bool,
}

/// Streaming FASTA/FASTQ parser producing batches of kept records.
pub struct SequenceReader {
    path: PathBuf,
    source: Box<dyn Read + Send>,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    format: Option<SequenceFormat>,
    /// A FASTA header line already read that starts the next record.
    pending_header: Option<Vec<u8>>,
    line_number: u64,
    min_length: u64,
    seen_names: SeenNames,
    batches: u64,
    keep_quality: bool,
    pub stats: ReadStats,
}

impl SequenceReader {
    pub fn open(path: &Path, min_length: u64) -> CoreResult<Self> {
        let (source, compressed) = open_decompressed(path)?;
        Ok(Self::from_source(path, source, compressed, min_length))
    }

    /// A reader of any stream (`path` names it in messages), inflated when it is gzip: for tests
    /// and fuzzing without a file.
    pub fn from_reader(
        path: &Path,
        source: Box<dyn Read + Send>,
        min_length: u64,
    ) -> CoreResult<Self> {
        let (source, compressed) = decompressed(source).map_err(|e| CoreError::file(path, &e))?;
        Ok(Self::from_source(path, source, compressed, min_length))
    }

    pub(super) fn from_source(
        path: &Path,
        source: Box<dyn Read + Send>,
        compressed: bool,
        min_length: u64,
    ) -> Self {
        SequenceReader {
            path: path.to_path_buf(),
            source,
            buffer: vec![0u8; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
            eof: false,
            format: None,
            pending_header: None,
            line_number: 0,
            min_length,
            seen_names: SeenNames::default(),
            batches: 0,
            keep_quality: false,
            stats: ReadStats {
                compressed,
                ..ReadStats::default()
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps FASTQ quality lines in the batches (for copying records out unchanged).
    pub fn keep_quality(mut self) -> Self {
        self.keep_quality = true;
        self
    }

    pub fn format(&self) -> Option<SequenceFormat> {
        self.format
    }

    fn record_error(&self, message: impl Into<String>) -> CoreError {
        CoreError::format(&self.path, self.stats.records.max(1), message)
    }

    fn read_error(&self, err: io::Error) -> CoreError {
        // The record being read when the stream broke is the next one after those complete.
        CoreError::format(&self.path, self.stats.records + 1, read_problem(&err))
    }

    /// Returns the next line (without the line end) as a range in `self.buffer`, or None at EOF.
    fn next_line(&mut self) -> CoreResult<Option<(usize, usize)>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buffer[self.start..self.end]) {
                let line_start = self.start;
                let mut line_end = self.start + pos;
                self.start = line_end + 1;
                if line_end > line_start && self.buffer[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                self.line_number += 1;
                return Ok(Some((line_start, line_end)));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line_start = self.start;
                let mut line_end = self.end;
                self.start = self.end;
                if self.buffer[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                self.line_number += 1;
                return Ok(Some((line_start, line_end)));
            }
            // Move the partial line to the front and fill the rest; grow for very long lines.
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buffer.len() {
                let grown = self.buffer.len() * 2;
                self.buffer.resize(grown, 0);
            }
            loop {
                match self.source.read(&mut self.buffer[self.end..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.end += n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.read_error(e)),
                }
            }
        }
    }

    fn start_record(&mut self, header: &[u8], batch: &mut SequenceBatch) -> CoreResult<bool> {
        self.stats.records += 1;
        let name = record_name(header).map_err(|problem| self.record_error(problem))?;
        if let Err(problem) = self.seen_names.insert(name) {
            return Err(self.record_error(problem));
        }
        batch.push_record(self.stats.records, name);
        Ok(true)
    }

    /// Closes the record most recently pushed: keeps it, or drops it when shorter than the cut-off.
    fn finish_record(
        &mut self,
        batch: &mut SequenceBatch,
        sequence_start: usize,
    ) -> CoreResult<()> {
        let length = (batch.sequence.len() - sequence_start) as u64;
        if length == 0 {
            return Err(self.record_error(EMPTY_RECORD));
        }
        self.stats.bases += length;
        if length < self.min_length {
            self.stats.records_too_short += 1;
            batch.sequence.truncate(sequence_start);
            batch
                .quality
                .truncate(sequence_start.min(batch.quality.len()));
            batch.record_numbers.pop();
            batch.name_ends.pop();
            let name_start = batch.name_ends.last().copied().unwrap_or(0);
            batch.names.truncate(name_start);
            batch.sequence_ends.pop();
        } else {
            self.stats.records_kept += 1;
            self.stats.bases_kept += length;
            *batch.sequence_ends.last_mut().expect("record was pushed") = batch.sequence.len();
        }
        Ok(())
    }

    /// Appends one sequence line of the record that started at `sequence_start` in the batch,
    /// after checking its letters.
    fn push_letters(
        &self,
        batch: &mut SequenceBatch,
        sequence_start: usize,
        line: (usize, usize),
    ) -> CoreResult<()> {
        let letters = &self.buffer[line.0..line.1];
        if let Some(i) = first_invalid_letter(letters) {
            let position = (batch.sequence.len() - sequence_start + i) as u64;
            return Err(self.record_error(invalid_character(letters[i], position)));
        }
        batch.sequence.extend_from_slice(letters);
        Ok(())
    }

    fn detect_format(&mut self) -> CoreResult<Option<(usize, usize)>> {
        while let Some((s, e)) = self.next_line()? {
            if s == e {
                continue;
            }
            self.format = match self.buffer[s] {
                b'>' => Some(SequenceFormat::Fasta),
                b'@' => Some(SequenceFormat::Fastq),
                other => {
                    return Err(CoreError::format(&self.path, 1, not_fasta_or_fastq(other)));
                }
            };
            return Ok(Some((s, e)));
        }
        Ok(None)
    }

    /// Reads the next batch of kept records; None once the file is exhausted.
    pub fn next_batch(&mut self) -> CoreResult<Option<SequenceBatch>> {
        self.next_batch_reusing(None)
    }

    /// Like `next_batch`, filling a spent batch's buffers instead of allocating: fresh
    /// multi-megabyte buffers cost a page fault per 4 KiB, a spent one is already mapped.
    pub fn next_batch_reusing(
        &mut self,
        spare: Option<SequenceBatch>,
    ) -> CoreResult<Option<SequenceBatch>> {
        let mut batch = match spare {
            Some(mut batch) => {
                batch.record_numbers.clear();
                batch.names.clear();
                batch.name_ends.clear();
                batch.sequence.clear();
                batch.sequence_ends.clear();
                batch.quality.clear();
                batch
            }
            None => SequenceBatch {
                // Room for a full batch: growing a multi-megabyte Vec by doubling costs copies.
                sequence: Vec::with_capacity(BATCH_TARGET_BYTES + (BATCH_TARGET_BYTES >> 2)),
                ..SequenceBatch::default()
            },
        };
        batch.index = self.batches;
        if self.format.is_none() {
            match self.detect_format()? {
                None => return Ok(None),
                Some((s, e)) => {
                    if self.format == Some(SequenceFormat::Fasta) {
                        self.pending_header = Some(self.buffer[s + 1..e].to_vec());
                    } else {
                        let header = self.buffer[s + 1..e].to_vec();
                        self.read_fastq_record(header, &mut batch)?;
                    }
                }
            }
        }
        match self.format {
            Some(SequenceFormat::Fasta) => self.fill_fasta_batch(&mut batch)?,
            Some(SequenceFormat::Fastq) => self.fill_fastq_batch(&mut batch)?,
            None => unreachable!("format detected above"),
        }
        if batch.is_empty() {
            // Both fill loops only stop short of a full batch at the end of the file.
            return Ok(None);
        }
        self.batches += 1;
        Ok(Some(batch))
    }

    fn batch_full(batch: &SequenceBatch) -> bool {
        batch.sequence.len() >= BATCH_TARGET_BYTES || batch.len() >= BATCH_MAX_RECORDS
    }

    fn fill_fasta_batch(&mut self, batch: &mut SequenceBatch) -> CoreResult<()> {
        while let Some(header) = self.pending_header.take() {
            self.start_record(&header, batch)?;
            let sequence_start = batch.sequence.len();
            loop {
                match self.next_line()? {
                    None => break,
                    Some((s, e)) => {
                        if s < e && self.buffer[s] == b'>' {
                            self.pending_header = Some(self.buffer[s + 1..e].to_vec());
                            break;
                        }
                        self.push_letters(batch, sequence_start, (s, e))?;
                    }
                }
            }
            self.finish_record(batch, sequence_start)?;
            if Self::batch_full(batch) {
                break;
            }
        }
        Ok(())
    }

    fn read_fastq_record(&mut self, header: Vec<u8>, batch: &mut SequenceBatch) -> CoreResult<()> {
        self.start_record(&header, batch)?;
        let sequence_start = batch.sequence.len();
        let (s, e) = self
            .next_line()?
            .ok_or_else(|| self.record_error("FASTQ record ends after its header"))?;
        self.push_letters(batch, sequence_start, (s, e))?;
        let (s, e) = self
            .next_line()?
            .ok_or_else(|| self.record_error("FASTQ record ends before its '+' line"))?;
        if s == e || self.buffer[s] != b'+' {
            return Err(self.record_error("FASTQ record lacks the '+' separator line"));
        }
        let (s, e) = self
            .next_line()?
            .ok_or_else(|| self.record_error("FASTQ record ends before its quality line"))?;
        let sequence_length = batch.sequence.len() - sequence_start;
        check_quality(&self.buffer[s..e], sequence_length)
            .map_err(|problem| self.record_error(problem))?;
        if self.keep_quality {
            batch.quality.extend_from_slice(&self.buffer[s..e]);
        }
        self.finish_record(batch, sequence_start)
    }

    fn fill_fastq_batch(&mut self, batch: &mut SequenceBatch) -> CoreResult<()> {
        while !Self::batch_full(batch) {
            let (s, e) = loop {
                match self.next_line()? {
                    None => return Ok(()),
                    Some((s, e)) if s == e => continue,
                    Some(range) => break range,
                }
            };
            if self.buffer[s] != b'@' {
                self.stats.records += 1;
                return Err(self.record_error("FASTQ record does not start with '@'"));
            }
            let header = self.buffer[s + 1..e].to_vec();
            self.read_fastq_record(header, batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names_and_lengths(mut reader: SequenceReader) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            for i in 0..batch.len() {
                out.push((batch.name(i).to_vec(), batch.sequence(i).len()));
            }
        }
        out
    }

    #[test]
    fn reader_from_bytes_inflates_gzip_like_a_file() {
        let fasta = b">a x\nACGT\nAC\n>b\r\nGG\r\n".to_vec();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&fasta).unwrap();
        let gzip = encoder.finish().unwrap();
        let path = Path::new("mem.fa");
        let plain = SequenceReader::from_reader(path, Box::new(io::Cursor::new(fasta)), 0);
        let inflated = SequenceReader::from_reader(path, Box::new(io::Cursor::new(gzip)), 0);
        let (plain, inflated) = (plain.unwrap(), inflated.unwrap());
        assert!(!plain.stats.compressed && inflated.stats.compressed);
        let expected = vec![(b"a".to_vec(), 6), (b"b".to_vec(), 2)];
        assert_eq!(names_and_lengths(plain), expected);
        assert_eq!(names_and_lengths(inflated), expected);
    }
}
