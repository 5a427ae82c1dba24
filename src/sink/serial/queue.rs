//! The lines waiting for the port: bounded, oldest dropped first, and the front line removed
//! only once all of its bytes are written.

use std::collections::VecDeque;

pub(super) struct LineQueue {
    lines: VecDeque<Vec<u8>>,
    capacity: usize,
    /// Bytes of the front line already written to the current port.
    written: usize,
    /// A line was cut short on the wire (its port was lost, or it was dropped part-way): the
    /// next bytes written are a `\n`, so that the fragment ends as a line of its own instead
    /// of running into the next record.
    cut: bool,
}

impl LineQueue {
    pub(super) fn new(capacity: usize) -> Self {
        LineQueue {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            written: 0,
            cut: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Adds a line at the back; returns true when the oldest had to be dropped for it.
    pub(super) fn push(&mut self, line: Vec<u8>) -> bool {
        let full = self.lines.len() >= self.capacity;
        if full {
            self.lines.pop_front();
            if self.written > 0 {
                self.written = 0;
                self.cut = true;
            }
        }
        self.lines.push_back(line);
        full
    }

    /// The bytes to write next, if any.
    pub(super) fn pending(&self) -> Option<&[u8]> {
        let front = self.lines.front()?;
        Some(if self.cut {
            b"\n"
        } else {
            &front[self.written..]
        })
    }

    /// Records that `n` bytes of [`pending`](Self::pending) were written; returns true when
    /// that completed a line, which is then removed.
    pub(super) fn advance(&mut self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        if self.cut {
            self.cut = false;
            return false;
        }
        let Some(front) = self.lines.front() else {
            return false;
        };
        self.written = (self.written + n).min(front.len());
        if self.written < front.len() {
            return false;
        }
        self.lines.pop_front();
        self.written = 0;
        true
    }

    /// The port was lost: the front line is sent again whole on the next one.
    pub(super) fn rewind(&mut self) {
        if self.written > 0 {
            self.written = 0;
            self.cut = true;
        }
    }
}
