//! Flat exemplar search: every stored embedding in one contiguous row-major matrix, scored by
//! dot product (the embeddings are unit length, so this is the cosine similarity). For a
//! package that compares by Euclidean distance (dlib's face descriptor, whose distances are
//! meant on the raw descriptors) the score is `1 - |a - b|² / 2`, from the same dot product and
//! each row's squared norm: the cosine for unit vectors, and in the same order as the distance
//! for any, so thresholds convert exactly ([`super::Metric`]).
//!
//! Flat search reads the whole matrix once per query, in order: the compiler vectorises the
//! dot products, and no index has to be kept in step with deletions and merges. `cargo bench
//! --bench gallery` measures it at 1k, 10k and 100k exemplars (see docs/reid.md). Above
//! `[gallery] hnsw_above` exemplars, [`FlatIndex::search`] asks an HNSW graph
//! ([`super::ann`]) for candidates and scores only those; `cargo bench --bench ann` measures
//! its recall against flat search on real embeddings.

use super::ann::GraphSlot;
use super::Metric;
use std::collections::HashMap;

/// When searches use the HNSW graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchPolicy {
    /// The graph is used once the index holds more exemplars than this; 0: never.
    pub hnsw_above: usize,
    /// Candidates the graph's search keeps per layer (HNSW's efSearch).
    pub ef: usize,
}

impl Default for SearchPolicy {
    fn default() -> Self {
        SearchPolicy {
            hnsw_above: 0,
            ef: 64,
        }
    }
}

/// Embeddings, one row per exemplar.
#[derive(Debug, Clone, Default)]
pub struct FlatIndex {
    dim: usize,
    metric: Metric,
    data: Vec<f32>,
    /// Half the squared norm of each row (Euclidean scores).
    half_norms: Vec<f32>,
    /// The identity each row belongs to.
    owners: Vec<i64>,
    /// The row's id in the gallery file.
    rows: Vec<i64>,
    /// Where each gallery row is.
    positions: HashMap<i64, usize>,
    policy: SearchPolicy,
    graph: GraphSlot,
}

/// The best-scoring exemplar of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub identity: i64,
    pub similarity: f32,
}

impl FlatIndex {
    pub fn new(dim: usize) -> Self {
        Self::with_metric(dim, Metric::Cosine)
    }

    pub fn with_metric(dim: usize, metric: Metric) -> Self {
        FlatIndex {
            dim,
            metric,
            ..FlatIndex::default()
        }
    }

