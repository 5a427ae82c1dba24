//! Buffers of prepared frames handed back once inference is done with them, so that the
//! model-sized tensor and raster are allocated for the first frames only, not for every frame.
//! The preprocessor and the workers that finish its frames (on other threads) share one.

use super::Prepared;
use std::sync::{Arc, Mutex};

/// More spare buffers than frames in flight are never needed; beyond this they are freed.
const KEPT: usize = 8;

/// A shared stock of spare buffers; cloning it shares the stock.
#[derive(Debug, Clone, Default)]
pub struct Recycler {
    spare: Arc<Mutex<Spare>>,
}

#[derive(Debug, Default)]
struct Spare {
    tensors: Vec<Vec<f32>>,
    rasters: Vec<Vec<u8>>,
}

impl Recycler {
    /// Takes back the buffers of a frame whose tensor and model-input pixels are no longer read.
    pub fn give_back(&self, prepared: Prepared) {
        let mut spare = crate::sync::lock(&self.spare);
        if spare.tensors.len() < KEPT {
            spare.tensors.push(prepared.tensor.into_data());
        }
        if spare.rasters.len() < KEPT {
            spare.rasters.push(prepared.input.data);
        }
    }

    /// A spare tensor buffer (contents unspecified), or a new empty one.
    pub(super) fn tensor(&self) -> Vec<f32> {
        let mut spare = crate::sync::lock(&self.spare);
        spare.tensors.pop().unwrap_or_default()
    }

    /// A spare raster buffer (contents unspecified), or a new empty one.
    pub(super) fn raster(&self) -> Vec<u8> {
        let mut spare = crate::sync::lock(&self.spare);
        spare.rasters.pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{Placement, Raster};
    use crate::tensor::Tensor;

    fn prepared(values: usize) -> Prepared {
        Prepared {
            tensor: Tensor::new(vec![values], vec![0.5; values]).unwrap(),
            placement: Placement::new(crate::model::ResizePolicy::Stretch, 1, 1, 1, 1),
            input: Raster {
                width: 1,
                height: 1,
                channels: 1,
                data: vec![7; values],
            },
        }
    }

    #[test]
    fn a_buffer_given_back_is_handed_out_again_with_its_allocation() {
        let recycler = Recycler::default();
        let shared = recycler.clone();
        let frame = prepared(1000);
        let address = frame.tensor.data().as_ptr();
        shared.give_back(frame);
        let tensor = recycler.tensor();
        assert_eq!(tensor.as_ptr(), address);
        assert!(tensor.capacity() >= 1000);
        assert_eq!(recycler.raster().len(), 1000);
        assert!(recycler.tensor().is_empty() && recycler.raster().is_empty());
    }

    #[test]
    fn the_stock_stays_bounded() {
        let recycler = Recycler::default();
        for _ in 0..KEPT + 5 {
            recycler.give_back(prepared(4));
        }
        let handed_out = std::iter::from_fn(|| Some(recycler.tensor()))
            .take_while(|t| !t.is_empty())
            .count();
        assert_eq!(handed_out, KEPT);
    }
}
