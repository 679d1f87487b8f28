//! Canonical k-mer index tables. A k-mer and its reverse complement are one feature; features are
//! ordered by the canonical (lexicographically smaller) k-mer, which with the 2-bit code
//! A=0, C=1, G=2, T=3 is the numeric order of the codes.

use crate::seqio::rules::is_sequence_letter;

pub const MAX_K: usize = 6;

/// Byte -> 2-bit base code; `AMBIGUOUS` for the other sequence letters (N, IUPAC codes, gaps),
/// `INVALID` for bytes the reader's rules (`seqio::rules::is_sequence_letter`) refuse.
pub const AMBIGUOUS: u8 = 4;
pub const INVALID: u8 = 5;

pub static BASE_CODE: [u8; 256] = build_base_code();

const fn build_base_code() -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut byte = 0;
    while byte < 256 {
        if is_sequence_letter(byte as u8) {
            table[byte] = AMBIGUOUS;
        }
        byte += 1;
    }
    table[b'A' as usize] = 0;
    table[b'a' as usize] = 0;
    table[b'C' as usize] = 1;
    table[b'c' as usize] = 1;
    table[b'G' as usize] = 2;
    table[b'g' as usize] = 2;
    table[b'T' as usize] = 3;
    table[b't' as usize] = 3;
    table
}

/// Reverse complement of a 2-bit encoded k-mer.
pub fn reverse_complement(code: u32, k: usize) -> u32 {
    let mut rc = 0u32;
    let mut rest = code;
    for _ in 0..k {
        rc = (rc << 2) | (3 - (rest & 3));
        rest >>= 2;
    }
    rc
}

/// Number of canonical k-mers: (4^k + 4^(k/2)) / 2 for even k (palindromes), 4^k / 2 for odd k.
pub fn canonical_count(k: usize) -> usize {
    let all = 1usize << (2 * k);
    if k.is_multiple_of(2) {
        (all + (1usize << k)) / 2
    } else {
        all / 2
    }
}

/// For each of the 4^k k-mer codes, the column of its canonical k-mer.
pub fn canonical_columns(k: usize) -> Vec<u16> {
    let all = 1u32 << (2 * k);
    let mut columns = vec![u16::MAX; all as usize];
    let mut next = 0u16;
    for code in 0..all {
        let rc = reverse_complement(code, k);
        if code <= rc {
            columns[code as usize] = next;
            columns[rc as usize] = next;
            next += 1;
        }
    }
    columns
}

/// Two-bit code of a base read from its ASCII bits, `(byte >> 1) & 3`: A/a 0, C/c 1, T/t 2,
/// G/g 3. Cheaper than a table lookup in the counting loop; meaningful for ACGT (either case) only.
#[inline(always)]
pub fn ascii_code(byte: u8) -> u8 {
    (byte >> 1) & 3
}

/// For each of the 4^k k-mer codes written in `ascii_code` digits, the column of its canonical
/// k-mer. The complement of an `ascii_code` digit is `digit ^ 2`.
pub fn ascii_order_columns(k: usize) -> Vec<u16> {
    // ascii_code digit -> alphabetical digit: A 0 -> 0, C 1 -> 1, T 2 -> 3, G 3 -> 2.
    const ALPHABETICAL: [u32; 4] = [0, 1, 3, 2];
    let columns = canonical_columns(k);
    (0..1u32 << (2 * k))
        .map(|code| {
            let alphabetical = (0..k).fold(0u32, |acc, i| {
                acc | ALPHABETICAL[((code >> (2 * i)) & 3) as usize] << (2 * i)
            });
            columns[alphabetical as usize]
        })
        .collect()
}

/// The canonical k-mers as strings, in column order.
pub fn canonical_labels(k: usize) -> Vec<String> {
    let all = 1u32 << (2 * k);
    (0..all)
        .filter(|&code| code <= reverse_complement(code, k))
        .map(|code| decode(code, k))
        .collect()
}

pub fn decode(code: u32, k: usize) -> String {
    (0..k)
        .rev()
        .map(|i| b"ACGT"[((code >> (2 * i)) & 3) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_counts_match_formula() {
        for k in 1..=MAX_K {
            let columns = canonical_columns(k);
            let distinct = *columns.iter().max().unwrap() as usize + 1;
            assert_eq!(distinct, canonical_count(k));
            assert_eq!(canonical_labels(k).len(), canonical_count(k));
        }
        assert_eq!(canonical_count(4), 136);
        assert_eq!(canonical_count(3), 32);
        assert_eq!(canonical_count(6), 2080);
    }

    #[test]
    fn labels_are_sorted_and_canonical() {
        let labels = canonical_labels(2);
        assert_eq!(
            labels,
            vec!["AA", "AC", "AG", "AT", "CA", "CC", "CG", "GA", "GC", "TA"]
        );
        let mut sorted = canonical_labels(4);
        sorted.sort();
        assert_eq!(sorted, canonical_labels(4));
    }

    #[test]
    fn reverse_complement_examples() {
        // AACG (0b00_00_01_10) -> CGTT (0b01_10_11_11)
        assert_eq!(reverse_complement(0b0000_0110, 4), 0b0110_1111);
        assert_eq!(decode(reverse_complement(0b0000_0110, 4), 4), "CGTT");
    }

    #[test]
    fn base_codes() {
        assert_eq!(BASE_CODE[b'a' as usize], 0);
        assert_eq!(BASE_CODE[b'T' as usize], 3);
        assert_eq!(BASE_CODE[b'N' as usize], AMBIGUOUS);
        assert_eq!(BASE_CODE[b'r' as usize], AMBIGUOUS);
        assert_eq!(BASE_CODE[0], INVALID);
        assert_eq!(BASE_CODE[b' ' as usize], INVALID);
        assert_eq!(BASE_CODE[b'1' as usize], INVALID);
        // The table refuses exactly the bytes the reader's rules refuse.
        for byte in 0..=255u8 {
            assert_eq!(
                BASE_CODE[byte as usize] != INVALID,
                is_sequence_letter(byte)
            );
        }
    }

    #[test]
    fn ascii_codes_follow_the_letters() {
        assert_eq!(ascii_code(b'A'), 0);
        assert_eq!(ascii_code(b'c'), 1);
        assert_eq!(ascii_code(b'T'), 2);
        assert_eq!(ascii_code(b'g'), 3);
        assert_eq!(ascii_code(b'a'), ascii_code(b'A'));
        assert_eq!(ascii_code(b't'), ascii_code(b'T'));
    }

    proptest::proptest! {
        #[test]
        fn reverse_complement_is_an_involution(k in 1usize..=MAX_K, seed in 0u32..u32::MAX) {
            let code = seed & ((1u32 << (2 * k)) - 1);
            proptest::prop_assert_eq!(reverse_complement(reverse_complement(code, k), k), code);
            let columns = canonical_columns(k);
            proptest::prop_assert_eq!(columns[code as usize], columns[reverse_complement(code, k) as usize]);
        }

        #[test]
        fn ascii_order_columns_agree_with_the_letters(
            kmer in proptest::collection::vec(proptest::sample::select(b"ACGTacgt".to_vec()), 1..=MAX_K),
        ) {
            let k = kmer.len();
            let alphabetical = kmer.iter().fold(0u32, |acc, &b| (acc << 2) | BASE_CODE[b as usize] as u32);
            let ascii = kmer.iter().fold(0u32, |acc, &b| (acc << 2) | ascii_code(b) as u32);
            proptest::prop_assert_eq!(
                ascii_order_columns(k)[ascii as usize],
                canonical_columns(k)[alphabetical as usize]
            );
        }
    }
}
