//! The block mode of the sequence reader: FASTA in blocks of whole records, for parsing in
//! parallel without copying sequence lines. The workers that parse a block check its records
//! with `seqio::rules` (`lines_letters` here for the letters of a record they do not count).
//!
//! The reader thread only reads: it fills a large buffer, cuts it just before the last header
//! that starts a line ('>' after '\n') and carries the cut-off tail over to the next block. A
//! block therefore holds whole records, and workers find the records, lines and letters in it
//! themselves: the composition finds each record's end while it copies the record's letters
//! (`KmerCounter::push_record_lines`), or, for a block cut short by a read error or a cut-off
//! longer than its staging, with `FastaRecords` and `for_each_line`. A record longer than a
//! block grows the buffer until it fits, as the line reader's batch did.

use std::fs::File;
use std::io::{self, Read};

use super::rules::first_invalid_letter;
use super::source::read_problem;
use crate::mapped::Mapping;

/// Bytes a block is filled to before it is cut at its last record start.
pub const BLOCK_BYTES: usize = 4 << 20;

/// Whole FASTA records, starting at a header's '>': `data[..len]`, or a stretch of the mapped
/// file. The buffer is recycled, so `data` may be longer.
#[derive(Debug, Default)]
pub struct FastaBlock {
    /// Position of this block in the file (0-based), for putting results back in order.
    pub index: u64,
    pub data: Vec<u8>,
    pub len: usize,
    pub mapped: Option<Mapping>,
    /// Reading failed right after this block's content (the problem, worded for the user): its
    /// last record may be cut short.
    pub read_error: Option<String>,
}

impl FastaBlock {
    pub fn content(&self) -> &[u8] {
        match &self.mapped {
            Some(mapping) => &mapping.bytes()[..self.len],
            None => &self.data[..self.len],
        }
    }
}

/// A plain file read through memory maps, one block at a time.
struct MappedFile {
    file: File,
    /// Where the next block starts, and where the file ends.
    offset: u64,
    end: u64,
}

/// Cuts a FASTA stream into blocks of whole records.
pub struct FastaBlockReader {
    source: Box<dyn Read + Send>,
    mapped: Option<MappedFile>,
    /// Start of the next block: the record cut off at the end of the last one.
    carry: Vec<u8>,
    finished: bool,
    blocks: u64,
    block_bytes: usize,
}

impl FastaBlockReader {
    /// `start` is what was already read from `source`: beginning with the first header's '>'.
    pub fn new(start: Vec<u8>, source: Box<dyn Read + Send>) -> Self {
        Self::with_block_bytes(start, source, BLOCK_BYTES)
    }

    /// `new` with blocks filled to `block_bytes` (small blocks cut more records across blocks).
    pub fn with_block_bytes(
        start: Vec<u8>,
        source: Box<dyn Read + Send>,
        block_bytes: usize,
    ) -> Self {
        FastaBlockReader {
            source,
            mapped: None,
            carry: start,
            finished: false,
            blocks: 0,
            block_bytes,
        }
    }

    /// Blocks mapped from a plain `file` whose first record starts at byte `offset`.
    pub fn mapped(file: File, offset: u64) -> io::Result<Self> {
        Self::mapped_with_block_bytes(file, offset, BLOCK_BYTES)
    }

    fn mapped_with_block_bytes(file: File, offset: u64, block_bytes: usize) -> io::Result<Self> {
        let end = file.metadata()?.len();
        // Fails early where mapping is unsupported, so that the caller can read instead.
        drop(Mapping::new(&file, offset, 1)?);
        let mut reader = Self::with_block_bytes(Vec::new(), Box::new(io::empty()), block_bytes);
        reader.mapped = Some(MappedFile { file, offset, end });
        Ok(reader)
    }

