//! Image files and directories: replays and tests.

use super::{default_camera, FrameError, FrameResult, FrameSource, Pacer, SourceError};
use crate::error::Report;
use crate::frame::{Frame, FrameMeta, PixelFormat};
use serde::Deserialize;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `kind = "image-file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFileConfig {
    /// The image (PNG, JPEG or BMP).
    pub path: PathBuf,
    /// Camera id reported with the results.
    #[serde(default = "default_camera")]
    pub camera: String,
    /// The camera's index for ReID models with Side Information Embedding (`[sie]`).
    #[serde(default)]
    pub camera_index: usize,
}

/// `kind = "image-dir"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDirConfig {
    /// The folder; its PNG, JPEG and BMP files are read in file-name order.
    pub path: PathBuf,
    /// Camera id reported with the results.
    #[serde(default = "default_camera")]
    pub camera: String,
    /// The camera's index for ReID models with Side Information Embedding (`[sie]`).
    #[serde(default)]
    pub camera_index: usize,
    /// Start again from the first file after the last (the folder is listed again each pass).
    #[serde(default, rename = "loop")]
    pub repeat: bool,
    /// Frames per second to replay at; 0 reads as fast as the pipeline takes them.
    #[serde(default)]
    pub fps: f64,
}

const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files of `dir`, sorted by name.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let read_error = |source| SourceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(SourceError::EmptyDirectory {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Reads one image file into an encoded frame (decoding is preprocessing's job; the header
/// is read here so the frame knows its size).
fn read_image(path: &Path, meta: &mut FrameMeta) -> Result<Vec<u8>, SourceError> {
    let data = std::fs::read(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let not_an_image = |message: String| SourceError::NotAnImage {
        path: path.to_path_buf(),
        message,
    };
    let reader = image::ImageReader::new(Cursor::new(&data))
        .with_guessed_format()
        .map_err(|e| not_an_image(e.to_string()))?;
    if reader.format().is_none() {
        return Err(not_an_image("the format is not recognised".into()));
    }
    // A damaged file of a known format is preprocessing's to report (with the decoder's
    // reason), whichever part of it is damaged: the size stays 0 until it decodes.
    if let Ok((width, height)) = reader.into_dimensions() {
        meta.width = width;
        meta.height = height;
    }
    Ok(data)
}

/// A fixed list of image files, each read once.
#[derive(Debug)]
pub struct ImageListSource {
    paths: std::vec::IntoIter<PathBuf>,
    camera: String,
    camera_index: usize,
    seq: u64,
}

impl ImageListSource {
    pub fn new(paths: Vec<PathBuf>, camera: String) -> Self {
        ImageListSource {
            paths: paths.into_iter(),
            camera,
            camera_index: 0,
            seq: 0,
        }
    }

    /// Sets the camera index of the frames (for ReID models with `[sie]`).
    pub fn with_camera_index(mut self, index: usize) -> Self {
        self.camera_index = index;
        self
    }
}

/// Reads the next file as frame number `seq` of `source`.
fn next_file_frame(
    path: PathBuf,
    source: String,
    camera: (&str, usize),
    seq: &mut u64,
) -> FrameResult {
    let mut meta = FrameMeta {
        seq: *seq,
        captured_at: SystemTime::now(),
        source,
        camera: camera.0.to_string(),
        camera_index: camera.1,
        path: Some(path.clone()),
        width: 0,
        height: 0,
        format: PixelFormat::Encoded,
    };
    *seq += 1;
    match read_image(&path, &mut meta) {
        Ok(data) => Ok(Frame { meta, data }),
        Err(error) => Err(Box::new(FrameError { meta, error })),
    }
}

impl FrameSource for ImageListSource {
    fn describe(&self) -> String {
        "image files".to_string()
    }

    fn next_frame(&mut self) -> Option<FrameResult> {
        let path = self.paths.next()?;
        let source = path.display().to_string();
        Some(next_file_frame(
            path,
            source,
            (&self.camera, self.camera_index),
            &mut self.seq,
        ))
    }
}

/// The images of a directory, in name order, optionally looping.
#[derive(Debug)]
pub struct ImageDirSource {
    config: ImageDirConfig,
    pending: std::vec::IntoIter<PathBuf>,
    pacer: Pacer,
    seq: u64,
}

impl ImageDirSource {
    pub fn open(config: &ImageDirConfig) -> Result<Self, SourceError> {
        let files = list_images(&config.path)?;
        Ok(ImageDirSource {
            config: config.clone(),
            pending: files.into_iter(),
            pacer: Pacer::new(config.fps)?,
            seq: 0,
        })
    }
}

impl FrameSource for ImageDirSource {
    fn describe(&self) -> String {
        self.config.path.display().to_string()
    }

    fn next_frame(&mut self) -> Option<FrameResult> {
        let path = match self.pending.next() {
            Some(path) => path,
            None if self.config.repeat => match list_images(&self.config.path) {
                Ok(files) => {
                    self.pending = files.into_iter();
                    self.pending.next()?
                }
                Err(error) => {
                    log::error!("{}; stopping the replay", Report(&error));
                    return None;
                }
            },
            None => return None,
        };
        self.pacer.wait();
        Some(next_file_frame(
            path,
            self.describe(),
            (&self.config.camera, self.config.camera_index),
            &mut self.seq,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        image::GrayImage::from_pixel(w, h, image::Luma([200]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn directory_is_read_in_name_order_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("b.png"), 3, 2);
        write_png(&dir.path().join("a.PNG"), 5, 4);
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let config = ImageDirConfig {
            path: dir.path().to_path_buf(),
            camera: "door".into(),
            camera_index: 0,
            repeat: false,
            fps: 0.0,
        };
        let mut source = ImageDirSource::open(&config).unwrap();
        let first = source.next_frame().unwrap().unwrap();
        assert_eq!(
            (first.meta.seq, first.meta.width, first.meta.height),
            (0, 5, 4)
        );
        assert_eq!(first.meta.camera, "door");
        let second = source.next_frame().unwrap().unwrap();
        assert_eq!((second.meta.seq, second.meta.width), (1, 3));
        assert!(source.next_frame().is_none());
    }

    #[test]
    fn looping_directory_starts_again_and_keeps_counting() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("only.png"), 2, 2);
        let config = ImageDirConfig {
            path: dir.path().to_path_buf(),
            camera: "c".into(),
            camera_index: 0,
            repeat: true,
            fps: 0.0,
        };
        let mut source = ImageDirSource::open(&config).unwrap();
        let seqs: Vec<u64> = (0..3)
            .map(|_| source.next_frame().unwrap().unwrap().meta.seq)
            .collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn unreadable_file_is_a_frame_error_and_the_list_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"not a png at all").unwrap();
        let good = dir.path().join("good.png");
        write_png(&good, 1, 1);
        let missing = dir.path().join("missing.png");
        let mut source = ImageListSource::new(vec![bad, missing, good], "c".into());
        let e = source.next_frame().unwrap().unwrap_err();
        assert!(matches!(e.error, SourceError::NotAnImage { .. }), "{e:?}");
        let e = source.next_frame().unwrap().unwrap_err();
        assert!(matches!(e.error, SourceError::Read { .. }), "{e:?}");
        assert_eq!(e.meta.seq, 1);
        assert_eq!(source.next_frame().unwrap().unwrap().meta.seq, 2);
    }

    #[test]
    fn empty_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ImageDirConfig {
            path: dir.path().to_path_buf(),
            camera: "c".into(),
            camera_index: 0,
            repeat: false,
            fps: 0.0,
        };
        let err = ImageDirSource::open(&config).unwrap_err();
        assert!(err.to_string().contains("holds no PNG"), "{err}");
    }
}
