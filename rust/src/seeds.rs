//! Seed prefilter of the marker-gene search: which proteins each marker profile can hit.
//!
//! The marker step searches every called protein against every marker HMM, and HMMER's first
//! filter (MSV) scores each pair in full: on a 32 Mbp co-assembly that is 9 M residues against
//! 111 models, for a few hundred hits. This module cuts the pairs first, as seed-and-extend
//! searches do: a protein goes on to the HMM search of a model only if it holds two seeds of
//! the model on one diagonal (the two-hit rule; `SeedOptions::window`) and the second seed,
//! extended without gaps along that diagonal, scores at least `min_score` bits.
//!
//! A seed of a model at state j is a k-mer that scores at least `threshold` bits against the k
//! match states from j, the score being the sum of log2(emission / background) of its residues.
//! Seeds are enumerated per window of k states by a depth-first search over residues sorted by
//! score, cut when even the best remaining residues cannot reach the threshold, so only the
//! seeds themselves are visited.
//!
//! Structure: a compressed table over all 20^k k-mers (offsets, 4 bytes each: 0.64 MB at
//! k = 4, 12.8 MB at k = 5), each k-mer pointing at its (model, state) entries. A protein
//! k-mer costs one table read and, per entry, one look at its diagonal (the last seed met there
//! and how far an extension reached). Extensions go left and right from the seed, each side
//! stopping when its running score falls `x_drop` bits below the best it reached (the BLAST
//! rule); the pair's score is seed + best left + best right. A seed inside a segment already
//! extended is not extended again, and a model stops being scored once the protein passed it.
//!
//! The filter is exact in what it computes, not in what HMMER would report: a protein with no
//! such seed-anchored ungapped segment is not searched. Its sensitivity against the full search,
//! on tuning and held-out communities, is in docs/markers.md ("Search filters").

use rayon::prelude::*;

use crate::errors::{CoreError, CoreResult};

/// The 20 amino acids in HMMER's order (the columns of a profile's score rows).
pub const AMINO_ACIDS: &[u8; 20] = b"ACDEFGHIKLMNPQRSTVWY";
/// Seed lengths the table supports (20^5 offsets is the largest kept dense).
pub const MIN_K: usize = 3;
pub const MAX_K: usize = 5;
/// Entries beyond this mean a threshold far too low for a prefilter (each is 4 bytes).
pub const MAX_ENTRIES: usize = 200_000_000;

const NOT_AMINO: u8 = u8::MAX;

/// Residue code (index in `AMINO_ACIDS`) of each byte, upper or lower case; others NOT_AMINO.
fn residue_codes() -> [u8; 256] {
    let mut codes = [NOT_AMINO; 256];
    for (i, &a) in AMINO_ACIDS.iter().enumerate() {
        codes[a as usize] = i as u8;
        codes[a.to_ascii_lowercase() as usize] = i as u8;
    }
    codes
}

/// One model's scores: `length` match states, 20 scores (bits) each, row-major.
#[derive(Clone, Copy)]
pub struct Profile<'a> {
    pub scores: &'a [f32],
    pub length: usize,
}

/// How seeds are found and extended.
#[derive(Clone, Copy, Debug)]
pub struct SeedOptions {
    pub k: usize,
    /// Bits a k-mer must score against k states to be a seed.
    pub threshold: f32,
    /// An extension stops this many bits below the best score it reached.
    pub x_drop: f32,
    /// Two-hit rule: a seed is extended only when another seed of the model on the same
    /// diagonal started at most this many residues before it (0: every seed is extended).
    pub window: usize,
}

/// The seed table of a marker set.
pub struct SeedIndex {
    options: SeedOptions,
    /// Scores of every model, row-major, and where each model starts (in rows) and ends.
    scores: Vec<f32>,
    starts: Vec<usize>,
    lengths: Vec<usize>,
    /// Cumulative state counts (n_models + 1): where each model's diagonals start in a scan.
    first_state: Vec<usize>,
    /// Entries of k-mer c: entries[offsets[c]..offsets[c + 1]], each model << 16 | state.
    offsets: Vec<u32>,
    entries: Vec<u32>,
    /// Distinct seeds of each model.
    pub seeds: Vec<u64>,
}

