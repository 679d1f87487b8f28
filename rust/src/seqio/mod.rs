//! Reading FASTA and FASTQ: the one place that decides what a valid sequence file is. Every
//! command reads sequences through this module (composition in `featurize`, contig names and
//! lengths in `coverage` and the CLI, long-read features, bins), so they accept and reject the
//! same files, with the same words.
//!
//! Two modes apply the rules below through the same checks (`rules`):
//! - `stream`: `SequenceReader`, FASTA or FASTQ line by line on one thread, in batches of
//!   records; it checks every record itself.
//! - `blocks`: `FastaBlockReader` cuts FASTA into blocks of whole records that workers parse in
//!   parallel (the composition's fast path); the workers check each record with `rules` (the
//!   k-mer counter checks the letters it counts with `kmer::BASE_CODE`, which is built from
//!   `rules::is_sequence_letter`).
//!
//! # The rules
//! - **Compression**: plain, gzip or bgzip, told from the first two bytes, never from the name.
//!   A gzip stream that is corrupt or ends early is an error at the record being read.
//! - **Lines** end with "\n" or "\r\n" (CRLF); the last line may lack its line end. Any other
//!   "\r" is a byte of its line (and so an error in a sequence line).
//! - **Empty lines** (nothing between two line ends) are ignored everywhere: before the first
//!   record, between records, among a FASTA record's sequence lines. A line of spaces or tabs is
//!   not empty: it is a sequence line with invalid characters.
//! - **Format**: the first non-empty line starts with '>' (FASTA) or '@' (FASTQ); anything else
//!   is an error at record 1. A file with no record (empty, or only empty lines) is an error.
//! - **Header**: '>' (or '@') at the start of a line; the name runs to the first space or tab,
//!   the rest is a description and is ignored. The name must not be empty and must be printable
//!   ASCII ('!' to '~'). Names are unique within a file (case-sensitive): a second record of a
//!   name is an error.
//! - **Sequence letters**: A-Z and a-z. Case carries no meaning (soft-masked lower case reads as
//!   upper case); A, C, G, T are bases; every other letter (N, the IUPAC codes) is an unknown
//!   base that counts in the length and breaks k-mers; '-', '.' and '*' are read like N. Any other
//!   byte in a sequence line (space, tab, digit, '>' inside a line, a stray "\r", control or
//!   non-ASCII bytes) is an error naming its 1-based position in the record's sequence.
//! - **FASTA record**: a header, then any number of sequence lines of any widths up to the next
//!   line that starts with '>'.
//! - **Empty record**: a record with no sequence letter (a header alone, or followed only by empty
//!   lines) is an error: no aligner or BAM file can hold it (SAM's LN is at least 1).
//! - **FASTQ record**: '@' header, one sequence line, a line starting with '+' (anything after it
//!   is ignored), one quality line with as many characters as the sequence, each '!' to '~'.
//!   Empty lines between records are ignored; multi-line FASTQ is not read.
//! - **Short records**: a minimum length leaves records out only after they were checked; the
//!   record numbers in errors count every record.
//! - **Errors**: one line, `<file>: record <n>: <problem>` (n 1-based), or `<file>: <problem>` for
//!   the file as a whole; the first problem in file order is the one reported.

mod blocks;
pub mod rules;
mod source;
mod stream;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub use blocks::{
    for_each_line, letter_at, letter_count, lines_letters, FastaBlock, FastaBlockReader,
    FastaRecord, FastaRecords, BLOCK_BYTES,
};
pub use rules::{invalid_character, record_name};
pub use source::{decompressed, open_decompressed, read_problem};
pub use stream::{ReadStats, SequenceBatch, SequenceFormat, SequenceReader, BATCH_TARGET_BYTES};

use crate::errors::{CoreError, CoreResult};
use rules::{first_line_start, not_fasta_or_fastq, NO_RECORDS};
use source::READ_CHUNK_BYTES;

/// A sequence file opened for composition: FASTA is cut into blocks of whole records that
/// workers parse themselves; FASTQ goes through the line reader.
pub enum SequenceInput {
    Fasta {
        blocks: FastaBlockReader,
        compressed: bool,
    },
    Fastq(SequenceReader),
    /// No record at all (an empty file, or only empty lines).
    Empty {
        compressed: bool,
    },
}

/// Opens `path` and tells FASTA from FASTQ by the first line that is not empty. Plain FASTA
/// files are memory mapped when `map_plain` is set and the platform allows it.
pub fn open_sequences(path: &Path, min_length: u64, map_plain: bool) -> CoreResult<SequenceInput> {
    let (source, compressed) = open_decompressed(path)?;
    let map = |first_line: usize| {
        if !map_plain || compressed {
            return None;
        }
        // The stream's first bytes were the file's: the first record starts at `first_line`.
        File::open(path)
            .and_then(|file| FastaBlockReader::mapped(file, first_line as u64))
            .ok()
    };
    sequences_in(path, source, compressed, min_length, map, BLOCK_BYTES)
}

/// `open_sequences` of any stream (`path` names it in messages), inflated when gzip, never
/// mapped, FASTA cut into blocks of `block_bytes`: for tests and fuzzing without a file.
pub fn sequences_from_reader(
    path: &Path,
    source: Box<dyn Read + Send>,
    min_length: u64,
    block_bytes: usize,
) -> CoreResult<SequenceInput> {
    let (source, compressed) = decompressed(source).map_err(|e| CoreError::file(path, &e))?;
    sequences_in(
        path,
        source,
        compressed,
        min_length,
        |_| None,
        block_bytes.max(1),
    )
}

