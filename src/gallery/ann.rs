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
//!
//! A graph is built on a thread of its own ([`GraphSlot`]): building takes seconds to minutes
//! (`cargo bench --bench ann`), and the capture loop must not wait for it; searches stay flat
//! (exact) until it is ready, and what changed meanwhile is applied to it then.

use hnsw_rs::prelude::{DistL2, Hnsw};
use std::collections::HashSet;
use std::thread::JoinHandle;

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

/// A graph being built: the rows it was built from, and the thread building it.
struct Building {
    rows: HashSet<i64>,
    thread: JoinHandle<Graph>,
}

/// The graph of one index: ready, being built, or neither. A clone of the index builds its
/// own when it needs one.
#[derive(Default)]
pub struct GraphSlot {
    ready: Option<Graph>,
    building: Option<Building>,
    /// A build failed (its thread panicked): searches stay flat, said once.
    failed: bool,
}

impl Clone for GraphSlot {
    fn clone(&self) -> Self {
        GraphSlot::default()
    }
}

impl std::fmt::Debug for GraphSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSlot")
            .field("ready", &self.ready)
            .field("building", &self.building.is_some())
            .finish()
    }
}

impl GraphSlot {
    /// Gives the graph's memory back (the index fell under the threshold). A build in flight
    /// finishes on its own and is dropped.
    pub fn clear(&mut self) {
        self.ready = None;
        self.building = None;
    }

    pub fn is_ready(&self) -> bool {
        self.ready.is_some()
    }

    pub fn ready(&self) -> Option<&Graph> {
        self.ready.as_ref()
    }

    pub fn insert(&mut self, row: i64, embedding: &[f32]) {
        if let Some(graph) = &mut self.ready {
            graph.insert(row, embedding);
        }
    }

    pub fn remove(&mut self, row: i64) {
        if let Some(graph) = &mut self.ready {
            graph.remove(row);
        }
    }

    pub fn set_ef(&mut self, ef: usize) {
        if let Some(graph) = &mut self.ready {
            graph.set_ef(ef);
        }
    }

    /// The graph to search now, if one is ready. Starts a build when there is none (or it is
    /// worn), takes a finished one (`wait`: waits for it) and brings it up to the index's
    /// `rows` (`embedding(i)` is row `i`'s) by inserting what was added and removing what went
    /// while it was built.
    pub fn current<'a>(
        &mut self,
        rows: &[i64],
        embedding: impl Fn(usize) -> &'a [f32],
        ef: usize,
        wait: bool,
    ) -> Option<&Graph> {
        if self.failed {
            return None;
        }
        if self.ready.as_ref().is_none_or(Graph::worn) && self.building.is_none() {
            let snapshot: Vec<(i64, Vec<f32>)> = (rows.iter().enumerate())
                .map(|(i, row)| (*row, embedding(i).to_vec()))
                .collect();
            let built_from = rows.iter().copied().collect();
            let thread = std::thread::Builder::new()
                .name("gallery-index".into())
                .spawn(move || {
                    let rows = snapshot.iter().map(|(row, v)| (*row, v.as_slice()));
                    Graph::build(rows, ef)
                });
            match thread {
                Ok(thread) => {
                    self.building = Some(Building {
                        rows: built_from,
                        thread,
                    })
                }
                Err(e) => {
                    log::warn!(
                        "gallery: cannot start the index's thread ({e}); searches stay flat"
                    );
                    self.failed = true;
                }
            }
        }
        let finished = (self.building.as_ref()).is_some_and(|b| wait || b.thread.is_finished());
        if let Some(building) = self.building.take_if(|_| finished) {
            match building.thread.join() {
                Ok(mut graph) => {
                    let now: HashSet<i64> = rows.iter().copied().collect();
                    for (i, row) in rows.iter().enumerate() {
                        if !building.rows.contains(row) {
                            graph.insert(*row, embedding(i));
                        }
                    }
                    for row in building.rows.difference(&now) {
                        graph.remove(*row);
                    }
                    graph.set_ef(ef);
                    log::info!(
                        "gallery: the approximate index over {} exemplars is ready",
                        rows.len()
                    );
                    self.ready = Some(graph);
                }
                Err(_) => {
                    log::warn!(
                        "gallery: building the approximate index failed; searches stay flat"
                    );
                    self.failed = true;
                }
            }
        }
        self.ready.as_ref()
    }
}