fn check(options: &SeedOptions, profiles: &[Profile<'_>]) -> CoreResult<()> {
    let k = options.k;
    if !(MIN_K..=MAX_K).contains(&k) {
        return Err(CoreError::Parameter(format!(
            "seed length must be {MIN_K} to {MAX_K}, not {k}"
        )));
    }
    if profiles.is_empty() || profiles.len() > 1 << 16 {
        return Err(CoreError::Parameter(format!(
            "the seed prefilter takes 1 to 65536 models, not {}",
            profiles.len()
        )));
    }
    if !(options.threshold.is_finite() && options.x_drop.is_finite() && options.x_drop > 0.0) {
        return Err(CoreError::Parameter(
            "the seed threshold must be finite and the x-drop a positive number of bits"
                .to_string(),
        ));
    }
    for (i, p) in profiles.iter().enumerate() {
        if p.scores.len() != p.length * 20 {
            return Err(CoreError::Parameter(format!(
                "profile {i}: {} scores for {} states of 20",
                p.scores.len(),
                p.length
            )));
        }
        if p.length > 1 << 16 {
            return Err(CoreError::Parameter(format!(
                "profile {i}: {} states, more than 65536",
                p.length
            )));
        }
        if p.scores.iter().any(|s| !s.is_finite()) {
            return Err(CoreError::Parameter(format!(
                "profile {i}: scores must be finite"
            )));
        }
    }
    Ok(())
}

/// Every (k-mer code, state) of `profile` scoring at least `threshold`, in state order, and
/// how many distinct k-mers that is.
fn model_seeds(profile: &Profile<'_>, k: usize, threshold: f32) -> (Vec<(u32, u16)>, u64) {
    let mut found = Vec::new();
    if profile.length < k {
        return (found, 0);
    }
    let rows: Vec<&[f32]> = profile.scores.chunks_exact(20).collect();
    // Residues of each state by score, best first, and the best score of each state.
    let order: Vec<[u8; 20]> = rows
        .iter()
        .map(|row| {
            let mut o: [u8; 20] = std::array::from_fn(|i| i as u8);
            o.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            o
        })
        .collect();
    let best: Vec<f32> = rows
        .iter()
        .zip(&order)
        .map(|(r, o)| r[o[0] as usize])
        .collect();
    let mut remaining = vec![0f32; k + 1];
    for start in 0..=profile.length - k {
        // remaining[j]: the most the states start+j .. start+k-1 can add.
        for j in (0..k).rev() {
            remaining[j] = remaining[j + 1] + best[start + j];
        }
        if remaining[0] < threshold {
            continue;
        }
        let window = Window {
            rows: &rows[start..start + k],
            order: &order[start..start + k],
            remaining: &remaining,
            threshold,
        };
        window.visit(0, 0.0, 0, &mut |code| found.push((code, start as u16)));
    }
    let mut codes: Vec<u32> = found.iter().map(|&(c, _)| c).collect();
    codes.sort_unstable();
    codes.dedup();
    (found, codes.len() as u64)
}

/// The k states of one window, for the depth-first enumeration of its seeds.
struct Window<'a> {
    rows: &'a [&'a [f32]],
    order: &'a [[u8; 20]],
    remaining: &'a [f32],
    threshold: f32,
}

impl Window<'_> {
    fn visit(&self, depth: usize, score: f32, code: u32, emit: &mut impl FnMut(u32)) {
        if depth == self.rows.len() {
            emit(code);
            return;
        }
        for &a in &self.order[depth] {
            let s = score + self.rows[depth][a as usize];
            if s + self.remaining[depth + 1] < self.threshold {
                break; // residues are sorted: the rest score lower still
            }
            self.visit(depth + 1, s, code * 20 + a as u32, emit);
        }
    }
}

/// What a scan knows of one diagonal of one model, valid only when `stamp` is the protein's.
#[derive(Clone, Copy, Default)]
struct Diagonal {
    stamp: u32,
    /// 1 + start of the last seed met (0: none).
    last_seed: u32,
    /// 1 + the last protein position an extension reached (0: none).
    reached: u32,
}

