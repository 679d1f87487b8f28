//! The block-parallel FASTA path of the composition (`composition_from_reader`): the block
//! reader cutting records across blocks, the one-pass and record-by-record block parsers, the
//! k-mer counting and the ordered assembly. Fuzz builds run the blocks in order in one thread
//! (`fasta_composition_in_order`); FASTQ input is left to the sequence_reader target.
//!
//! The first input byte picks the block size (a byte to 64 KiB, so records straddle blocks), k,
//! normalisation and the length cut-off. Gzip input is left to the sequence_reader target (its
//! inflating thread would dominate the time here).
//! Checked on success: one row per kept record, lengths summing to the kept bases, and the same
//! names and lengths as `SequenceReader` gives for the same bytes.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vaebin_core::composition::{composition_from_reader, CompositionOptions};
use vaebin_core::kmer_count::STAGING_LETTERS;
use vaebin_core::seqio::SequenceReader;

const BLOCK_BYTES: [usize; 8] = [1, 7, 16, 64, 300, 1024, 4096, 1 << 16];
/// Cut-offs up to the counter's staging take the one-pass block parser; a larger one takes the
/// record-by-record parser.
const MIN_LENGTHS: [u64; 4] = [0, 1, 50, STAGING_LETTERS as u64 + 1];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let block_bytes = BLOCK_BYTES[mode as usize & 7];
    let k = 1 + ((mode as usize >> 3) & 3);
    let normalize = mode & 0x20 != 0;
    let min_length = MIN_LENGTHS[(mode as usize >> 6) & 3];
    // FASTQ goes to the line reader (the sequence_reader target) and a thread pool.
    if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'@') {
        return;
    }
    let input = text.to_vec();
    let options = CompositionOptions {
        k,
        min_length,
        threads: Some(1),
        normalize,
    };
    let path = Path::new("fuzz.fa");
    let source = Box::new(Cursor::new(input.clone()));
    let Ok(composition) = composition_from_reader(path, source, &options, block_bytes) else {
        return;
    };
    let rows = composition.lengths.len();
    assert_eq!(rows as u64, composition.stats.records_kept);
    assert_eq!(composition.name_ends.len(), rows);
    assert_eq!(
        composition.lengths.iter().sum::<i64>() as u64,
        composition.stats.bases_kept
    );
    assert!(composition.lengths.iter().all(|&l| l as u64 >= min_length));

    // The line reader, on the same bytes, must find the same records.
    let source = Box::new(Cursor::new(input));
    let mut reader = SequenceReader::from_reader(path, source, min_length)
        .expect("the composition read these bytes");
    let mut row = 0;
    while let Some(batch) = reader
        .next_batch()
        .expect("the composition accepted these bytes")
    {
        for i in 0..batch.len() {
            assert_eq!(batch.name(i), composition.name(row), "record name");
            assert_eq!(batch.sequence(i).len() as i64, composition.lengths[row]);
            row += 1;
        }
    }
    assert_eq!(row, rows);
});