/// The part of `open_sequences` after opening: finds the first line that is not empty and
/// hands the stream to the block reader (FASTA; mapped when `map` gives a mapping) or to the
/// line reader (FASTQ).
fn sequences_in(
    path: &Path,
    mut source: Box<dyn Read + Send>,
    compressed: bool,
    min_length: u64,
    map: impl FnOnce(usize) -> Option<FastaBlockReader>,
    block_bytes: usize,
) -> CoreResult<SequenceInput> {
    let mut start = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES.min(1 << 16)];
    let mut at_end = false;
    let first_line = loop {
        if let Some(first_line) = first_line_start(&start, at_end) {
            break first_line;
        }
        if at_end {
            return Ok(SequenceInput::Empty { compressed });
        }
        match source.read(&mut chunk) {
            Ok(0) => at_end = true,
            Ok(n) => start.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CoreError::format(path, 1, read_problem(&e))),
        }
    };
    match start[first_line] {
        b'>' => {
            if let Some(blocks) = map(first_line) {
                return Ok(SequenceInput::Fasta { blocks, compressed });
            }
            start.drain(..first_line);
            Ok(SequenceInput::Fasta {
                blocks: FastaBlockReader::with_block_bytes(start, source, block_bytes),
                compressed,
            })
        }
        b'@' => {
            let source = Box::new(io::Cursor::new(start).chain(source));
            Ok(SequenceInput::Fastq(SequenceReader::from_source(
                path, source, compressed, min_length,
            )))
        }
        other => Err(CoreError::format(path, 1, not_fasta_or_fastq(other))),
    }
}

/// Names and lengths of the records of a sequence file, in file order, checked by the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamesAndLengths {
    pub names: Vec<String>,
    pub lengths: Vec<u64>,
    pub format: Option<SequenceFormat>,
}

/// Reads the names and lengths of every record of `path` (FASTA or FASTQ, plain or compressed).
pub fn names_and_lengths(path: &Path) -> CoreResult<NamesAndLengths> {
    let mut reader = SequenceReader::open(path, 0)?;
    let mut out = NamesAndLengths::default();
    while let Some(batch) = reader.next_batch()? {
        for i in 0..batch.len() {
            // `record_name` admits printable ASCII only, so this never replaces a byte.
            out.names
                .push(String::from_utf8_lossy(batch.name(i)).into_owned());
            out.lengths.push(batch.sequence(i).len() as u64);
        }
    }
    if out.names.is_empty() {
        return Err(CoreError::input(path, NO_RECORDS));
    }
    out.format = reader.format();
    Ok(out)
}

/// The sequences of the records named in `names`, in that order, read by the same rules as
/// every other reader (marker-gene calling needs the contigs' letters in Python). Only the
/// named records are kept; a name the file lacks is an error naming the first one missing.
pub fn selected_sequences(path: &Path, names: &[Vec<u8>]) -> CoreResult<Vec<Vec<u8>>> {
    let mut slot_of: std::collections::HashMap<&[u8], usize> =
        std::collections::HashMap::with_capacity(names.len());
    for (slot, name) in names.iter().enumerate() {
        if slot_of.insert(name.as_slice(), slot).is_some() {
            return Err(CoreError::Parameter(format!(
                "contig {:?} is asked for twice",
                String::from_utf8_lossy(name)
            )));
        }
    }
    let mut out: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    let mut reader = SequenceReader::open(path, 0)?;
    while let Some(batch) = reader.next_batch()? {
        for i in 0..batch.len() {
            if let Some(&slot) = slot_of.get(batch.name(i)) {
                out[slot] = Some(batch.sequence(i).to_vec());
            }
        }
    }
    let missing = out.iter().filter(|s| s.is_none()).count();
    if let Some(first) = out.iter().position(|s| s.is_none()) {
        return Err(CoreError::input(
            path,
            format!(
                "{missing} of the contigs asked for are not in this file (first: {})",
                String::from_utf8_lossy(&names[first])
            ),
        ));
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod selected_tests {
    use super::*;
    use std::path::PathBuf;

    /// A FASTA file of `text` in the temporary folder, removed when dropped.
    struct Fasta(PathBuf);

    impl Fasta {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Fasta {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn fasta(tag: &str, text: &str) -> Fasta {
        let path =
            std::env::temp_dir().join(format!("vaebin-selected-{tag}-{}.fa", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Fasta(path)
    }

    #[test]
    fn selected_sequences_come_in_the_order_asked_with_wrapped_lines_joined() {
        let file = fasta("order", ">a one\nACGT\nAC\n>b\nGGGG\n>c\nttNa\n");
        let names = vec![b"c".to_vec(), b"a".to_vec()];
        let got = selected_sequences(file.path(), &names).unwrap();
        assert_eq!(got, vec![b"ttNa".to_vec(), b"ACGTAC".to_vec()]);
    }

    #[test]
    fn a_missing_or_repeated_name_is_an_error() {
        let file = fasta("missing", ">a\nACGT\n");
        let error = selected_sequences(file.path(), &[b"a".to_vec(), b"z".to_vec()]).unwrap_err();
        assert!(error
            .to_string()
            .contains("1 of the contigs asked for are not in this file (first: z)"));
        assert!(selected_sequences(file.path(), &[b"a".to_vec(), b"a".to_vec()]).is_err());
    }
}
