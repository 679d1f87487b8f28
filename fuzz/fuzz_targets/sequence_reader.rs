//! `SequenceReader` (FASTA and FASTQ, plain, gzip and multi-member gzip as bgzip writes it) read
//! to the end in batches.
//!
//! The first input byte picks how the rest is presented (as it is, which may itself be gzip;
//! gzipped by the target; gzipped in members of 64 bytes to 8 KiB), whether qualities are kept and the
//! length cut-off. Checked: the batches agree with the reader's counts, qualities are as long as
//! their sequences, and for plain FASTA read without a cut-off the letters returned are exactly
//! the bytes of the non-header lines counted apart from the reader.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vaebin_core::seqio::{SequenceFormat, SequenceReader};
use vaebin_core_fuzz::gzip;

const MIN_LENGTHS: [u64; 4] = [0, 1, 10, 100];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let input = match mode & 3 {
        1 => gzip(text, usize::MAX),
        2 => gzip(text, 64 << ((mode >> 4) & 7)),
        _ => text.to_vec(),
    };
    let keep_quality = mode & 4 != 0;
    let min_length = MIN_LENGTHS[(mode as usize >> 3) & 3];
    let path = Path::new("fuzz.fa");
    let Ok(reader) = SequenceReader::from_reader(path, Box::new(Cursor::new(input)), min_length)
    else {
        return;
    };
    let mut reader = if keep_quality {
        reader.keep_quality()
    } else {
        reader
    };
    let (mut records, mut letters) = (0u64, 0u64);
    let mut spare = None;
    let complete = loop {
        match reader.next_batch_reusing(spare.take()) {
            Ok(Some(batch)) => {
                assert!(!batch.is_empty(), "an empty batch before the end");
                for i in 0..batch.len() {
                    assert!(!batch.name(i).is_empty());
                    let sequence = batch.sequence(i);
                    assert!(sequence.len() as u64 >= min_length);
                    letters += sequence.len() as u64;
                    if keep_quality && reader.format() == Some(SequenceFormat::Fastq) {
                        assert_eq!(batch.quality(i).len(), sequence.len());
                    }
                }
                records += batch.len() as u64;
                spare = Some(batch);
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    if !complete {
        return;
    }
    let stats = reader.stats;
    assert_eq!(records, stats.records_kept);
    assert_eq!(letters, stats.bases_kept);
    assert_eq!(stats.records, stats.records_kept + stats.records_too_short);
    let compressed = text.starts_with(&[0x1f, 0x8b]);
    if mode & 3 == 0
        && !compressed
        && min_length == 0
        && reader.format() == Some(SequenceFormat::Fasta)
    {
        assert_eq!(letters, fasta_letters(text));
    }
});

/// Letters of a FASTA text counted line by line: every line after the first one that is not
/// blank, except headers, without its line end ("\n", "\r\n", or a last "\r" at the end).
fn fasta_letters(text: &[u8]) -> u64 {
    let mut started = false;
    let mut letters = 0u64;
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if text.last() == Some(&b'\n') {
        lines.pop();
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !started {
            started = line.iter().any(|b| !b.is_ascii_whitespace());
            continue;
        }
        if line.first() != Some(&b'>') {
            letters += line.len() as u64;
        }
    }
    letters
}
