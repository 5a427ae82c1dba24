//! The approximate index used beside the flat matrix once a gallery holds many exemplars: an
//! HNSW graph (Malkov & Yashunin, from the `hnsw_rs` crate) over the same embeddings, keyed by
//! gallery row. It only proposes candidates: [`super::FlatIndex`] scores them exactly, so a
//! match's similarity is the same number flat search gives, and an approximate search can only
//! miss the best exemplar (recall), never report a wrong score.
//!
//! HNSW cannot delete: an exemplar removed from the gallery (forgotten, expired, evicted) is
//! left in the graph and filtered out of every search, and the graph is built again once the
//! removed outnumber the live ([`Graph::worn`]). A merge moves rows to another identity, which
//! the flat index's owners follow: the graph, keyed by row, is not touched.

use hnsw_rs::prelude::{DistL2, Hnsw};
use std::collections::HashSet;

/// Links per node (HNSW's M): 16 is the paper's and the crate's usual value for a few hundred
/// dimensions.
const LINKS: usize = 16;
/// Candidates considered while inserting (efConstruction).
const EF_CONSTRUCTION: usize = 200;
/// Layers at most (the crate's limit is 16).
const LAYERS: usize = 16;
/// Exemplars proposed to the exact scoring per search.
pub const CANDIDATES: usize = 10;

/// The HNSW graph over a gallery's exemplars.
pub struct Graph {
    hnsw: Hnsw<'static, f32, DistL2>,
    /// Rows inserted and since removed from the gallery.
    removed: HashSet<usize>,
    inserted: usize,
    ef: usize,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("inserted", &self.inserted)
            .field("removed", &self.removed.len())
            .field("ef", &self.ef)
            .finish()
    }
}

impl Graph {
    /// A graph of `rows` (gallery row, embedding), built on every core (rayon), searched with
    /// `ef` candidates per layer.
    pub fn build<'a>(rows: impl Iterator<Item = (i64, &'a [f32])>, ef: usize) -> Self {
        let rows: Vec<(&[f32], usize)> = rows.map(|(row, v)| (v, key(row))).collect();
        let hnsw = Hnsw::new(
            LINKS,
            rows.len().max(1024),
            LAYERS,
            EF_CONSTRUCTION,
            DistL2 {},
        );
        hnsw.parallel_insert_slice(&rows);
        Graph {
            hnsw,
            removed: HashSet::new(),
            inserted: rows.len(),
            ef,
        }
    }

    pub fn insert(&mut self, row: i64, embedding: &[f32]) {
        self.hnsw.insert_slice((embedding, key(row)));
        self.inserted += 1;
    }

    pub fn set_ef(&mut self, ef: usize) {
        self.ef = ef;
    }

    pub fn remove(&mut self, row: i64) {
        self.removed.insert(key(row));
    }

    /// Whether removed rows outnumber the live ones: searches then wade through the dead, and
    /// the graph should be built again.
    pub fn worn(&self) -> bool {
        self.removed.len() * 2 > self.inserted
    }

    /// The gallery rows of the exemplars nearest `query` (Euclidean, which for unit vectors
    /// orders as the cosine), nearest first.
    pub fn candidates(&self, query: &[f32]) -> Vec<i64> {
        let live = |id: &usize| !self.removed.contains(id);
        let ef = self.ef.max(CANDIDATES);
        let found = if self.removed.is_empty() {
            self.hnsw.search(query, CANDIDATES, ef)
        } else {
            self.hnsw.search_filter(query, CANDIDATES, ef, Some(&live))
        };
        found.into_iter().map(|n| n.d_id as i64).collect()
    }
}

/// A gallery row as the graph's data id (rows are positive SQLite ids).
fn key(row: i64) -> usize {
    usize::try_from(row).unwrap_or(usize::MAX)
}
