//! The serial device: opening it with the configured framing, closing it without hanging, and
//! the [`IoWrite`] adapter that lets the `embedded-io` line writer use it.

use super::config::SerialConfig;
use std::io;

#[cfg(unix)]
pub(super) type NativePort = serialport::TTYPort;
#[cfg(windows)]
pub(super) type NativePort = serialport::COMPort;

/// Opens the device with the configured framing, ready for writes that never block for long.
pub(super) fn open(config: &SerialConfig) -> Result<NativePort, serialport::Error> {
    let port = serialport::new(config.path.as_str(), config.baud.get())
        .data_bits(config.data_bits.into())
        .parity(config.parity.into())
        .stop_bits(config.stop_bits.into())
        .flow_control(config.flow_control.into())
        .timeout(config.write_timeout())
        .open_native()?;
    #[cfg(unix)]
    set_nonblocking(&port)?;
    Ok(port)
}

/// serialport waits (up to its timeout) until the device is writable and then makes a
/// blocking `write`, which a tty completes only once the whole buffer is queued: a line longer
/// than the room left would block until the other end reads, however long that takes. A
/// non-blocking descriptor writes what fits and returns.
#[cfg(unix)]
fn set_nonblocking(port: &serialport::TTYPort) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = port.as_raw_fd();
    // SAFETY: `fd` is the port's open descriptor for as long as `port` is borrowed, and
    // F_GETFL/F_SETFL only read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes a port that failed or stopped taking data, on a thread of its own: Linux holds a
/// `close` until the driver has sent what it holds, up to 30 s by default (forever-stuck flow
/// control), and the capture loop must not wait for that. The bytes are left to the driver
/// rather than discarded: they belong to records already counted as delivered. A reopen of the
/// same device meanwhile may be refused, and is tried again after the backoff.
pub(super) fn close_in_background(port: NativePort) {
    let closing = std::thread::Builder::new()
        .name("serial-close".into())
        .spawn(move || release(port));
    if let Err(e) = closing {
        // The port went down with the closure, on this thread.
        log::debug!("cannot start a thread to close the port: {e}");
    }
}

/// Closes a port.
///
/// On a pseudo-terminal the exclusive lock (TIOCEXCL) outlives this descriptor while anyone
/// else holds the terminal, and would refuse our own reopen; it is lifted first.
pub(super) fn release(port: NativePort) {
    #[cfg(unix)]
    {
        let mut port = port;
        if let Err(e) = port.set_exclusive(false) {
            log::debug!("cannot release the exclusive lock before closing: {e}");
        }
    }
    #[cfg(not(unix))]
    drop(port);
}

/// A [`std::io::Write`] seen as an [`embedded_io::Write`], so that
/// [`write_line`](super::write_line) writes to serial ports, files and sockets.
///
/// `Interrupted` is retried, and a zero-length write becomes a `WriteZero` error, since
/// `embedded_io` writers must not return `Ok(0)` (its `write_all` would panic).
#[derive(Debug)]
pub struct IoWrite<W>(W);

impl<W> IoWrite<W> {
    pub fn new(inner: W) -> Self {
        IoWrite(inner)
    }

    pub fn get_ref(&self) -> &W {
        &self.0
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.0
    }

    pub fn into_inner(self) -> W {
        self.0
    }
}

impl<W: io::Write> embedded_io::ErrorType for IoWrite<W> {
    type Error = io::Error;
}

impl<W: io::Write> embedded_io::Write for IoWrite<W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.0.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> Result<(), io::Error> {
        self.0.flush()
    }
}
