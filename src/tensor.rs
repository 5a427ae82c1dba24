//! A dense f32 tensor, independent of any inference engine, and `.npy` I/O for golden files.

use std::path::Path;

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Why a tensor could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} needs {expected} values, got {actual}")]
    ShapeMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a supported .npy file: {reason}")]
    Npy { path: String, reason: NpyError },
}

/// Why bytes are not a `.npy` file edgevit reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    #[error("missing the \\x93NUMPY magic")]
    Magic,
    #[error("unsupported format version {0}")]
    Version(u8),
    #[error("truncated or non-text header")]
    Header,
    #[error("header has no '{0}'")]
    MissingKey(&'static str),
    #[error("dtype {0} is neither float32 '<f4' nor uint8 '|u1'")]
    Dtype(String),
    #[error("Fortran-order arrays are not supported")]
    FortranOrder,
    #[error("malformed 'shape'")]
    Shape,
    #[error("bad dimension {0:?}")]
    Dimension(String),
    #[error("shape {0:?} is too large")]
    TooLarge(Vec<usize>),
    #[error("shape {shape:?} needs {needed} bytes of data, file has {actual}")]
    Length {
        shape: Vec<usize>,
        needed: usize,
        actual: usize,
    },
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, TensorError> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(TensorError::ShapeMismatch {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A 4-D tensor whose data length the caller has computed from `shape`.
    pub(crate) fn new_nchw(shape: [usize; 4], data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Largest absolute element-wise difference; `None` when the shapes differ.
    pub fn max_abs_diff(&self, other: &Tensor) -> Option<f32> {
        if self.shape != other.shape {
            return None;
        }
        Some(
            self.data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| (a - b).abs())
                .fold(
                    0.0,
                    |worst, d| if d.is_nan() || d > worst { d } else { worst },
                ),
        )
    }

    /// Reads a C-order `.npy` file (format 1.0 to 3.0) of little-endian f32 (`<f4`) or of
    /// bytes (`|u1`, widened to f32).
    pub fn read_npy(path: &Path) -> Result<Tensor, TensorError> {
        let bytes = std::fs::read(path).map_err(|source| TensorError::Io {
            path: path.display().to_string(),
            source,
        })?;
        parse_npy(&bytes).map_err(|reason| TensorError::Npy {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses the bytes of a `.npy` file (see [`Tensor::read_npy`]); the error says why not.
    pub fn from_npy_bytes(bytes: &[u8]) -> Result<Tensor, NpyError> {
        parse_npy(bytes)
    }

    /// Serialises as a `.npy` (format 1.0, `<f4`, C order).
    pub fn to_npy(&self) -> Vec<u8> {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        // The magic (6), version (2) and length (2) plus the header end on a 64-byte boundary.
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len() * 4);
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

fn parse_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(NpyError::Magic);
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(NpyError::Version(v)),
    };
    let header_end = header_start + header_len;
    let header = bytes
        .get(header_start..header_end)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(NpyError::Header)?;
    let descr = dict_value(header, "descr").ok_or(NpyError::MissingKey("descr"))?;
    let element_size = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'|u1'") {
        1
    } else {
        return Err(NpyError::Dtype(
            descr.split(',').next().unwrap_or(descr).to_string(),
        ));
    };
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(NpyError::FortranOrder);
    }
    let shape_text = dict_value(header, "shape").ok_or(NpyError::MissingKey("shape"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or(NpyError::Shape)?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| NpyError::Dimension(s.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let payload = &bytes[header_end..];
    let needed = shape
        .iter()
        .try_fold(element_size, |bytes: usize, &d| bytes.checked_mul(d))
        .ok_or_else(|| NpyError::TooLarge(shape.clone()))?;
    if payload.len() != needed {
        return Err(NpyError::Length {
            shape,
            needed,
            actual: payload.len(),
        });
    }
    let data = match element_size {
        4 => payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => payload.iter().map(|&b| b as f32).collect(),
    };
    Ok(Tensor { shape, data })
}

/// The text after `'key':` in a numpy header dict.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("'{key}':");
    let start = header.find(&pattern)? + pattern.len();
    Some(header[start..].trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_keeps_shape_and_values() {
        let t = Tensor::new(vec![2, 3], vec![0.0, 1.5, -2.0, 3.25, f32::MAX, 1e-7]).unwrap();
        let back = parse_npy(&t.to_npy()).unwrap();
        assert_eq!(back, t);
        let v = Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(parse_npy(&v.to_npy()).unwrap(), v);
    }

    #[test]
    fn npy_rejects_other_dtypes_and_truncation() {
        let t = Tensor::new(vec![2], vec![1.0, 2.0]).unwrap();
        let mut bytes = t.to_npy();
        let mut f8 = bytes.clone();
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        assert_eq!(parse_npy(&f8), Err(NpyError::Dtype("'<f8'".into())));
        assert!(parse_npy(&f8).unwrap_err().to_string().contains("<f8"));
        bytes.pop();
        assert!(matches!(
            parse_npy(&bytes),
            Err(NpyError::Length {
                needed: 8,
                actual: 7,
                ..
            })
        ));
        assert!(parse_npy(&bytes)
            .unwrap_err()
            .to_string()
            .contains("needs 8 bytes"));
        assert_eq!(parse_npy(b"garbage"), Err(NpyError::Magic));
    }

    #[test]
    fn max_abs_diff_compares_same_shapes_only() {
        let a = Tensor::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
        let b = Tensor::new(vec![3], vec![1.0, 2.5, 2.0]).unwrap();
        assert_eq!(a.max_abs_diff(&b), Some(1.0));
        let c = Tensor::new(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(a.max_abs_diff(&c), None);
        assert!(Tensor::new(vec![2, 2], vec![0.0]).is_err());
    }
}