    /// This index, searching through an HNSW graph as `policy` says ([`FlatIndex::search`]).
    pub fn searching(mut self, policy: SearchPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Changes the graph's efSearch (the benchmark compares values on one graph).
    pub fn set_ef(&mut self, ef: usize) {
        self.policy.ef = ef;
        self.graph.set_ef(ef);
    }

    /// How similar row `i` is to `query` (whose half squared norm is `half`).
    fn score(&self, i: usize, query: &[f32], half: f32) -> f32 {
        let d = dot(self.row(i), query);
        match self.metric {
            Metric::Cosine => d,
            Metric::Euclidean => 1.0 + d - self.half_norms[i] - half,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    pub fn push(&mut self, identity: i64, row: i64, embedding: &[f32]) {
        debug_assert_eq!(embedding.len(), self.dim);
        self.data.extend_from_slice(embedding);
        self.half_norms.push(dot(embedding, embedding) / 2.0);
        self.owners.push(identity);
        self.rows.push(row);
        self.positions.insert(row, self.owners.len() - 1);
        self.graph.insert(row, embedding);
    }

    /// The most similar exemplar, as [`FlatIndex::best`] finds it, or through the HNSW graph
    /// when the index is larger than the policy's `hnsw_above` and the graph is ready (it is
    /// built on a thread of its own when first needed, and again when worn by removals):
    /// approximate, then scored exactly.
    pub fn search(&mut self, query: &[f32]) -> Option<Hit> {
        self.search_with(query, false)
    }

    /// [`FlatIndex::search`], waiting for the graph when one is due (benchmarks, tests).
    pub fn search_with(&mut self, query: &[f32], wait_for_graph: bool) -> Option<Hit> {
        let above = self.policy.hnsw_above;
        if above == 0 || self.len() <= above {
            // Back under the threshold: the graph's memory is given back.
            self.graph.clear();
            return self.best(query);
        }
        let (data, dim) = (&self.data, self.dim);
        let row = |i: usize| &data[i * dim..(i + 1) * dim];
        let Some(graph) = (self.graph).current(&self.rows, row, self.policy.ef, wait_for_graph)
        else {
            return self.best(query);
        };
        let half = dot(query, query) / 2.0;
        let hit = (graph.candidates(query).into_iter())
            .filter_map(|row| self.positions.get(&row).copied())
            .map(|i| Hit {
                identity: self.owners[i],
                similarity: self.score(i, query, half),
            })
            .max_by(|a, b| a.similarity.total_cmp(&b.similarity));
        hit.or_else(|| self.best(query))
    }

    /// The most similar exemplar, and so the most similar identity (an identity's similarity is
    /// that of its closest exemplar).
    pub fn best(&self, query: &[f32]) -> Option<Hit> {
        let mut best: Option<Hit> = None;
        let half = dot(query, query) / 2.0;
        for i in 0..self.owners.len() {
            let similarity = self.score(i, query, half);
            if best.is_none_or(|b| similarity > b.similarity) {
                best = Some(Hit {
                    identity: self.owners[i],
                    similarity,
                });
            }
        }
        best
    }

    /// How many exemplars `identity` has.
    pub fn count(&self, identity: i64) -> usize {
        self.owners.iter().filter(|o| **o == identity).count()
    }

    /// The gallery row of the exemplar of `identity` that adds least: the one closest to
    /// another exemplar of the same identity.
    pub fn most_redundant(&self, identity: i64) -> Option<i64> {
        let mine: Vec<usize> = self.positions(identity).collect();
        mine.iter()
            .map(|&i| {
                let closest = mine
                    .iter()
                    .filter(|&&j| j != i)
                    .map(|&j| self.score(i, self.row(j), self.half_norms[j]))
                    .fold(f32::NEG_INFINITY, f32::max);
                (self.rows[i], closest)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(row, _)| row)
    }

    /// Removes the exemplar stored as gallery row `row`.
    pub fn remove_row(&mut self, row: i64) {
        if let Some(i) = self.positions.get(&row).copied() {
            self.swap_remove(i);
        }
    }

    /// Removes every exemplar of `identity`.
    pub fn remove_identity(&mut self, identity: i64) {
        let mut i = 0;
        while i < self.owners.len() {
            if self.owners[i] == identity {
                self.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Brings the rows in step with `stored` (gallery row -> its identity now): rows that are
    /// gone are removed, rows that moved to another identity (a merge) follow it. Returns the
    /// stored rows the index lacks, to be read and pushed.
    pub fn sync_rows(&mut self, stored: &std::collections::HashMap<i64, i64>) -> Vec<i64> {
        let mut i = 0;
        while i < self.rows.len() {
            match stored.get(&self.rows[i]) {
                None => self.swap_remove(i),
                Some(owner) => {
                    self.owners[i] = *owner;
                    i += 1;
                }
            }
        }
        let held: std::collections::HashSet<i64> = self.rows.iter().copied().collect();
        let mut missing: Vec<i64> = stored
            .keys()
            .filter(|r| !held.contains(r))
            .copied()
            .collect();
        missing.sort_unstable();
        missing
    }

    /// The first `limit` exemplars of each identity, as (gallery row, position), in one pass.
    pub fn rows_by_owner(&self, limit: usize) -> std::collections::HashMap<i64, Vec<(i64, usize)>> {
        let mut out: std::collections::HashMap<i64, Vec<(i64, usize)>> = Default::default();
        for (i, (owner, row)) in self.owners.iter().zip(&self.rows).enumerate() {
            let mine = out.entry(*owner).or_default();
            if mine.len() < limit {
                mine.push((*row, i));
            }
        }
        out
    }

    /// The embedding at `position` (from [`FlatIndex::rows_by_owner`]).
    pub fn embedding_at(&self, position: usize) -> &[f32] {
        self.row(position)
    }

    /// Gives every exemplar of `from` to `to`.
    pub fn reassign(&mut self, from: i64, to: i64) {
        for owner in &mut self.owners {
            if *owner == from {
                *owner = to;
            }
        }
    }

    /// The exemplars of `identity`.
    pub fn embeddings(&self, identity: i64) -> impl Iterator<Item = &[f32]> {
        self.positions(identity).map(|i| self.row(i))
    }

    fn positions(&self, identity: i64) -> impl Iterator<Item = usize> + '_ {
        self.owners
            .iter()
            .enumerate()
            .filter(move |(_, o)| **o == identity)
            .map(|(i, _)| i)
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    fn swap_remove(&mut self, i: usize) {
        let last = self.owners.len() - 1;
        if i != last {
            let (head, tail) = self.data.split_at_mut(last * self.dim);
            head[i * self.dim..(i + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
        }
        self.data.truncate(last * self.dim);
        self.half_norms.swap_remove(i);
        self.owners.swap_remove(i);
        let gone = self.rows.swap_remove(i);
        self.positions.remove(&gone);
        if let Some(moved) = self.rows.get(i) {
            self.positions.insert(*moved, i);
        }
        self.graph.remove(gone);
    }
}

/// The dot product, in eight independent lanes so that the compiler keeps it in SIMD
/// registers (a single running sum would force one addition after another).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_rest) = b.split_at(a8.len().min(b.len()));
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// An embedding as stored in the gallery file: little-endian f32s.
pub fn to_blob(embedding: &[f32]) -> Vec<u8> {
    embedding.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The embedding of a stored blob; `None` when its size is not `dim` numbers.
pub fn from_blob(blob: &[u8], dim: usize) -> Option<Vec<f32>> {
    if blob.len() != dim * 4 {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for len in 0..40 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "length {len}");
        }
    }

    #[test]
    fn best_finds_the_closest_identity_and_removal_keeps_rows_aligned() {
        let mut index = FlatIndex::new(3);
        index.push(1, 10, &unit(&[1.0, 0.0, 0.0]));
        index.push(2, 20, &unit(&[0.0, 1.0, 0.0]));
        index.push(1, 11, &unit(&[1.0, 0.1, 0.0]));
        index.push(3, 30, &unit(&[0.0, 0.0, 1.0]));
        let hit = index.best(&unit(&[0.1, 1.0, 0.0])).unwrap();
        assert_eq!(hit.identity, 2);
        index.remove_identity(2);
        assert_eq!(index.len(), 3);
        assert_eq!(index.best(&unit(&[0.1, 1.0, 0.0])).unwrap().identity, 1);
        assert_eq!(index.count(1), 2);
        index.remove_row(10);
        assert_eq!(index.count(1), 1);
        let left: Vec<&[f32]> = index.embeddings(1).collect();
        assert!((left[0][1] - unit(&[1.0, 0.1, 0.0])[1]).abs() < 1e-7);
        index.reassign(3, 1);
        assert_eq!(index.count(1), 2);
    }

    #[test]
    fn the_most_redundant_exemplar_is_the_one_with_a_near_twin() {
        let mut index = FlatIndex::new(2);
        index.push(1, 1, &unit(&[1.0, 0.0]));
        index.push(1, 2, &unit(&[0.0, 1.0]));
        index.push(1, 3, &unit(&[1.0, 0.05]));
        let evicted = index.most_redundant(1).unwrap();
        assert!(evicted == 1 || evicted == 3, "{evicted}");
    }

    /// Deterministic unit vectors.
    fn vectors(count: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % 2001) as f32 / 1000.0 - 1.0
                    })
                    .collect();
                unit(&v)
            })
            .collect()
    }

    /// Above the threshold the graph proposes, flat scoring decides: on near copies of stored
    /// rows it finds the row flat search finds, with the same similarity; removed rows are
    /// never proposed, and a graph worn by removals is built again.
    #[test]
    fn the_graph_finds_what_flat_search_finds_and_never_a_removed_row() {
        let rows = vectors(3000, 32, 7);
        let policy = SearchPolicy {
            hnsw_above: 1000,
            ef: 64,
        };
        let mut index = FlatIndex::new(32).searching(policy);
        for (i, v) in rows.iter().enumerate() {
            index.push(i as i64, i as i64 + 1, v);
        }
        let noise = vectors(200, 32, 99);
        let queries: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                unit(
                    &(rows[i * 7].iter().zip(&noise[i]))
                        .map(|(a, b)| a + 0.1 * b)
                        .collect::<Vec<f32>>(),
                )
            })
            .collect();
        let agree = |index: &mut FlatIndex| {
            (queries.iter())
                .filter(|q| {
                    let exact = index.best(q).unwrap();
                    index.search_with(q, true) == Some(exact)
                })
                .count()
        };
        // The graph is built on its own thread: searches meanwhile are flat, and what changes
        // meanwhile reaches the graph once it is taken.
        assert_eq!(index.search(&queries[1]), index.best(&queries[1]));
        let added = vectors(1, 32, 1234).remove(0);
        index.push(99_999, 5_000, &added);
        index.remove_row(8);
        let hit = index.search_with(&added, true).unwrap();
        assert!(index.graph.is_ready());
        assert_eq!(
            hit.identity, 99_999,
            "a row added during the build is found"
        );
        assert!((hit.similarity - 1.0).abs() < 1e-5);
        assert_ne!(
            index.search(&queries[1]).unwrap().identity,
            7,
            "removed during the build"
        );
        assert!(agree(&mut index) >= 196, "recall below 98%");
        assert!(
            index.graph.is_ready(),
            "above the threshold a graph is built"
        );
        // Remove the exemplars the queries were made from: never found again.
        for i in 0..200 {
            index.remove_row(i as i64 * 7 + 1);
        }
        for q in &queries {
            let hit = index.search(q).unwrap();
            assert!(
                hit.identity % 7 != 0 || hit.identity >= 1400,
                "{hit:?} was removed"
            );
        }
        assert!(agree(&mut index) >= 190);
        // Most rows gone: the graph is worn, built again from what is left, and still agrees.
        for row in 1..=1600 {
            index.remove_row(row);
        }
        assert!(index.graph.ready().unwrap().worn());
        assert!(agree(&mut index) >= 190);
        assert!(!index.graph.ready().unwrap().worn(), "rebuilt");
        // Below the threshold again: flat search, the graph's memory given back.
        for row in 1601..=2600 {
            index.remove_row(row);
        }
        assert!(index.len() < 1000);
        index.search(&queries[0]);
        assert!(!index.graph.is_ready());
    }

    /// Row positions stay right through removals in any order (the graph maps rows back).
    #[test]
    fn rows_are_found_by_id_after_removals() {
        let rows = vectors(50, 8, 3);
        let mut index = FlatIndex::new(8);
        for (i, v) in rows.iter().enumerate() {
            index.push(i as i64 % 5, i as i64 + 100, v);
        }
        for row in [100, 149, 120, 121, 148] {
            index.remove_row(row);
        }
        index.remove_identity(3);
        for (row, at) in &index.positions {
            assert_eq!(index.rows[*at], *row);
        }
        assert_eq!(index.positions.len(), index.len());
        assert_eq!(index.len(), 50 - 5 - 9);
    }

    #[test]
    fn blobs_round_trip_and_a_short_blob_is_refused() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(from_blob(&to_blob(&v), 3), Some(v));
        assert_eq!(from_blob(&[0u8; 11], 3), None);
    }

    /// With a Euclidean package the nearest row wins even where the cosine says otherwise
    /// (raw descriptors of different lengths), and the score gives the distance back.
    #[test]
    fn euclidean_scores_follow_the_raw_distance() {
        let mut index = FlatIndex::with_metric(2, Metric::Euclidean);
        // Row 1 points the query's way but is far; row 2 is off by an angle but near.
        index.push(1, 10, &[3.0, 0.0]);
        index.push(2, 20, &[1.0, 0.3]);
        let hit = index.best(&[1.0, 0.0]).unwrap();
        assert_eq!(hit.identity, 2);
        let distance = Metric::Euclidean.from_similarity(hit.similarity);
        assert!((distance - 0.3).abs() < 1e-5, "{distance}");
        index.remove_row(20);
        let hit = index.best(&[1.0, 0.0]).unwrap();
        assert!((Metric::Euclidean.from_similarity(hit.similarity) - 2.0).abs() < 1e-5);
    }
}