/// Per-thread scratch of a protein scan. For a protein of L residues the diagonals of model m
/// are the slots `first_state[m] + m * (L + 1) + (p + length_m - j)` (p: protein position, j:
/// state), so they are packed per protein and stay in cache.
struct Scratch {
    residues: Vec<u8>,
    stamp: u32,
    diagonals: Vec<Diagonal>,
    /// Per model: best score so far of this protein, and the models touched.
    best: Vec<f32>,
    touched: Vec<u32>,
}

impl Scratch {
    fn new(n_models: usize) -> Self {
        Scratch {
            residues: Vec::new(),
            stamp: 0,
            diagonals: Vec::new(),
            best: vec![f32::NEG_INFINITY; n_models],
            touched: Vec::new(),
        }
    }
}

impl SeedIndex {
    /// The seed table of `profiles` (scores in bits; rows of 20 in `AMINO_ACIDS` order).
    pub fn build(profiles: &[Profile<'_>], options: SeedOptions) -> CoreResult<Self> {
        check(&options, profiles)?;
        let k = options.k;
        let per_model: Vec<(Vec<(u32, u16)>, u64)> = profiles
            .par_iter()
            .map(|profile| model_seeds(profile, k, options.threshold))
            .collect();
        let total: usize = per_model.iter().map(|(f, _)| f.len()).sum();
        if total > MAX_ENTRIES {
            return Err(CoreError::Parameter(format!(
                "seed threshold {} gives {total} seeds, more than {MAX_ENTRIES}: raise it",
                options.threshold
            )));
        }
        // Counting sort by k-mer code: model order, then state order, within each k-mer.
        let n_codes = 20usize.pow(k as u32);
        let mut offsets = vec![0u32; n_codes + 1];
        for (found, _) in &per_model {
            for &(code, _) in found {
                offsets[code as usize + 1] += 1;
            }
        }
        for c in 0..n_codes {
            offsets[c + 1] += offsets[c];
        }
        let mut next: Vec<u32> = offsets[..n_codes].to_vec();
        let mut entries = vec![0u32; total];
        for (model, (found, _)) in per_model.iter().enumerate() {
            for &(code, state) in found {
                let slot = &mut next[code as usize];
                entries[*slot as usize] = ((model as u32) << 16) | state as u32;
                *slot += 1;
            }
        }
        let mut scores = Vec::with_capacity(profiles.iter().map(|p| p.scores.len()).sum());
        let mut starts = Vec::with_capacity(profiles.len());
        for p in profiles {
            starts.push(scores.len() / 20);
            scores.extend_from_slice(p.scores);
        }
        Ok(SeedIndex {
            options,
            scores,
            starts,
            lengths: profiles.iter().map(|p| p.length).collect(),
            first_state: std::iter::once(0)
                .chain(profiles.iter().scan(0, |total, p| {
                    *total += p.length;
                    Some(*total)
                }))
                .collect(),
            offsets,
            entries,
            seeds: per_model.iter().map(|(_, n)| *n).collect(),
        })
    }

    pub fn n_models(&self) -> usize {
        self.lengths.len()
    }

    /// Bytes of the table (offsets and entries).
    pub fn table_bytes(&self) -> usize {
        (self.offsets.len() + self.entries.len()) * 4
    }

    /// Score of residue code `a` at state `j` of `model`.
    #[inline]
    fn score(&self, model: usize, j: usize, a: u8) -> f32 {
        self.scores[(self.starts[model] + j) * 20 + a as usize]
    }

    /// Best ungapped score through the seed at protein position `p` / state `j` (k long):
    /// seed + best right extension + best left extension, each stopping `x_drop` below its
    /// best; and the last protein position the right extension looked at.
    fn extend(&self, model: usize, residues: &[u8], p: usize, j: usize) -> (f32, usize) {
        let k = self.options.k;
        let x_drop = self.options.x_drop;
        let length = self.lengths[model];
        let mut seed = 0f32;
        for t in 0..k {
            seed += self.score(model, j + t, residues[p + t]);
        }
        let (mut run, mut right) = (0f32, 0f32);
        let mut reached = p + k - 1;
        let (mut pp, mut jj) = (p + k, j + k);
        while pp < residues.len() && jj < length && residues[pp] != NOT_AMINO {
            run += self.score(model, jj, residues[pp]);
            reached = pp;
            if run > right {
                right = run;
            } else if run < right - x_drop {
                break;
            }
            pp += 1;
            jj += 1;
        }
        let (mut run, mut left) = (0f32, 0f32);
        let (mut pp, mut jj) = (p, j);
        while pp > 0 && jj > 0 && residues[pp - 1] != NOT_AMINO {
            pp -= 1;
            jj -= 1;
            run += self.score(model, jj, residues[pp]);
            if run > left {
                left = run;
            } else if run < left - x_drop {
                break;
            }
        }
        (seed + left + right, reached)
    }

    /// Best seed-anchored ungapped score of `protein` against each model it has a seed of;
    /// with `stop_at`, a model is no longer extended once it reached that score.
    fn scan(&self, protein: &[u8], stop_at: Option<f32>, scratch: &mut Scratch) -> Vec<(u32, f32)> {
        let codes = residue_codes();
        let k = self.options.k;
        let window = self.options.window;
        scratch.residues.clear();
        scratch
            .residues
            .extend(protein.iter().map(|&b| codes[b as usize]));
        let slots =
            self.first_state.last().copied().unwrap_or(0) + self.n_models() * (protein.len() + 1);
        if scratch.diagonals.len() < slots {
            scratch.diagonals.resize(slots, Diagonal::default());
        }
        scratch.stamp = scratch.stamp.wrapping_add(1);
        if scratch.stamp == 0 {
            // After 2^32 proteins an old stamp could come back: start afresh.
            scratch.diagonals.fill(Diagonal::default());
            scratch.stamp = 1;
        }
        let stamp = scratch.stamp;
        let stride = protein.len() + 1;
        let stop = stop_at.unwrap_or(f32::INFINITY);
        let modulus = 20u32.pow(k as u32 - 1);
        let mut code = 0u32;
        let mut valid = 0usize;
        for i in 0..scratch.residues.len() {
            let a = scratch.residues[i];
            if a == NOT_AMINO {
                valid = 0;
                code = 0;
                continue;
            }
            code = (code % modulus) * 20 + a as u32;
            valid += 1;
            if valid < k {
                continue;
            }
            let p = i + 1 - k;
            let range =
                self.offsets[code as usize] as usize..self.offsets[code as usize + 1] as usize;
            for &entry in &self.entries[range] {
                let (model, j) = ((entry >> 16) as usize, (entry & 0xffff) as usize);
                if scratch.best[model] >= stop {
                    continue;
                }
                let slot = self.first_state[model] + model * stride + p + self.lengths[model] - j;
                let diagonal = &mut scratch.diagonals[slot];
                if diagonal.stamp != stamp {
                    *diagonal = Diagonal {
                        stamp,
                        last_seed: 0,
                        reached: 0,
                    };
                }
                if window > 0 {
                    // Two hits: this seed and an earlier one on the diagonal, not overlapping,
                    // at most `window` apart. A seed overlapping the last one is passed over.
                    let previous = diagonal.last_seed as usize;
                    if previous != 0 && p + 1 - previous < k {
                        continue;
                    }
                    diagonal.last_seed = p as u32 + 1;
                    if previous == 0 || p + 1 - previous > window {
                        continue; // no earlier seed close enough on this diagonal
                    }
                }
                if diagonal.reached as usize > i {
                    continue; // this seed lies inside a segment already extended
                }
                let (score, end) = self.extend(model, &scratch.residues, p, j);
                scratch.diagonals[slot].reached = end as u32 + 1;
                if scratch.best[model] == f32::NEG_INFINITY {
                    scratch.touched.push(model as u32);
                }
                scratch.best[model] = scratch.best[model].max(score);
            }
        }
        scratch.touched.sort_unstable();
        let out = scratch
            .touched
            .iter()
            .map(|&m| (m, scratch.best[m as usize]))
            .collect();
        for &m in &scratch.touched {
            scratch.best[m as usize] = f32::NEG_INFINITY;
        }
        scratch.touched.clear();
        out
    }

    /// Runs `scan` over every protein in the current rayon pool.
    fn scan_all(&self, proteins: &[&[u8]], stop_at: Option<f32>) -> Vec<Vec<(u32, f32)>> {
        proteins
            .par_iter()
            .map_init(
                || Scratch::new(self.n_models()),
                |scratch, protein| self.scan(protein, stop_at, scratch),
            )
            .collect()
    }

    /// For each model, the indices (ascending) of the proteins with a seed-anchored ungapped
    /// segment of at least `min_score` bits against it. Letters other than the 20 amino acids
    /// (X, *, ...) break seeds and extensions. Runs in the current rayon pool.
    pub fn candidates(&self, proteins: &[&[u8]], min_score: f32) -> CoreResult<Vec<Vec<u32>>> {
        if proteins.len() > u32::MAX as usize || !min_score.is_finite() {
            return Err(CoreError::Parameter(
                "too many proteins, or a minimum score that is not finite".to_string(),
            ));
        }
        let per_protein = self.scan_all(proteins, Some(min_score));
        let mut per_model = vec![Vec::new(); self.n_models()];
        for (p, found) in per_protein.iter().enumerate() {
            for &(m, score) in found {
                if score >= min_score {
                    per_model[m as usize].push(p as u32);
                }
            }
        }
        Ok(per_model)
    }

    /// Every (protein, model) pair with a seed, and its best seed-anchored ungapped score:
    /// what `candidates` thresholds, for choosing `min_score`.
    pub fn best_scores(&self, proteins: &[&[u8]]) -> Vec<(u32, u32, f32)> {
        self.scan_all(proteins, None)
            .into_iter()
            .enumerate()
            .flat_map(|(p, found)| found.into_iter().map(move |(m, s)| (p as u32, m, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of a profile: `favourite[i]` scores `high` at state i, every other residue -1.
    fn profile(favourite: &[u8], high: f32) -> Vec<f32> {
        let codes = residue_codes();
        let mut s = vec![-1.0f32; favourite.len() * 20];
        for (i, &b) in favourite.iter().enumerate() {
            s[i * 20 + codes[b as usize] as usize] = high;
        }
        s
    }

    fn options(k: usize, threshold: f32, x_drop: f32) -> SeedOptions {
        SeedOptions {
            k,
            threshold,
            x_drop,
            window: 0,
        }
    }

    /// Every k-mer over the 20 letters scored against every window, the slow way.
    fn brute_force(scores: &[f32], length: usize, k: usize, threshold: f32) -> Vec<(u32, u16)> {
        let mut out = Vec::new();
        for start in 0..=length - k {
            for code in 0..20usize.pow(k as u32) {
                let mut letters = vec![0usize; k];
                let mut c = code;
                for j in (0..k).rev() {
                    letters[j] = c % 20;
                    c /= 20;
                }
                let score: f32 = letters
                    .iter()
                    .enumerate()
                    .map(|(j, &a)| scores[(start + j) * 20 + a])
                    .sum();
                if score >= threshold {
                    out.push((code as u32, start as u16));
                }
            }
        }
        out
    }

    #[test]
    fn seeds_match_brute_force_enumeration() {
        // Pseudo-random scores, fixed: a small LCG so the test needs no crate.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) * 6.0 - 3.0
        };
        let length = 7;
        let scores: Vec<f32> = (0..length * 20).map(|_| next()).collect();
        let p = Profile {
            scores: &scores,
            length,
        };
        for (k, threshold) in [(3, 4.0f32), (3, 6.5), (4, 7.0), (4, 9.0)] {
            let (mut found, distinct) = model_seeds(&p, k, threshold);
            let mut expected = brute_force(&scores, length, k, threshold);
            found.sort_unstable();
            expected.sort_unstable();
            assert!(!expected.is_empty());
            assert_eq!(found, expected, "k {k}, threshold {threshold}");
            let mut codes: Vec<u32> = expected.iter().map(|&(c, _)| c).collect();
            codes.dedup();
            assert_eq!(distinct, codes.len() as u64);
            let index = SeedIndex::build(&[p], options(k, threshold, 5.0)).unwrap();
            assert_eq!(index.entries.len(), expected.len());
            assert_eq!(index.seeds, vec![distinct]);
        }
    }

    #[test]
    fn ungapped_extension_scores_by_hand() {
        // Favourite residues score 2, others -1: only an exact 3-mer reaches 6 (one mismatch
        // gives 2 + 2 - 1 = 3).
        let a = profile(b"MKVLAAGIRH", 2.0);
        let p = [Profile {
            scores: &a,
            length: 10,
        }];
        let wide = SeedIndex::build(&p, options(3, 6.0, 3.0)).unwrap();
        assert_eq!(wide.seeds, vec![8]);
        // States 0-9 against QQ[MKVLAWGIRH]QQ: 9 matches and one mismatch, 9 * 2 - 1 = 17,
        // the profile's end stopping the extension.
        let one: &[u8] = b"QQMKVLAWGIRHQQ";
        assert_eq!(wide.best_scores(&[one]), vec![(0, 0, 17.0)]);
        // With an x-drop of 0.5 the mismatch stops the right extension at MKVLA: 5 * 2 = 10.
        // The later seed GIR (states 6-8) extends right to H (+2) and stops left at W (-1):
        // GIRH, 8. The best stays 10.
        let narrow = SeedIndex::build(&p, options(3, 6.0, 0.5)).unwrap();
        assert_eq!(narrow.best_scores(&[one]), vec![(0, 0, 10.0)]);
        // States 1-7 matched (KVLAAGI), 7 * 2 = 14; the seeds after KVL lie inside that
        // extension and are not extended again.
        let two: &[u8] = b"KVLAAGIQ";
        assert_eq!(wide.best_scores(&[two]), vec![(0, 0, 14.0)]);
        // Lower case reads as upper case; X breaks seeds and extensions: MKVL scores 8, and
        // AGIRH (states 5-9) 10, not the 18 of one segment.
        let three: &[u8] = b"mkvlXagirh";
        assert_eq!(wide.best_scores(&[three]), vec![(0, 0, 10.0)]);
        let none: &[u8] = b"MKXVLXAG";
        assert!(wide.best_scores(&[none, b"", b"MK"]).is_empty());
    }

    #[test]
    fn candidates_are_the_pairs_reaching_the_minimum_score() {
        let a = profile(b"MKVLAAGIRH", 2.0);
        let b = profile(b"WWCCPPYYFF", 2.0);
        let index = SeedIndex::build(
            &[
                Profile {
                    scores: &a,
                    length: 10,
                },
                Profile {
                    scores: &b,
                    length: 10,
                },
            ],
            options(3, 6.0, 3.0),
        )
        .unwrap();
        let proteins: Vec<&[u8]> = vec![
            b"QQQMKVQQQ",        // model 0: 6
            b"QQMKVLAAGQQ",      // model 0: 7 matches, 14
            b"qqwwccppqq",       // model 1: 6 matches, 12
            b"WWCCQMKVLPPYYFFQ", // model 0: MKVL 8; model 1: WWCC 8, PPYYFF at states 4-9: 12
            b"ACDEFGHIKLMNPQRSTVWY",
        ];
        let best = index.best_scores(&proteins);
        assert_eq!(
            best,
            vec![
                (0, 0, 6.0),
                (1, 0, 14.0),
                (2, 1, 12.0),
                (3, 0, 8.0),
                (3, 1, 12.0)
            ]
        );
        assert_eq!(
            index.candidates(&proteins, 6.0).unwrap(),
            vec![vec![0, 1, 3], vec![2, 3]]
        );
        assert_eq!(
            index.candidates(&proteins, 9.0).unwrap(),
            vec![vec![1], vec![2, 3]]
        );
        assert_eq!(
            index.candidates(&proteins, 13.0).unwrap(),
            vec![vec![1], vec![]]
        );
    }

    #[test]
    fn same_candidates_with_any_thread_count() {
        let a = profile(b"ACDEFGHIKLMNPQRSTVWY", 3.0);
        let index = SeedIndex::build(
            &[Profile {
                scores: &a,
                length: 20,
            }],
            options(3, 5.0, 4.0),
        )
        .unwrap();
        // Pseudo-random proteins (a small LCG), every fifth holding a stretch of the profile.
        let mut state = 777u64;
        let proteins: Vec<Vec<u8>> = (0..500u32)
            .map(|i| {
                let mut protein: Vec<u8> = (0..60)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        AMINO_ACIDS[((state >> 33) % 20) as usize]
                    })
                    .collect();
                if i % 5 == 0 {
                    protein[10..16].copy_from_slice(b"GHIKLM");
                }
                protein
            })
            .collect();
        let slices: Vec<&[u8]> = proteins.iter().map(|p| p.as_slice()).collect();
        type Run = (Vec<Vec<u32>>, Vec<(u32, u32, f32)>);
        let runs: Vec<Run> = [1, 2, 3]
            .iter()
            .map(|&t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
                    .install(|| {
                        (
                            index.candidates(&slices, 7.0).unwrap(),
                            index.best_scores(&slices),
                        )
                    })
            })
            .collect();
        assert!(!runs[0].0[0].is_empty() && runs[0].0[0].len() < 500);
        assert_eq!(runs[0], runs[1]);
        assert_eq!(runs[0], runs[2]);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let a = profile(b"MKVL", 2.0);
        let p = [Profile {
            scores: &a,
            length: 4,
        }];
        assert!(SeedIndex::build(&p, options(2, 1.0, 5.0)).is_err());
        assert!(SeedIndex::build(&p, options(6, 1.0, 5.0)).is_err());
        assert!(SeedIndex::build(&p, options(3, f32::NAN, 5.0)).is_err());
        assert!(SeedIndex::build(&p, options(3, 1.0, 0.0)).is_err());
        assert!(SeedIndex::build(&[], options(3, 1.0, 5.0)).is_err());
        let short = [Profile {
            scores: &a[..20],
            length: 4,
        }];
        assert!(SeedIndex::build(&short, options(3, 1.0, 5.0)).is_err());
        let index = SeedIndex::build(&p, options(3, 1.0, 5.0)).unwrap();
        assert!(index.candidates(&[b"MKVL"], f32::INFINITY).is_err());
        // A profile shorter than k has no seeds.
        let tiny = [Profile {
            scores: &a[..40],
            length: 2,
        }];
        assert_eq!(
            SeedIndex::build(&tiny, options(3, 1.0, 5.0)).unwrap().seeds,
            vec![0]
        );
    }

    fn profiles() -> impl proptest::strategy::Strategy<Value = Vec<(Vec<f32>, usize)>> {
        use proptest::strategy::Strategy;
        let one = (2usize..40).prop_flat_map(|length| {
            proptest::collection::vec(-4.0f32..4.0, length * 20).prop_map(move |s| (s, length))
        });
        proptest::collection::vec(one, 1..4)
    }

    fn proteins() -> impl proptest::strategy::Strategy<Value = Vec<Vec<u8>>> {
        let letter = proptest::sample::select(b"ACDEFGHIKLMNPQRSTVWYacdwyXB*".to_vec());
        proptest::collection::vec(proptest::collection::vec(letter, 0..150), 0..12)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Candidates are exactly the pairs whose best score reaches the minimum; a protein
        /// scores the same alone as among others (the per-protein scratch is reset); and the
        /// thread count changes nothing.
        #[test]
        fn candidates_threshold_best_scores_protein_by_protein(
            profiles in profiles(),
            proteins in proteins(),
            k in MIN_K..=4usize,
            threshold in 2.0f32..9.0,
            x_drop in 1.0f32..12.0,
            window in 0usize..30,
            min_score in 0.0f32..20.0,
            threads in 1usize..3,
        ) {
            let views: Vec<Profile<'_>> = profiles
                .iter()
                .map(|(scores, length)| Profile { scores, length: *length })
                .collect();
            let index = SeedIndex::build(
                &views,
                SeedOptions { k, threshold, x_drop, window },
            )
            .unwrap();
            let slices: Vec<&[u8]> = proteins.iter().map(|p| p.as_slice()).collect();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (best, candidates) = pool.install(|| {
                (index.best_scores(&slices), index.candidates(&slices, min_score).unwrap())
            });
            let mut expected = vec![Vec::new(); views.len()];
            for &(p, m, score) in &best {
                proptest::prop_assert!(score.is_finite());
                if score >= min_score {
                    expected[m as usize].push(p);
                }
            }
            proptest::prop_assert_eq!(candidates, expected);
            let alone: Vec<(u32, u32, f32)> = slices
                .iter()
                .enumerate()
                .flat_map(|(p, protein)| {
                    index
                        .best_scores(&[protein])
                        .into_iter()
                        .map(move |(_, m, s)| (p as u32, m, s))
                })
                .collect();
            proptest::prop_assert_eq!(best, alone);
        }
    }
}
