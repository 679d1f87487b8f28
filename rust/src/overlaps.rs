//! Which long reads overlap which: a read graph from shared sampled k-mers.
//!
//! A read's own features are noisy in two ways no per-read estimator can fix: its composition
//! comes from a few kbp with 5-15 % errors, and its k-mer abundance is the coverage of its own
//! locus, which scatters like a Poisson draw around the genome's depth. Reads that overlap come
//! from the same locus of the same genome, so averaging a read's features with its overlapping
//! reads' (`vaebin.reads`) gives each read the features of a longer stretch and a better
//! abundance, as an assembly would, without assembling.
//!
//! Two reads overlap when they share at least `min_shared` of the k-mers kept for the graph: a
//! further 1 in `graph_sampling` of the k-mers already sampled for the abundance tables (by the
//! low bits of their slots, which are uniform). Two reads with 8 % errors share an error-free
//! k-mer at about (0.92^15)^2 = 8 % of their overlap's positions, so a 5 kbp overlap shares
//! about 13 k-mers at a total sampling of 1 in 32, while a read's k-mers meet another given
//! read by chance (an erroneous k-mer that another read's error happens to make) far less than
//! once. A k-mer held by more than `max_group` reads is left out: it lies in a repeat (rRNA
//! operons, transposases, strain-shared islands) and would link reads of different loci. Each
//! read keeps its `max_neighbours` neighbours sharing the most k-mers (ties to the lower read
//! index), so the graph's size is bounded and independent of the thread count.

use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlapOptions {
    /// Keep 1 in this many of the already sampled k-mers for the graph: a power of two.
    pub graph_sampling: u32,
    /// Shared graph k-mers that make two reads neighbours.
    pub min_shared: u32,
    /// k-mers held by more reads than this are repeats and link nothing.
    pub max_group: u32,
    /// Neighbours kept per read (those sharing the most k-mers).
    pub max_neighbours: u32,
}

impl Default for OverlapOptions {
    fn default() -> Self {
        OverlapOptions {
            graph_sampling: 4,
            min_shared: 3,
            max_group: 64,
            max_neighbours: 16,
        }
    }
}

impl OverlapOptions {
    pub fn check(&self) -> Result<(), String> {
        if !self.graph_sampling.is_power_of_two() || self.graph_sampling > 1024 {
            return Err(format!(
                "graph k-mer sampling must be a power of two up to 1024, got {}",
                self.graph_sampling
            ));
        }
        if self.min_shared == 0 {
            return Err("graph: at least one shared k-mer must make an overlap".to_string());
        }
        if self.max_group < 2 {
            return Err(format!(
                "graph: the largest k-mer group must be at least 2 reads, got {}",
                self.max_group
            ));
        }
        Ok(())
    }
}

/// Neighbours of every read in compressed rows: read `r`'s are `neighbours[offsets[r] ..
/// offsets[r + 1]]`, most shared k-mers first, with `shared` beside them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OverlapGraph {
    pub offsets: Vec<u64>,
    pub neighbours: Vec<u32>,
    pub shared: Vec<u32>,
}