    /// The next block, filled into a spent block's buffer when given one; None at the end.
    pub fn next_block(&mut self, spare: Option<FastaBlock>) -> Option<FastaBlock> {
        if self.finished {
            return None;
        }
        if self.mapped.is_some() {
            return self.next_mapped_block();
        }
        let mut data = spare.map(|block| block.data).unwrap_or_default();
        // A recycled buffer is already initialised; only a fresh one pays for the zeroing.
        let wanted = self.block_bytes.max(2 * self.carry.len());
        if data.len() < wanted {
            data.resize(wanted, 0);
        }
        let mut len = self.carry.len();
        data[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        // A cut at 0 would give an empty block.
        let mut searched_from = 1;
        loop {
            let mut read_error = None;
            let mut end_of_input = false;
            while len < data.len() {
                match self.source.read(&mut data[len..]) {
                    Ok(0) => {
                        end_of_input = true;
                        break;
                    }
                    Ok(n) => len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        read_error = Some(read_problem(&e));
                        break;
                    }
                }
            }
            if end_of_input || read_error.is_some() {
                self.finished = true;
                if len == 0 && read_error.is_none() {
                    return None;
                }
                return Some(self.block(data, len, read_error));
            }
            if let Some(cut) = last_record_start(&data[..len], searched_from) {
                self.carry.extend_from_slice(&data[cut..len]);
                return Some(self.block(data, cut, None));
            }
            // One record fills the whole buffer: make room for more of it.
            searched_from = len;
            let grown = 2 * data.len();
            data.resize(grown, 0);
        }
    }

    fn next_mapped_block(&mut self) -> Option<FastaBlock> {
        let mapped = self.mapped.as_mut().expect("called for a mapped file");
        let (offset, end) = (mapped.offset, mapped.end);
        if offset >= end {
            self.finished = true;
            return None;
        }
        let mut window = self.block_bytes as u64;
        loop {
            let len = window.min(end - offset) as usize;
            let mapping = match Mapping::new(&mapped.file, offset, len) {
                Ok(mapping) => mapping,
                Err(e) => {
                    self.finished = true;
                    return Some(self.block(Vec::new(), 0, Some(read_problem(&e))));
                }
            };
            let cut = if offset + len as u64 == end {
                Some(len)
            } else {
                last_record_start(mapping.bytes(), 1)
            };
            if let Some(cut) = cut {
                mapped.offset += cut as u64;
                let mut block = self.block(Vec::new(), cut, None);
                block.mapped = Some(mapping);
                return Some(block);
            }
            // One record fills the whole window: map a larger one.
            window *= 2;
        }
    }

    fn block(&mut self, data: Vec<u8>, len: usize, read_error: Option<String>) -> FastaBlock {
        let index = self.blocks;
        self.blocks += 1;
        FastaBlock {
            index,
            data,
            len,
            mapped: None,
            read_error,
        }
    }
}

/// Position of the last '>' at or after `from` (>= 1) that starts a line.
fn last_record_start(data: &[u8], from: usize) -> Option<usize> {
    memchr::memrchr_iter(b'>', &data[from..])
        .map(|i| from + i)
        .find(|&i| data[i - 1] == b'\n')
}

/// One record of a block: its header line (without '>' and line end) and its sequence lines as
/// they are in the file, line ends included.
#[derive(Debug, PartialEq, Eq)]
pub struct FastaRecord<'a> {
    pub header: &'a [u8],
    /// The header line ended with a line break (false only for a header cut off at the end).
    pub header_complete: bool,
    pub lines: &'a [u8],
}

/// The records of a block, in order. The block must start with '>' (or be empty).
pub struct FastaRecords<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> FastaRecords<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        debug_assert!(data.first().is_none_or(|&b| b == b'>'));
        FastaRecords { data, position: 0 }
    }
}

impl<'a> Iterator for FastaRecords<'a> {
    type Item = FastaRecord<'a>;

    fn next(&mut self) -> Option<FastaRecord<'a>> {
        let data = self.data;
        if self.position >= data.len() {
            return None;
        }
        let header_start = self.position + 1;
        let (header_end, header_complete) = match memchr::memchr(b'\n', &data[header_start..]) {
            Some(i) => (header_start + i, true),
            None => (data.len(), false),
        };
        let mut header = &data[header_start..header_end];
        if let [rest @ .., b'\r'] = header {
            header = rest;
        }
        let lines_start = (header_end + 1).min(data.len());
        // The next '>' that starts a line; a '>' inside a line is left to the letter check.
        let mut search_from = lines_start;
        let lines_end = loop {
            match memchr::memchr(b'>', &data[search_from..]) {
                Some(i) if data[search_from + i - 1] == b'\n' => break search_from + i,
                Some(i) => search_from += i + 1,
                None => break data.len(),
            }
        };
        self.position = lines_end;
        Some(FastaRecord {
            header,
            header_complete,
            lines: &data[lines_start..lines_end],
        })
    }
}

