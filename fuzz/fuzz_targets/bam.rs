//! BGZF/BAM decoding: the header, every record's fields, CIGAR and aux (NM, CG) as the coverage
//! reads them, then the depth computation itself.
//!
//! The first input byte picks the mode. Even: the rest is the file as it is on disk, so the
//! BGZF block splitter, the inflater and the checksum checks see mutated bytes. Odd: the rest is
//! the inflated BAM stream, which the target wraps in valid BGZF blocks (stored deflate, right
//! CRC32) of a size the same byte picks; without this the fuzzer would rarely get past the CRC
//! and would never reach the record decoder. In that mode the records are also checked against a
//! second, independent walk over the stream: a stream the reader accepts must give back exactly
//! the records that are in it.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vaebin_core::bam::{BamReader, Record};
use vaebin_core::coverage::{depths_from_reader, Contigs, CoverageOptions, DepthMode};
use vaebin_core_fuzz::bgzf;

/// Payload sizes of the BGZF blocks the wrapping mode cuts the stream into (65280 is what
/// htslib writes; small ones make records straddle blocks and batches). Not smaller: blocks of a
/// few bytes made a 10 KiB input thousands of blocks and cut the executions per second by 4.
const BLOCK_PAYLOADS: [usize; 4] = [61, 509, 4093, 65280];
/// The depth pass allocates one counter per reference base, as the real run does for contigs
/// that exist; a fuzzed header may claim 4 Gbp, so larger headers only get the decoding pass.
const MAX_DEPTH_BASES: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let wrapped = mode & 1 == 1;
    let file = if wrapped {
        bgzf(
            rest,
            BLOCK_PAYLOADS[(mode as usize >> 1) % BLOCK_PAYLOADS.len()],
        )
    } else {
        rest.to_vec()
    };
    let path = Path::new("fuzz.bam");
    let Ok(mut reader) = BamReader::from_reader(path, Box::new(Cursor::new(file.clone())), 1)
    else {
        return;
    };
    let mut expected = if wrapped { RecordWalk::new(rest) } else { None };
    let mut complete = false;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                touch(&record);
                if let Some(walk) = expected.as_mut() {
                    walk.check(&record);
                }
            }
            Ok(None) => {
                complete = true;
                break;
            }
            Err(_) => break,
        }
    }
    if let (Some(walk), true) = (&expected, complete) {
        walk.check_end();
    }
    let header = &reader.header;
    let bases: u64 = header.lengths.iter().sum();
    if bases > MAX_DEPTH_BASES {
        return;
    }
    let contigs = Contigs {
        names: header.names.clone(),
        lengths: header.lengths.clone(),
    };
    let options = CoverageOptions {
        mode: if mode & 0x80 == 0 {
            DepthMode::MetaBat
        } else {
            DepthMode::Mean
        },
        threads: Some(1),
        ..CoverageOptions::default()
    };
    let Ok(reader) = BamReader::from_reader(path, Box::new(Cursor::new(file)), 1) else {
        panic!("the same bytes opened once and failed the second time");
    };
    if let Ok(depths) = depths_from_reader(reader, &contigs, Path::new("fuzz.fna"), &options) {
        assert_eq!(depths.means.len(), contigs.names.len());
    }
});

/// Reads every field the coverage reads (and the name), as it reads them.
fn touch(record: &Record) {
    let _ = (
        record.reference_id(),
        record.position(),
        record.mapping_quality(),
        record.flags(),
        record.sequence_length(),
        record.name().len(),
    );
    let cigar = record.cigar();
    let mut reference_bases = 0u64;
    for (op, length) in cigar.iter() {
        if vaebin_core::bam::consumes(op).1 {
            reference_bases += length as u64;
        }
    }
    assert_eq!(cigar.iter().count(), cigar.len());
    std::hint::black_box(reference_bases);
    let _ = record.edit_distance();
}

/// The records of an inflated BAM stream found by walking its length prefixes, written apart
/// from the reader: what the reader returns must be these, in order.
struct RecordWalk<'a> {
    stream: &'a [u8],
    at: usize,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl<'a> RecordWalk<'a> {
    /// None when the header itself is not whole (the reader must then fail, checked by the caller
    /// never getting a record).
    fn new(stream: &'a [u8]) -> Option<Self> {
        let mut at = 4;
        at += 4 + u32_at(stream, at)? as usize;
        let references = u32_at(stream, at)?;
        at += 4;
        for _ in 0..references {
            at += 4 + u32_at(stream, at)? as usize + 4;
        }
        (at <= stream.len()).then_some(RecordWalk { stream, at })
    }

    fn check(&mut self, record: &Record) {
        let size = u32_at(self.stream, self.at).expect("the reader returned a record past the end")
            as usize;
        let body = &self.stream[self.at + 4..self.at + 4 + size];
        assert_eq!(record.reference_id() as u32, u32_at(body, 0).unwrap());
        assert_eq!(record.position() as u32, u32_at(body, 4).unwrap());
        assert_eq!(record.mapping_quality(), body[9]);
        assert_eq!(record.flags(), u16::from_le_bytes([body[14], body[15]]));
        assert_eq!(record.sequence_length(), u32_at(body, 16).unwrap());
        self.at += 4 + size;
    }

    fn check_end(&self) {
        assert_eq!(
            self.at,
            self.stream.len(),
            "the reader stopped before the last record"
        );
    }
}
