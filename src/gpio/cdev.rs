//! A line of a Linux GPIO character device as an `embedded-hal` 1.0 pin.

use super::GpioError;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use gpiocdev::line::Value;
use gpiocdev::Request;
use std::path::Path;

/// One requested line; released when dropped.
pub struct CdevPin {
    request: Request,
    line: u32,
}

impl CdevPin {
    /// Requests `line` of `chip` as an input.
    pub fn input(chip: &Path, line: u32, active_low: bool) -> Result<Self, GpioError> {
        let mut builder = Request::builder();
        builder
            .on_chip(chip)
            .with_consumer("edgevit")
            .with_line(line)
            .as_input();
        if active_low {
            builder.as_active_low();
        }
        Self::request(chip, line, &mut builder)
    }

    /// Requests `line` of `chip` as an output, inactive.
    pub fn output(chip: &Path, line: u32, active_low: bool) -> Result<Self, GpioError> {
        let mut builder = Request::builder();
        builder
            .on_chip(chip)
            .with_consumer("edgevit")
            .with_line(line)
            .as_output(Value::Inactive);
        if active_low {
            builder.as_active_low();
        }
        Self::request(chip, line, &mut builder)
    }

    fn request(
        chip: &Path,
        line: u32,
        builder: &mut gpiocdev::request::Builder,
    ) -> Result<Self, GpioError> {
        let request = builder.request().map_err(|source| GpioError::Request {
            chip: chip.to_path_buf(),
            line,
            source,
        })?;
        Ok(CdevPin { request, line })
    }

    fn error(&self, source: gpiocdev::Error) -> PinError {
        PinError(GpioError::Line {
            line: self.line,
            source,
        })
    }
}

/// A failed read or write of a line.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PinError(GpioError);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl ErrorType for CdevPin {
    type Error = PinError;
}

impl InputPin for CdevPin {
    fn is_high(&mut self) -> Result<bool, PinError> {
        self.request
            .value(self.line)
            .map(|v| v == Value::Active)
            .map_err(|e| self.error(e))
    }

    fn is_low(&mut self) -> Result<bool, PinError> {
        self.is_high().map(|high| !high)
    }
}

impl OutputPin for CdevPin {
    fn set_high(&mut self) -> Result<(), PinError> {
        self.request
            .set_value(self.line, Value::Active)
            .map_err(|e| self.error(e))
    }

    fn set_low(&mut self) -> Result<(), PinError> {
        self.request
            .set_value(self.line, Value::Inactive)
            .map_err(|e| self.error(e))
    }
}
