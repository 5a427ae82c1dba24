//! Memory-mapped streaming for single- and multi-planar capture.
//!
//! `v4l`'s own mmap stream is not used: it cannot do multi-planar buffers, and its `Drop`
//! panics when `VIDIOC_STREAMOFF` fails with anything but ENODEV, which a camera that glitched
//! can make happen. Here teardown errors are logged and the process goes on.

use super::raw::{self, BufferInfo, BufferType, MAX_PLANES};
use std::io;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

/// One mapped plane of one driver buffer.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

/// Why a dequeue produced no frame.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    #[error("{op} failed")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl StreamError {
    fn io(op: &'static str) -> impl FnOnce(io::Error) -> StreamError {
        move |source| StreamError::Io { op, source }
    }

    /// Whether the device is gone (unplugged, driver unbound).
    pub fn timed_out(&self) -> bool {
        matches!(self, StreamError::Timeout(_))
    }

    pub fn device_gone(&self) -> bool {
        matches!(self, StreamError::Io { source, .. } if source.raw_os_error() == Some(libc::ENODEV))
    }
}

/// A streaming capture queue: buffers are mapped once, queued, and re-queued as soon as
/// their bytes have been looked at.
pub struct MmapStream {
    fd: c_int,
    buffer_type: BufferType,
    buffers: Vec<Vec<Mapping>>,
    streaming: bool,
}

// SAFETY: the mappings are only touched through `&mut self`; the raw pointers are not shared.
unsafe impl Send for MmapStream {}

impl MmapStream {
    /// Allocates and maps `count` buffers, queues them and starts streaming.
    ///
    /// `fd` must stay open for the life of the stream (the caller keeps the device).
    pub fn start(fd: c_int, buffer_type: BufferType, count: u32) -> Result<Self, StreamError> {
        let mut stream = MmapStream {
            fd,
            buffer_type,
            buffers: Vec::new(),
            streaming: false,
        };
        let granted = raw::request_buffers(fd, buffer_type, count.max(2))
            .map_err(StreamError::io("VIDIOC_REQBUFS"))?;
        for index in 0..granted {
            let info = raw::query_buffer(fd, buffer_type, index)
                .map_err(StreamError::io("VIDIOC_QUERYBUF"))?;
            let mut planes = Vec::with_capacity(info.planes);
            for plane in 0..info.planes {
                let len = info.length[plane] as usize;
                // SAFETY: maps a region the driver just described for this fd.
                let ptr = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd,
                        info.offset[plane] as libc::off_t,
                    )
                };
                if ptr == libc::MAP_FAILED {
                    stream.buffers.push(planes);
                    return Err(StreamError::Io {
                        op: "mmap",
                        source: io::Error::last_os_error(),
                    });
                }
                planes.push(Mapping { ptr, len });
            }
            stream.buffers.push(planes);
        }
        for index in 0..granted {
            raw::queue_buffer(fd, buffer_type, index).map_err(StreamError::io("VIDIOC_QBUF"))?;
        }
        raw::stream_on(fd, buffer_type).map_err(StreamError::io("VIDIOC_STREAMON"))?;
        stream.streaming = true;
        Ok(stream)
    }

    pub fn buffer_count(&self) -> usize {
        self.buffers.len()
    }

    /// Waits up to `timeout` for a filled buffer. The buffer goes back to the driver when the
    /// returned [`Dequeued`] is dropped.
    pub fn dequeue(&mut self, timeout: Duration) -> Result<Dequeued<'_>, StreamError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut poll = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = left.as_millis().min(i32::MAX as u128) as c_int;
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, millis) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(StreamError::Io {
                    op: "poll",
                    source: error,
                });
            }
            if ready == 0 {
                return Err(StreamError::Timeout(timeout));
            }
            match raw::dequeue_buffer(self.fd, self.buffer_type) {
                Ok(info) => return Ok(Dequeued { stream: self, info }),
                // Woken without a buffer ready (a spurious wake-up): wait out the rest.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    if Instant::now() >= deadline {
                        return Err(StreamError::Timeout(timeout));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(StreamError::io("VIDIOC_DQBUF")(e)),
            }
        }
    }
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        if self.streaming {
            if let Err(e) = raw::stream_off(self.fd, self.buffer_type) {
                log::debug!("VIDIOC_STREAMOFF on teardown: {e}");
            }
        }
        for mapping in self.buffers.iter().flatten() {
            // SAFETY: unmaps exactly what `start` mapped; nothing borrows it any more.
            unsafe { libc::munmap(mapping.ptr, mapping.len) };
        }
        if !self.buffers.is_empty() {
            if let Err(e) = raw::request_buffers(self.fd, self.buffer_type, 0) {
                log::debug!("VIDIOC_REQBUFS(0) on teardown: {e}");
            }
        }
    }
}

/// A filled buffer, on loan from the driver.
pub struct Dequeued<'a> {
    stream: &'a mut MmapStream,
    pub info: BufferInfo,
}

impl Dequeued<'_> {
    /// The bytes of each plane that hold data (`data_offset..bytesused`, within the mapping).
    pub fn planes(&self) -> Vec<&[u8]> {
        let Some(maps) = self.stream.buffers.get(self.info.index as usize) else {
            return Vec::new();
        };
        maps.iter()
            .take(self.info.planes.min(MAX_PLANES))
            .enumerate()
            .map(|(i, map)| {
                let end = (self.info.bytes_used[i] as usize).min(map.len);
                let start = (self.info.data_offset[i] as usize).min(end);
                // SAFETY: the mapping is live for as long as the stream, which this borrows,
                // and the driver does not write a buffer while userspace holds it dequeued.
                let all = unsafe { std::slice::from_raw_parts(map.ptr as *const u8, map.len) };
                &all[start..end]
            })
            .collect()
    }

    pub fn damaged(&self) -> bool {
        self.info.flags & raw::BUF_FLAG_ERROR != 0
    }
}

impl Drop for Dequeued<'_> {
    fn drop(&mut self) {
        // A failure here means the device is going away; the next dequeue reports it.
        if let Err(e) = raw::queue_buffer(self.stream.fd, self.stream.buffer_type, self.info.index)
        {
            log::debug!("VIDIOC_QBUF: {e}");
        }
    }
}
