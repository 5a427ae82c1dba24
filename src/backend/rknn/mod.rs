//! Rockchip NPUs (RK3588, RK3568, RK3566, ...) through the RKNN runtime, `librknnrt.so`,
//! loaded at run time (feature `rknn`).
//!
//! The model is the package's `.rknn` file (manifest key `rknn`), converted from its ONNX
//! model by rknn-toolkit2 (`tools/rknn_convert.py`). The image goes in as NHWC, either 8-bit
//! pixels that the NPU normalises with the mean and std baked in at conversion, or the
//! normalised floats; outputs come back dequantized to f32.

mod ffi;
mod layout;

use self::ffi::Api;
use super::{BackendError, InferenceBackend, Outputs};
use crate::model::{AttentionSource, ModelPackage, RknnInput};
use crate::preprocess::Normalization;
use crate::tensor::Tensor;
use rknpu_sys::rknn::{
    rknn_context, rknn_core_mask, rknn_input, rknn_input_output_num, rknn_output, rknn_query_cmd,
    rknn_tensor_attr, rknn_tensor_format, rknn_tensor_type,
};
use serde::Deserialize;
use std::ffi::{c_int, c_void, CStr};
use std::path::PathBuf;

/// `[backend] kind = "rknn"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RknnConfig {
    /// The RKNN runtime; default `librknnrt.so` from the system's library path (Rockchip's
    /// images put it in /usr/lib).
    #[serde(default)]
    pub library: Option<PathBuf>,
    /// Which NPU cores run the model (RK3588 has three): `auto` (the runtime chooses),
    /// `0`, `1`, `2`, `0_1`, `0_1_2` or `all`. Boards with one core take `auto` only.
    #[serde(default)]
    pub core_mask: CoreMask,
}

impl Default for RknnConfig {
    fn default() -> Self {
        RknnConfig {
            library: None,
            core_mask: CoreMask::Auto,
        }
    }
}

/// RK3588's NPU cores for one context (`rknn_set_core_mask`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CoreMask {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "0")]
    Core0,
    #[serde(rename = "1")]
    Core1,
    #[serde(rename = "2")]
    Core2,
    #[serde(rename = "0_1")]
    Cores01,
    #[serde(rename = "0_1_2")]
    Cores012,
    #[serde(rename = "all")]
    All,
}

impl CoreMask {
    fn mask(self) -> rknn_core_mask {
        match self {
            CoreMask::Auto => rknn_core_mask::RKNN_NPU_CORE_AUTO,
            CoreMask::Core0 => rknn_core_mask::RKNN_NPU_CORE_0,
            CoreMask::Core1 => rknn_core_mask::RKNN_NPU_CORE_1,
            CoreMask::Core2 => rknn_core_mask::RKNN_NPU_CORE_2,
            CoreMask::Cores01 => rknn_core_mask::RKNN_NPU_CORE_0_1,
            CoreMask::Cores012 => rknn_core_mask::RKNN_NPU_CORE_0_1_2,
            CoreMask::All => rknn_core_mask::RKNN_NPU_CORE_ALL,
        }
    }
}

/// The library to load: the setting, else the system's `librknnrt.so`.
pub fn library_path(config: &RknnConfig) -> PathBuf {
    super::runtime_library(config.library.as_deref(), None, "librknnrt.so")
}

/// One output the manifest names: where it is among the model's outputs and its layout.
#[derive(Debug)]
struct OutputSlot {
    name: String,
    index: u32,
    /// The shape edgevit reports (NCHW for 4-D outputs).
    shape: Vec<usize>,
    /// The runtime gives this 4-D output as NHWC `[n, h, w, c]`.
    nhwc: Option<[usize; 4]>,
    /// Where the runtime writes the dequantized values.
    buffer: Vec<f32>,
}

/// A model in an RKNN context.
pub struct RknnBackend {
    api: Api,
    context: rknn_context,
    input: RknnInput,
    input_shape: Vec<usize>,
    normalization: Normalization,
    outputs: Vec<OutputSlot>,
    pixels: Vec<u8>,
    floats: Vec<f32>,
}

