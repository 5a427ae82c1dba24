//! edgevit: fine-grained recognition and re-identification with Vision Transformers on edge boards.
//!
//! Frames flow one way through the stages, each behind a small trait:
//! [`source`] -> [`preprocess`] -> [`detect`] / [`track`] -> [`backend`] -> [`interpret`] -> [`sink`].
//! [`model`] describes a model package (manifest, labels, self-test) that the
//! preprocessing, backend and interpretation stages are configured from, and
//! [`pipeline`] wires the stages into the capture loop.

pub mod backend;
pub mod backoff;
pub mod bench;
pub mod config_parse;
pub mod detect;
pub mod error;
pub mod frame;
pub mod gallery;
pub mod gpio;
pub mod interpret;
pub mod memory;
pub mod model;
pub mod numbers;
pub mod pipeline;
pub mod preprocess;
pub mod service;
pub mod sink;
pub mod source;
pub mod sync;
pub mod tensor;
pub mod track;
pub mod web;