/// Calls `each` with every line of `lines`, without its line end ("\n" or "\r\n"; a last line
/// without "\n" loses a final "\r", as at the end of a file). Stops at the first error.
#[inline]
pub fn for_each_line<E>(
    lines: &[u8],
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', lines) {
        let line = &lines[start..end];
        each(line.strip_suffix(b"\r").unwrap_or(line))?;
        start = end + 1;
    }
    if start < lines.len() {
        let line = &lines[start..];
        each(line.strip_suffix(b"\r").unwrap_or(line))?;
    }
    Ok(())
}

/// Checks the letters of a record's `lines` by the rules: their number, or the 0-based
/// position and byte of the first that is not a sequence letter.
pub fn lines_letters(lines: &[u8]) -> Result<u64, (u64, u8)> {
    let mut letters = 0u64;
    for_each_line(lines, |line| {
        if let Some(i) = first_invalid_letter(line) {
            return Err((letters + i as u64, line[i]));
        }
        letters += line.len() as u64;
        Ok(())
    })?;
    Ok(letters)
}

/// Number of sequence letters in `lines` (line ends left out).
pub fn letter_count(lines: &[u8]) -> u64 {
    let mut letters = 0u64;
    let _ = for_each_line(lines, |line| {
        letters += line.len() as u64;
        Ok::<(), ()>(())
    });
    letters
}