impl RknnBackend {
    pub fn load(package: &ModelPackage, config: &RknnConfig) -> Result<Self, BackendError> {
        let manifest = &package.manifest;
        let spec = manifest.rknn.as_ref().ok_or_else(|| {
            BackendError::Config(format!(
                "model {:?} has no `rknn` file in its model.toml: convert its ONNX model with tools/rknn_convert.py and name the .rknn file there",
                package.name()
            ))
        })?;
        if manifest.input.layout == crate::model::Layout::Nhwc {
            // The converted model takes NHWC pixels whatever the ONNX graph took; the feeding
            // here reads the manifest's shape as NCHW and has not been made to read both.
            return Err(BackendError::Config(format!(
                "model {:?} has input.layout = \"nhwc\", which the rknn backend does not take yet: run it on tract or ort",
                package.name()
            )));
        }
        let path = package.resolve(&spec.file);
        let mismatch = |message: String| BackendError::Mismatch {
            path: path.clone(),
            message,
        };
        if manifest.sie.is_some() {
            return Err(mismatch(
                "the rknn backend does not feed side inputs ([sie]); run this model on tract or ort".into(),
            ));
        }
        if manifest.outputs.attention == AttentionSource::Auto {
            return Err(mismatch(
                "`outputs.attention = \"auto\"` finds the attention inside the ONNX graph, which only the tract backend can read; \
                 keep the attention maps as outputs at conversion (tools/rknn_convert.py does) and name them in outputs.attention"
                    .into(),
            ));
        }
        let library = library_path(config);
        let api = Api::load(&library).map_err(|e| BackendError::Library {
            path: library.clone(),
            message: format!(
                "{e} (set `backend.library` to the RKNN runtime, librknnrt.so from Rockchip's rknpu2)"
            ),
        })?;
        let mut model = std::fs::read(&path).map_err(|e| BackendError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let size = u32::try_from(model.len()).map_err(|_| BackendError::Load {
            path: path.clone(),
            message: "larger than 4 GiB".into(),
        })?;
        let mut context: rknn_context = 0;
        // SAFETY: `model` is a live buffer of `size` bytes; the runtime copies what it needs
        // during the call. `context` receives the handle.
        let code = unsafe {
            (api.init)(
                &mut context,
                model.as_mut_ptr().cast::<c_void>(),
                size,
                0,
                std::ptr::null_mut(),
            )
        };
        if code != 0 {
            return Err(BackendError::Load {
                path,
                message: format!(
                    "rknn_init: {} ({code}): not a model for this runtime or this NPU",
                    ffi::error_name(code)
                ),
            });
        }
        // From here on `Drop` destroys the context.
        let mut backend = RknnBackend {
            api,
            context,
            input: spec.input,
            input_shape: manifest.input.shape.to_vec(),
            normalization: Normalization::from_spec(&manifest.input),
            outputs: Vec::new(),
            pixels: Vec::new(),
            floats: Vec::new(),
        };
        backend.set_core_mask(config.core_mask)?;
        let counts: rknn_input_output_num = backend.query(rknn_query_cmd::RKNN_QUERY_IN_OUT_NUM)?;
        if counts.n_input != 1 {
            return Err(mismatch(format!(
                "the converted model has {} inputs; edgevit feeds one image",
                counts.n_input
            )));
        }
        let input: rknn_tensor_attr =
            backend.query_attr(rknn_query_cmd::RKNN_QUERY_INPUT_ATTR, 0)?;
        check_input_attr(&input, &manifest.input.shape).map_err(&mismatch)?;
        let mut available = Vec::new();
        for index in 0..counts.n_output {
            available.push(backend.query_attr(rknn_query_cmd::RKNN_QUERY_OUTPUT_ATTR, index)?);
        }
        let wanted = manifest.outputs.owned_graph_names();
        let names: Vec<String> = available.iter().map(attr_name).collect();
        let listed: Vec<&str> = names.iter().map(String::as_str).collect();
        super::check_outputs(
            &wanted,
            |n| listed.contains(&n),
            &listed,
            "convert again keeping it as an output",
        )
        .map_err(&mismatch)?;
        for name in wanted {
            if let Some(attr) = available.iter().find(|a| attr_name(a) == name) {
                backend.outputs.push(output_slot(name, attr));
            }
        }
        log::info!(
            "RKNN runtime {} runs {} (input {:?}, cores {:?})",
            backend.api.path.display(),
            path.display(),
            spec.input,
            config.core_mask
        );
        Ok(backend)
    }

    fn set_core_mask(&self, core_mask: CoreMask) -> Result<(), BackendError> {
        if core_mask == CoreMask::Auto {
            return Ok(());
        }
        let Some(set) = self.api.set_core_mask else {
            return Err(BackendError::Config(format!(
                "backend.core_mask = {core_mask:?}: this RKNN runtime has no rknn_set_core_mask (single-core NPU); use \"auto\""
            )));
        };
        // SAFETY: a live context; the mask is a plain value.
        let code = unsafe { set(self.context, core_mask.mask()) };
        check("rknn_set_core_mask", code).map_err(|e| {
            BackendError::Config(format!(
                "backend.core_mask = {core_mask:?}: {e}; this NPU may not have those cores (RK3588 has 0, 1 and 2)"
            ))
        })
    }

    /// `rknn_query` into a plain struct `T`.
    fn query<T: Copy>(&self, command: rknn_query_cmd) -> Result<T, BackendError> {
        // SAFETY: `T` is one of the bindings' plain C structs, valid when zeroed.
        let mut value: T = unsafe { std::mem::zeroed() };
        self.query_into(command, &mut value)?;
        Ok(value)
    }

    fn query_attr(
        &self,
        command: rknn_query_cmd,
        index: u32,
    ) -> Result<rknn_tensor_attr, BackendError> {
        // SAFETY: rknn_tensor_attr is a plain C struct, valid when zeroed.
        let mut attr: rknn_tensor_attr = unsafe { std::mem::zeroed() };
        attr.index = index;
        self.query_into(command, &mut attr)?;
        Ok(attr)
    }

    fn query_into<T>(&self, command: rknn_query_cmd, value: &mut T) -> Result<(), BackendError> {
        let size = std::mem::size_of::<T>() as u32;
        // SAFETY: `value` is a live, writable struct of `size` bytes of the kind `command`
        // fills.
        let code = unsafe {
            (self.api.query)(
                self.context,
                command,
                (value as *mut T).cast::<c_void>(),
                size,
            )
        };
        check("rknn_query", code)
    }
}

/// `Err` with the call and its code unless `code` is RKNN_SUCC.
fn check(call: &'static str, code: c_int) -> Result<(), BackendError> {
    if code == 0 {
        return Ok(());
    }
    Err(BackendError::RuntimeCall {
        call,
        code,
        name: ffi::error_name(code),
    })
}

fn attr_name(attr: &rknn_tensor_attr) -> String {
    // The runtime NUL-terminates names; a full buffer without one is read to its end.
    let bytes: Vec<u8> = attr.name.iter().map(|&c| c as u8).collect();
    match CStr::from_bytes_until_nul(&bytes) {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn dims(attr: &rknn_tensor_attr) -> Vec<usize> {
    let n = (attr.n_dims as usize).min(attr.dims.len());
    attr.dims[..n].iter().map(|&d| d as usize).collect()
}

/// The converted model's input must be the manifest's image: `[1, H, W, C]` (NHWC) or
/// `[1, C, H, W]`.
fn check_input_attr(attr: &rknn_tensor_attr, shape: &[usize; 4]) -> Result<(), String> {
    let [n, c, h, w] = *shape;
    let dims = dims(attr);
    let expected = if attr.fmt == rknn_tensor_format::RKNN_TENSOR_NHWC {
        vec![n, h, w, c]
    } else {
        vec![n, c, h, w]
    };
    if dims != expected {
        return Err(format!(
            "the converted model's input is {dims:?} ({}), the manifest's input.shape {shape:?} means {expected:?}",
            format_name(attr.fmt)
        ));
    }
    Ok(())
}

fn format_name(format: rknn_tensor_format) -> &'static str {
    match format {
        rknn_tensor_format::RKNN_TENSOR_NCHW => "NCHW",
        rknn_tensor_format::RKNN_TENSOR_NHWC => "NHWC",
        rknn_tensor_format::RKNN_TENSOR_NC1HWC2 => "NC1HWC2",
        _ => "undefined layout",
    }
}

fn output_slot(name: String, attr: &rknn_tensor_attr) -> OutputSlot {
    let dims = dims(attr);
    let dims = if dims.is_empty() {
        vec![attr.n_elems as usize]
    } else {
        dims
    };
    let elements = dims.iter().product::<usize>();
    let nhwc = match dims[..] {
        [n, h, w, c] if attr.fmt == rknn_tensor_format::RKNN_TENSOR_NHWC => Some([n, h, w, c]),
        _ => None,
    };
    let shape = match nhwc {
        Some([n, h, w, c]) => vec![n, c, h, w],
        None => dims,
    };
    OutputSlot {
        name,
        index: attr.index,
        shape,
        nhwc,
        buffer: vec![0.0; elements],
    }
}

impl Drop for RknnBackend {
    fn drop(&mut self) {
        // SAFETY: the context was made by rknn_init and is destroyed once.
        let code = unsafe { (self.api.destroy)(self.context) };
        if code != 0 {
            log::warn!("rknn_destroy: {} ({code})", ffi::error_name(code));
        }
    }
}

impl InferenceBackend for RknnBackend {
    fn name(&self) -> &'static str {
        "rknn"
    }

    fn output_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.shape.clone())
    }

    fn run_with(&mut self, input: &Tensor, _side: &[i64]) -> Result<Outputs, BackendError> {
        super::check_input(&self.input_shape, input)?;
        let [_, c, h, w] = [
            self.input_shape[0],
            self.input_shape[1],
            self.input_shape[2],
            self.input_shape[3],
        ];
        let (buf, size, type_) = match self.input {
            RknnInput::Uint8 => {
                layout::nchw_to_nhwc_pixels(
                    input.data(),
                    [c, h, w],
                    &self.normalization,
                    &mut self.pixels,
                );
                (
                    self.pixels.as_mut_ptr().cast::<c_void>(),
                    self.pixels.len(),
                    rknn_tensor_type::RKNN_TENSOR_UINT8,
                )
            }
            RknnInput::Float => {
                layout::nchw_to_nhwc(input.data(), [c, h, w], &mut self.floats);
                (
                    self.floats.as_mut_ptr().cast::<c_void>(),
                    self.floats.len() * 4,
                    rknn_tensor_type::RKNN_TENSOR_FLOAT32,
                )
            }
        };
        let mut image = rknn_input {
            index: 0,
            buf,
            size: size as u32,
            pass_through: 0,
            type_,
            fmt: rknn_tensor_format::RKNN_TENSOR_NHWC,
        };
        // SAFETY: `image` points into a buffer of `size` bytes owned by `self`, alive and
        // unmoved until the run below has returned (the runtime copies inputs in
        // rknn_inputs_set or rknn_run).
        let code = unsafe { (self.api.inputs_set)(self.context, 1, &mut image) };
        check("rknn_inputs_set", code)?;
        // SAFETY: a live context; no extension.
        let code = unsafe { (self.api.run)(self.context, std::ptr::null_mut()) };
        check("rknn_run", code)?;
        let mut wanted: Vec<rknn_output> = self
            .outputs
            .iter_mut()
            .map(|slot| rknn_output {
                want_float: 1,
                is_prealloc: 1,
                index: slot.index,
                buf: slot.buffer.as_mut_ptr().cast::<c_void>(),
                size: (slot.buffer.len() * 4) as u32,
            })
            .collect();
        let count = wanted.len() as u32;
        // SAFETY: each entry points at a preallocated f32 buffer of the size it states,
        // large enough for that output's elements; the runtime fills them as floats.
        let code = unsafe {
            (self.api.outputs_get)(
                self.context,
                count,
                wanted.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        check("rknn_outputs_get", code)?;
        // SAFETY: releases what rknn_outputs_get handed out (nothing to free for
        // preallocated buffers, but the runtime expects the call).
        let code = unsafe { (self.api.outputs_release)(self.context, count, wanted.as_mut_ptr()) };
        check("rknn_outputs_release", code)?;
        let mut tensors = Vec::with_capacity(self.outputs.len());
        for slot in &self.outputs {
            let tensor = match slot.nhwc {
                Some(dims) => {
                    let (shape, data) = layout::nhwc_to_nchw(dims, &slot.buffer);
                    Tensor::new(shape, data)
                }
                None => Tensor::new(slot.shape.clone(), slot.buffer.clone()),
            }
            .map_err(|e| BackendError::Run(e.to_string()))?;
            tensors.push((slot.name.clone(), tensor));
        }
        Ok(Outputs::new(tensors))
    }
}

/// `edgevit probe`: whether the runtime loads.
pub fn probe(config: &RknnConfig) -> Result<String, BackendError> {
    let path = library_path(config);
    let api = Api::load(&path).map_err(|e| BackendError::Library {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(format!(
        "available: RKNN runtime {}{}",
        api.path.display(),
        if api.set_core_mask.is_some() {
            " (multi-core: core_mask settable)"
        } else {
            ""
        }
    ))
}
