//! The checks behind the rules in the `seqio` module documentation, and the words of their
//! errors. Both reading modes (`stream` and `blocks`) and the k-mer tables (`kmer::BASE_CODE`)
//! call these; no other code decides what a valid name, letter or quality is.

use std::collections::HashSet;

/// Problem of a record that has a header but no sequence letter.
pub const EMPTY_RECORD: &str = "record has no sequence (a header with no sequence letters)";
/// Problem of a file that holds no record at all.
pub const NO_RECORDS: &str = "contains no sequences (empty file)";

/// Whether `byte` may stand in a sequence line: a letter of either case (A, C, G, T are bases,
/// every other letter an unknown base such as N), or '-', '.' or '*' (read as unknown bases).
#[inline(always)]
pub const fn is_sequence_letter(byte: u8) -> bool {
    let folded = byte | 0x20;
    (folded >= b'a' && folded <= b'z') | (byte == b'-') | (byte == b'.') | (byte == b'*')
}

/// Index of the first byte of `letters` that is not a sequence letter.
#[inline]
pub fn first_invalid_letter(letters: &[u8]) -> Option<usize> {
    // Whole chunks with a branch-free test the compiler turns into vector instructions; the
    // chunk that fails (and the tail) is searched byte by byte.
    const CHUNK: usize = 32;
    let mut checked = 0;
    for chunk in letters.chunks_exact(CHUNK) {
        let valid = chunk
            .iter()
            .fold(true, |valid, &byte| valid & is_sequence_letter(byte));
        if !valid {
            break;
        }
        checked += CHUNK;
    }
    letters[checked..]
        .iter()
        .position(|&byte| !is_sequence_letter(byte))
        .map(|i| checked + i)
}

/// The words for a byte that is not a sequence letter at 0-based `position` of its record.
pub fn invalid_character(byte: u8, position: u64) -> String {
    format!(
        "invalid character {} at sequence position {} (a sequence holds letters, '-', '.' \
         and '*' only)",
        shown(byte),
        position + 1
    )
}

/// The record name in a header line (without '>' or '@'): up to the first space or tab.
pub fn record_name(header: &[u8]) -> Result<&[u8], &'static str> {
    let name_end = header
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(header.len());
    let name = &header[..name_end];
    if name.is_empty() {
        return Err("empty sequence name in header");
    }
    if name.iter().any(|&b| !(0x21..0x7f).contains(&b)) {
        return Err("sequence name contains non-printable or non-ASCII bytes");
    }
    Ok(name)
}

/// The names seen so far in one file, to refuse a second record of the same name.
#[derive(Debug, Default)]
pub struct SeenNames(HashSet<Box<[u8]>>);

impl SeenNames {
    /// Records `name`; the problem to report if it was seen before.
    pub fn insert(&mut self, name: &[u8]) -> Result<(), String> {
        if self.0.insert(name.into()) {
            Ok(())
        } else {
            Err(format!(
                "duplicate sequence name '{}'",
                String::from_utf8_lossy(name)
            ))
        }
    }
}

/// Checks a FASTQ quality line against its sequence of `sequence_length` letters.
pub fn check_quality(quality: &[u8], sequence_length: usize) -> Result<(), String> {
    if quality.len() != sequence_length {
        return Err(format!(
            "FASTQ quality line has {} characters for a sequence of {}",
            quality.len(),
            sequence_length
        ));
    }
    if let Some(i) = quality.iter().position(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(format!(
            "invalid quality character {} at position {} (qualities are '!' to '~')",
            shown(quality[i]),
            i + 1
        ));
    }
    Ok(())
}

/// The problem of a file whose first non-empty line starts with `first`.
pub fn not_fasta_or_fastq(first: u8) -> String {
    format!(
        "not FASTA or FASTQ: expected '>' or '@' at the start of a record, found {}",
        shown(first)
    )
}

/// Where the first non-empty line of `data` starts, when `data` shows it: empty lines ("\n" or
/// "\r\n") are skipped. `at_end` tells that nothing follows `data`; otherwise a lone "\r" at its
/// end may still become an empty line and no answer is given yet.
pub fn first_line_start(data: &[u8], at_end: bool) -> Option<usize> {
    let mut at = 0;
    loop {
        match (data.get(at), data.get(at + 1)) {
            (Some(b'\n'), _) => at += 1,
            (Some(b'\r'), Some(b'\n')) => at += 2,
            (Some(b'\r'), None) if at_end => at += 1,
            (Some(b'\r'), None) => return None,
            (Some(_), _) => return Some(at),
            (None, _) => return None,
        }
    }
}

/// A byte as an error message shows it.
fn shown(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_letters_are_letters_and_gap_symbols() {
        let expected: Vec<u8> = (0..=255u8)
            .filter(|b| b.is_ascii_alphabetic() || b"-.*".contains(b))
            .collect();
        let found: Vec<u8> = (0..=255u8).filter(|&b| is_sequence_letter(b)).collect();
        assert_eq!(found, expected);
    }

    proptest::proptest! {
        #[test]
        fn first_invalid_letter_matches_a_scan(
            letters in proptest::collection::vec(
                proptest::sample::select(b"ACGTNacgtn-.* \t\r>1\x00\xff".to_vec()),
                0..200,
            ),
            all_valid_prefix in 0usize..150,
        ) {
            let mut letters = letters;
            for byte in letters.iter_mut().take(all_valid_prefix) {
                if !is_sequence_letter(*byte) {
                    *byte = b'A';
                }
            }
            let expected = letters.iter().position(|&b| !(b.is_ascii_alphabetic() || b"-.*".contains(&b)));
            proptest::prop_assert_eq!(first_invalid_letter(&letters), expected);
        }
    }

    #[test]
    fn names_and_qualities() {
        assert_eq!(record_name(b"c1 some words"), Ok(&b"c1"[..]));
        assert_eq!(record_name(b"c1\tx"), Ok(&b"c1"[..]));
        assert!(record_name(b" c1").is_err());
        assert!(record_name(b"c\x01").is_err());
        let mut seen = SeenNames::default();
        assert!(seen.insert(b"a").is_ok());
        assert!(seen.insert(b"A").is_ok());
        assert_eq!(
            seen.insert(b"a").unwrap_err(),
            "duplicate sequence name 'a'"
        );
        assert!(check_quality(b"II#", 3).is_ok());
        assert!(check_quality(b"II", 3)
            .unwrap_err()
            .contains("2 characters"));
        assert!(check_quality(b"I I", 3)
            .unwrap_err()
            .contains("byte 0x20 at position 2"));
    }

    #[test]
    fn first_line_skips_only_empty_lines() {
        assert_eq!(first_line_start(b"\n\r\n>a", false), Some(3));
        assert_eq!(first_line_start(b"\n \n>a", false), Some(1));
        assert_eq!(first_line_start(b"\n\r", false), None);
        assert_eq!(first_line_start(b"\n\r", true), None);
        assert_eq!(first_line_start(b"\r\r\n", true), Some(0));
        assert_eq!(first_line_start(b"\n\n", true), None);
    }
}