/// The letter at 0-based `position` of `lines` (line ends left out), if there is one.
pub fn letter_at(lines: &[u8], position: u64) -> Option<u8> {
    let mut before = 0u64;
    let mut found = None;
    let _ = for_each_line(lines, |line| {
        if position < before + line.len() as u64 {
            found = Some(line[(position - before) as usize]);
            return Err(());
        }
        before += line.len() as u64;
        Ok(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, then fails if asked to.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() && self.fail_at_end {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
            }
            let n = out.len().min(self.step).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn records_of(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        FastaRecords::new(data)
            .map(|r| {
                let mut letters = Vec::new();
                for_each_line(r.lines, |line| {
                    letters.extend_from_slice(line);
                    Ok::<(), ()>(())
                })
                .unwrap();
                (r.header.to_vec(), letters)
            })
            .collect()
    }

    /// Line-by-line reference: header lines start with '>', other lines are sequence.
    fn reference_records(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let text = data.strip_suffix(b"\n").unwrap_or(data);
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match line.strip_prefix(b">") {
                Some(header) => out.push((header.to_vec(), Vec::new())),
                None => out.last_mut().unwrap().1.extend_from_slice(line),
            }
        }
        out
    }

    fn fasta() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        let record = (
            proptest::collection::vec(proptest::sample::select(b"ab >x\t".to_vec()), 0..6),
            proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"ACGTN>\r".to_vec()), 0..12),
                0..5,
            ),
            proptest::bool::ANY,
        );
        proptest::collection::vec(record, 1..12).prop_map(|records| {
            let mut data = Vec::new();
            for (header, lines, crlf) in records {
                data.push(b'>');
                data.extend_from_slice(&header);
                data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                for line in lines {
                    data.extend_from_slice(&line);
                    data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                }
            }
            data
        })
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #[test]
        fn records_and_lines_match_a_line_reader(data in fasta(), drop_last_newline in proptest::bool::ANY) {
            let mut data = data;
            if drop_last_newline {
                data.pop();
            }
            proptest::prop_assert_eq!(records_of(&data), reference_records(&data));
        }

        #[test]
        fn blocks_hold_whole_records_at_any_cut(
            data in fasta(),
            step in 1usize..50,
            block_bytes in 1usize..120,
        ) {
            let source = Trickle { data: data[1..].to_vec(), at: 0, step, fail_at_end: false };
            let mut reader =
                FastaBlockReader::with_block_bytes(data[..1].to_vec(), Box::new(source), block_bytes);
            let mut joined = Vec::new();
            let mut spare = None;
            let mut index = 0;
            while let Some(block) = reader.next_block(spare.take()) {
                proptest::prop_assert_eq!(block.index, index);
                proptest::prop_assert!(block.read_error.is_none());
                proptest::prop_assert_eq!(block.content().first(), Some(&b'>'));
                // Every block ends where the next record starts, after a line end.
                proptest::prop_assert!(joined.is_empty() || joined.last() == Some(&b'\n'));
                joined.extend_from_slice(block.content());
                index += 1;
                spare = Some(block);
            }
            proptest::prop_assert_eq!(&joined, &data);
        }

        #[test]
        fn mapped_blocks_hold_whole_records_at_any_cut(
            data in fasta(),
            blank_lines in 0usize..3,
            block_bytes in 1usize..120,
        ) {
            let path = std::env::temp_dir().join(format!(
                "vaebin-mapped-blocks-{}-{block_bytes}",
                std::process::id()
            ));
            let mut file_content = b"\n".repeat(blank_lines);
            file_content.extend_from_slice(&data);
            std::fs::write(&path, &file_content).unwrap();
            let file = File::open(&path).unwrap();
            let mut reader = match FastaBlockReader::mapped_with_block_bytes(file, blank_lines as u64, block_bytes) {
                Ok(reader) => reader,
                Err(e) => {
                    proptest::prop_assert_eq!(e.kind(), io::ErrorKind::Unsupported);
                    return Ok(());
                }
            };
            let mut joined = Vec::new();
            let mut index = 0;
            while let Some(block) = reader.next_block(None) {
                proptest::prop_assert_eq!(block.index, index);
                proptest::prop_assert!(block.read_error.is_none());
                proptest::prop_assert_eq!(block.content().first(), Some(&b'>'));
                proptest::prop_assert!(joined.is_empty() || joined.last() == Some(&b'\n'));
                joined.extend_from_slice(block.content());
                index += 1;
            }
            std::fs::remove_file(&path).unwrap();
            proptest::prop_assert_eq!(&joined, &data);
        }

        #[test]
        fn letters_by_position(data in fasta()) {
            for record in FastaRecords::new(&data) {
                let mut letters = Vec::new();
                for_each_line(record.lines, |line| { letters.extend_from_slice(line); Ok::<(), ()>(()) }).unwrap();
                proptest::prop_assert_eq!(letter_count(record.lines), letters.len() as u64);
                for (i, &letter) in letters.iter().enumerate() {
                    proptest::prop_assert_eq!(letter_at(record.lines, i as u64), Some(letter));
                }
                proptest::prop_assert_eq!(letter_at(record.lines, letters.len() as u64), None);
            }
        }
    }

    #[test]
    fn blocks_cut_between_records_and_grow_for_long_ones() {
        let long = b"ACGT".repeat(BLOCK_BYTES / 2);
        let mut data = b">a\nAC\n>b\n".to_vec();
        for line in long.chunks(80) {
            data.extend_from_slice(line);
            data.push(b'\n');
        }
        data.extend_from_slice(b">c\nGG\n");
        let source = Trickle {
            data: data[1..].to_vec(),
            at: 0,
            step: 1 << 16,
            fail_at_end: true,
        };
        let mut reader = FastaBlockReader::new(b">".to_vec(), Box::new(source));
        let first = reader.next_block(None).unwrap();
        assert_eq!(first.content(), b">a\nAC\n");
        assert!(first.read_error.is_none());
        // Record b is longer than a block: the buffer grows until the read fails after c.
        let last = reader.next_block(Some(first)).unwrap();
        let records = records_of(last.content());
        assert_eq!(records.len(), 2);
        assert_eq!(records[0], (b"b".to_vec(), long));
        assert_eq!(records[1], (b"c".to_vec(), b"GG".to_vec()));
        assert!(last
            .read_error
            .as_deref()
            .unwrap()
            .contains("truncated gzip"));
        assert!(reader.next_block(None).is_none());
    }
}
