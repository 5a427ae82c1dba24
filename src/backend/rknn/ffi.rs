//! `librknnrt.so` loaded at run time: the RKNN C API's entry points as function pointers.
//!
//! The types come from `rknpu-sys`'s bundled bindings; its `rknn` feature without `bindgen`
//! emits no link flags, so nothing links against the vendor library at build time and the
//! same binary starts on boards without an NPU.

use rknpu_sys::rknn::{
    rknn_context, rknn_core_mask, rknn_init_extend, rknn_input, rknn_output, rknn_output_extend,
    rknn_query_cmd, rknn_run_extend,
};
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};

type Init =
    unsafe extern "C" fn(*mut rknn_context, *mut c_void, u32, u32, *mut rknn_init_extend) -> c_int;
type Destroy = unsafe extern "C" fn(rknn_context) -> c_int;
type Query = unsafe extern "C" fn(rknn_context, rknn_query_cmd, *mut c_void, u32) -> c_int;
type InputsSet = unsafe extern "C" fn(rknn_context, u32, *mut rknn_input) -> c_int;
type SetCoreMask = unsafe extern "C" fn(rknn_context, rknn_core_mask) -> c_int;
type Run = unsafe extern "C" fn(rknn_context, *mut rknn_run_extend) -> c_int;
type OutputsGet =
    unsafe extern "C" fn(rknn_context, u32, *mut rknn_output, *mut rknn_output_extend) -> c_int;
type OutputsRelease = unsafe extern "C" fn(rknn_context, u32, *mut rknn_output) -> c_int;

/// The loaded library and the entry points edgevit calls.
pub struct Api {
    pub path: PathBuf,
    pub init: Init,
    pub destroy: Destroy,
    pub query: Query,
    pub inputs_set: InputsSet,
    /// Absent from runtimes for single-core NPUs (RV1106's `librknnmrt`).
    pub set_core_mask: Option<SetCoreMask>,
    pub run: Run,
    pub outputs_get: OutputsGet,
    pub outputs_release: OutputsRelease,
    // Last: the pointers above are valid while the library stays loaded.
    _library: libloading::Library,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("path", &self.path).finish()
    }
}

/// Why the library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Open(String),
    #[error("it has no `{symbol}`: not the RKNN runtime ({source})")]
    Symbol {
        symbol: &'static str,
        source: libloading::Error,
    },
}

impl Api {
    /// Loads the library at `path` (a bare file name is looked up in the system's library
    /// path, as `dlopen` does).
    pub fn load(path: &Path) -> Result<Api, LoadError> {
        // SAFETY: loading runs the library's initialisers; librknnrt's only set up its own
        // state. Each symbol is read with the signature of the RKNN C API (rknn_api.h,
        // runtime 1.x and 2.x), which the bundled bindings were generated from.
        unsafe {
            let library = libloading::Library::new(path)
                .map_err(|e| LoadError::Open(crate::error::chain(&e)))?;
            fn symbol<T: Copy>(
                library: &libloading::Library,
                name: &'static str,
            ) -> Result<T, LoadError> {
                // SAFETY: see `load`; `T` is the function's pointer type.
                unsafe {
                    library
                        .get::<T>(name.as_bytes())
                        .map(|s| *s)
                        .map_err(|source| LoadError::Symbol {
                            symbol: name,
                            source,
                        })
                }
            }
            Ok(Api {
                path: path.to_path_buf(),
                init: symbol(&library, "rknn_init")?,
                destroy: symbol(&library, "rknn_destroy")?,
                query: symbol(&library, "rknn_query")?,
                inputs_set: symbol(&library, "rknn_inputs_set")?,
                set_core_mask: symbol(&library, "rknn_set_core_mask").ok(),
                run: symbol(&library, "rknn_run")?,
                outputs_get: symbol(&library, "rknn_outputs_get")?,
                outputs_release: symbol(&library, "rknn_outputs_release")?,
                _library: library,
            })
        }
    }
}

/// The name of an RKNN error code (rknn_api.h).
pub fn error_name(code: c_int) -> &'static str {
    match code {
        -1 => "RKNN_ERR_FAIL",
        -2 => "RKNN_ERR_TIMEOUT",
        -3 => "RKNN_ERR_DEVICE_UNAVAILABLE",
        -4 => "RKNN_ERR_MALLOC_FAIL",
        -5 => "RKNN_ERR_PARAM_INVALID",
        -6 => "RKNN_ERR_MODEL_INVALID",
        -7 => "RKNN_ERR_CTX_INVALID",
        -8 => "RKNN_ERR_INPUT_INVALID",
        -9 => "RKNN_ERR_OUTPUT_INVALID",
        -10 => "RKNN_ERR_DEVICE_UNMATCH",
        -11 => "RKNN_ERR_INCOMPATILE_PRE_COMPILE_MODEL",
        -12 => "RKNN_ERR_INCOMPATILE_OPTIMIZATION_LEVEL_VERSION",
        -13 => "RKNN_ERR_TARGET_PLATFORM_UNMATCH",
        _ => "unknown RKNN error",
    }
}