impl OverlapGraph {
    pub fn reads(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn neighbours_of(&self, read: usize) -> (&[u32], &[u32]) {
        let range = self.offsets[read] as usize..self.offsets[read + 1] as usize;
        (&self.neighbours[range.clone()], &self.shared[range])
    }
}

/// The overlap graph of reads given by their sampled k-mer slots (`reads[r]` is read r's).
/// Run it inside the thread pool that should do the work.
pub fn overlap_graph(reads: &[&[u32]], options: &OverlapOptions) -> OverlapGraph {
    let keep_mask = options.graph_sampling - 1;
    let kept = |slot: u32| slot & keep_mask == 0;
    // (slot, read) of every kept k-mer, each once per read, sorted: runs of one slot are the
    // reads that hold it.
    let mut pairs: Vec<u64> = reads
        .par_iter()
        .enumerate()
        .fold(Vec::new, |mut out, (read, slots)| {
            let start = out.len();
            out.extend(
                slots
                    .iter()
                    .filter(|&&s| kept(s))
                    .map(|&s| (u64::from(s) << 32) | read as u64),
            );
            out[start..].sort_unstable();
            let mut last = u64::MAX;
            let mut write = start;
            for i in start..out.len() {
                if out[i] != last {
                    last = out[i];
                    out[write] = last;
                    write += 1;
                }
            }
            out.truncate(write);
            out
        })
        .reduce(Vec::new, |mut a, mut b| {
            if a.len() < b.len() {
                std::mem::swap(&mut a, &mut b);
            }
            a.extend_from_slice(&b);
            a
        });
    pairs.par_sort_unstable();
    // Groups of 2..=max_group reads holding one k-mer, and for every read the groups it is in
    // (compressed rows built by counting, so no lookup per k-mer is needed).
    let n = reads.len();
    let mut members: Vec<u32> = Vec::new();
    let mut group_ends: Vec<usize> = Vec::new();
    let mut groups_per_read = vec![0usize; n + 1];
    let mut start = 0;
    while start < pairs.len() {
        let slot = pairs[start] >> 32;
        let mut end = start + 1;
        while end < pairs.len() && pairs[end] >> 32 == slot {
            end += 1;
        }
        let size = end - start;
        if size >= 2 && size <= options.max_group as usize {
            for &pair in &pairs[start..end] {
                members.push(pair as u32);
                groups_per_read[pair as u32 as usize + 1] += 1;
            }
            group_ends.push(members.len());
        }
        start = end;
    }
    drop(pairs);
    // Every read's entries: where it sits in each of its groups and where that group ends.
    // Members of a group are in read order, so the members after a read's entry are the
    // reads of higher index: each pair of reads is counted once, from its lower read.
    // (Positions are u32: 4 G k-mer occurrences are some 100 Gbp of reads, past the tables.)
    assert!(
        members.len() < u32::MAX as usize,
        "overlap graph: too many k-mer occurrences"
    );
    for r in 0..n {
        groups_per_read[r + 1] += groups_per_read[r];
    }
    let mut fill = groups_per_read.clone();
    let mut entries = vec![(0u32, 0u32); members.len()];
    let mut begin = 0;
    for &end in &group_ends {
        for (position, &read) in members[begin..end].iter().enumerate() {
            entries[fill[read as usize]] = ((begin + position) as u32, end as u32);
            fill[read as usize] += 1;
        }
        begin = end;
    }
    drop(fill);
    drop(group_ends);
    // Pairs (read, other > read) sharing at least min_shared k-mers.
    let upper: Vec<Vec<(u32, u32)>> = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0u32; n], Vec::<u32>::new()),
            |(counts, touched), read| {
                for &(position, end) in &entries[groups_per_read[read]..groups_per_read[read + 1]] {
                    for &other in &members[position as usize + 1..end as usize] {
                        let count = &mut counts[other as usize];
                        if *count == 0 {
                            touched.push(other);
                        }
                        *count += 1;
                    }
                }
                let found: Vec<(u32, u32)> = touched
                    .iter()
                    .filter(|&&o| counts[o as usize] >= options.min_shared)
                    .map(|&o| (o, counts[o as usize]))
                    .collect();
                for &o in touched.iter() {
                    counts[o as usize] = 0;
                }
                touched.clear();
                found
            },
        )
        .collect();
    drop(entries);
    drop(members);
    // Both directions of every pair in compressed rows, then each read's strongest overlaps
    // (most shared k-mers, ties to the lower read index).
    let mut both_offsets = vec![0usize; n + 1];
    for (read, found) in upper.iter().enumerate() {
        both_offsets[read + 1] += found.len();
        for &(other, _) in found {
            both_offsets[other as usize + 1] += 1;
        }
    }
    for r in 0..n {
        both_offsets[r + 1] += both_offsets[r];
    }
    let mut fill = both_offsets.clone();
    let mut both = vec![(0u32, 0u32); both_offsets[n]];
    for (read, found) in upper.iter().enumerate() {
        for &(other, count) in found {
            both[fill[read]] = (other, count);
            fill[read] += 1;
            both[fill[other as usize]] = (read as u32, count);
            fill[other as usize] += 1;
        }
    }
    drop(fill);
    drop(upper);
    let per_read: Vec<Vec<(u32, u32)>> = (0..n)
        .into_par_iter()
        .map(|read| {
            let mut found = both[both_offsets[read]..both_offsets[read + 1]].to_vec();
            let order = |a: &(u32, u32), b: &(u32, u32)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
            let keep = options.max_neighbours as usize;
            if found.len() > keep && keep > 0 {
                found.select_nth_unstable_by(keep - 1, order);
            }
            found.truncate(keep);
            found.sort_unstable_by(order);
            found
        })
        .collect();
    drop(both);
    let mut graph = OverlapGraph {
        offsets: Vec::with_capacity(n + 1),
        neighbours: Vec::new(),
        shared: Vec::new(),
    };
    graph.offsets.push(0);
    for found in per_read {
        graph.neighbours.extend(found.iter().map(|p| p.0));
        graph.shared.extend(found.iter().map(|p| p.1));
        graph.offsets.push(graph.neighbours.len() as u64);
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Every pair of reads sharing at least `min_shared` kept slots, counted naively.
    fn naive(reads: &[Vec<u32>], options: &OverlapOptions) -> Vec<Vec<(u32, u32)>> {
        let kept = |s: u32| s.is_multiple_of(options.graph_sampling);
        let sets: Vec<BTreeSet<u32>> = reads
            .iter()
            .map(|r| r.iter().copied().filter(|&s| kept(s)).collect())
            .collect();
        let mut holders: BTreeMap<u32, usize> = BTreeMap::new();
        for set in &sets {
            for &s in set {
                *holders.entry(s).or_default() += 1;
            }
        }
        (0..reads.len())
            .map(|r| {
                let mut found: Vec<(u32, u32)> = (0..reads.len())
                    .filter(|&o| o != r)
                    .map(|o| {
                        let shared = sets[r]
                            .intersection(&sets[o])
                            .filter(|s| holders[s] <= options.max_group as usize)
                            .count() as u32;
                        (o as u32, shared)
                    })
                    .filter(|&(_, c)| c >= options.min_shared)
                    .collect();
                found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                found.truncate(options.max_neighbours as usize);
                found
            })
            .collect()
    }

    fn check(reads: &[Vec<u32>], options: &OverlapOptions) {
        let slices: Vec<&[u32]> = reads.iter().map(|r| r.as_slice()).collect();
        let graph = overlap_graph(&slices, options);
        let expected = naive(reads, options);
        assert_eq!(graph.reads(), reads.len());
        for (r, want) in expected.iter().enumerate() {
            let (neighbours, shared) = graph.neighbours_of(r);
            let got: Vec<(u32, u32)> = neighbours
                .iter()
                .copied()
                .zip(shared.iter().copied())
                .collect();
            assert_eq!(&got, want, "read {r}");
        }
    }

    #[test]
    fn tiling_reads_link_to_the_reads_they_overlap() {
        // Reads tiling a "genome" of slots 0..400, each 100 long starting every 40: a read
        // overlaps its neighbours by 60 and 20, and the reads two apart not at all.
        let genome: Vec<u32> = (0..400).map(|i| i * 7919 % 100_003).collect();
        let reads: Vec<Vec<u32>> = (0..8)
            .map(|r| genome[r * 40..(r * 40 + 100).min(400)].to_vec())
            .collect();
        let options = OverlapOptions {
            graph_sampling: 1,
            min_shared: 10,
            max_group: 64,
            max_neighbours: 16,
        };
        check(&reads, &options);
        let slices: Vec<&[u32]> = reads.iter().map(|r| r.as_slice()).collect();
        let graph = overlap_graph(&slices, &options);
        let (neighbours, shared) = graph.neighbours_of(3);
        assert_eq!(neighbours, &[2, 4, 1, 5]);
        assert_eq!(shared, &[60, 60, 20, 20]);
    }

    #[test]
    fn sampling_repeats_caps_and_duplicates_match_a_naive_count() {
        // Random reads over a small slot alphabet: many shared slots, repeated slots within a
        // read, and slots held by many reads.
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let reads: Vec<Vec<u32>> = (0..60)
            .map(|_| {
                let len = (next() % 200) as usize;
                (0..len).map(|_| (next() % 600) as u32).collect()
            })
            .collect();
        for (graph_sampling, min_shared, max_group, max_neighbours) in
            [(1, 1, 64, 100), (2, 3, 10, 5), (4, 2, 3, 8), (1, 5, 2, 3)]
        {
            let options = OverlapOptions {
                graph_sampling,
                min_shared,
                max_group,
                max_neighbours,
            };
            check(&reads, &options);
        }
    }

    #[test]
    fn slots_across_the_whole_table_are_grouped_as_a_naive_count() {
        // Shared slots at both ends of a 2^22-slot table and around its middle, with read lists
        // of one slot, none and many: the (slot, read) keys and their order hold at any slot.
        let top = (1u32 << 22) - 1;
        let shared = [
            0u32,
            4,
            top - 3,
            top,
            1 << 21,
            (1 << 21) - 4,
            99_996,
            3_000_000,
        ];
        let mut reads: Vec<Vec<u32>> = Vec::new();
        for r in 0..40u32 {
            let mut read: Vec<u32> = shared
                .iter()
                .copied()
                .filter(|s| (s / 4 + r) % 3 != 0)
                .collect();
            read.extend((0..r).map(|i| (i * 2_654_435_761u32.wrapping_mul(r + 1)) & top));
            reads.push(read);
        }
        reads.push(Vec::new());
        reads.push(vec![top]);
        for (graph_sampling, min_shared) in [(1, 1), (4, 2), (2, 3)] {
            let options = OverlapOptions {
                graph_sampling,
                min_shared,
                max_group: 64,
                max_neighbours: 12,
            };
            check(&reads, &options);
        }
    }

    #[test]
    fn thread_count_does_not_change_the_graph() {
        let reads: Vec<Vec<u32>> = (0..300u32)
            .map(|r| (0..150u32).map(|i| (r * 37 + i * 11) % 2000).collect())
            .collect();
        let slices: Vec<&[u32]> = reads.iter().map(|r| r.as_slice()).collect();
        let options = OverlapOptions::default();
        let graphs: Vec<OverlapGraph> = [1, 2, 3]
            .iter()
            .map(|&threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| overlap_graph(&slices, &options))
            })
            .collect();
        assert!(graphs[0].neighbours.len() > 300);
        assert_eq!(graphs[0], graphs[1]);
        assert_eq!(graphs[0], graphs[2]);
    }

    #[test]
    fn options_are_checked() {
        let bad = |o: OverlapOptions| o.check().unwrap_err();
        let base = OverlapOptions::default();
        assert!(bad(OverlapOptions {
            graph_sampling: 3,
            ..base
        })
        .contains("power of two"));
        assert!(bad(OverlapOptions {
            min_shared: 0,
            ..base
        })
        .contains("shared"));
        assert!(bad(OverlapOptions {
            max_group: 1,
            ..base
        })
        .contains("at least 2"));
        assert!(base.check().is_ok());
    }
}
