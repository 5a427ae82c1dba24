//! Which spool entries are in flight, and which are acknowledged: the protocol state of the
//! MQTT sink, kept apart from the loop that drives the connection.
//!
//! rumqttc reports each publish it sends as `Outgoing::Publish(pkid)`, in the order the
//! requests were made, and each broker acknowledgement as `PubAck(pkid)`. Requests are tagged
//! in order, so a packet id maps back to the spool entry it carried.

use crate::sink::spool::EntryId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// What a publish request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// A spooled result.
    Entry(EntryId),
    /// Availability or another control message, not spooled.
    Control,
}

#[derive(Debug, Default)]
pub struct Delivery {
    /// Requests made and not yet seen leaving, in order.
    requested: VecDeque<Carried>,
    /// Packet id -> entry, for entries sent and not yet acknowledged.
    sent: HashMap<u16, EntryId>,
    /// In-flight entries in spool order, with whether the broker has acknowledged them.
    in_flight: BTreeMap<EntryId, bool>,
    /// The newest entry requested: the next read from the spool starts after it.
    last_requested: Option<EntryId>,
    /// Packet ids of control messages sent and not yet acknowledged.
    control_sent: HashSet<u16>,
}

impl Delivery {
    /// Forgets everything in flight (a new connection): delivery restarts at the spool cursor.
    pub fn reset(&mut self) {
        *self = Delivery::default();
    }

    pub fn last_requested(&self) -> Option<EntryId> {
        self.last_requested
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn requested(&mut self, carried: Carried) {
        if let Carried::Entry(id) = carried {
            self.in_flight.insert(id, false);
            self.last_requested = Some(id);
        }
        self.requested.push_back(carried);
    }

    /// A publish left with `pkid` (0 for QoS 0).
    pub fn sent(&mut self, pkid: u16) {
        match self.requested.pop_front() {
            Some(Carried::Entry(id)) => {
                self.sent.insert(pkid, id);
            }
            Some(Carried::Control) => {
                self.control_sent.insert(pkid);
            }
            None => {}
        }
    }

    /// Control messages (availability, the fleet's identities, statistics) requested or sent
    /// and not yet acknowledged: a clean stop waits for them, so that the DISCONNECT cannot cut
    /// them off.
    pub fn controls_in_flight(&self) -> usize {
        let queued = self
            .requested
            .iter()
            .filter(|c| **c == Carried::Control)
            .count();
        queued + self.control_sent.len()
    }

    /// The broker acknowledged `pkid`. Returns the newest entry up to which everything is now
    /// acknowledged, if that moved.
    pub fn acknowledged(&mut self, pkid: u16) -> Option<EntryId> {
        if self.control_sent.remove(&pkid) {
            return None;
        }
        let id = self.sent.remove(&pkid)?;
        if let Some(done) = self.in_flight.get_mut(&id) {
            *done = true;
        }
        self.release()
    }

    /// An entry that will not be sent (set aside): done, in its place in the spool's order.
    /// Returns what `acknowledged` returns.
    pub fn skipped(&mut self, id: EntryId) -> Option<EntryId> {
        self.in_flight.insert(id, true);
        self.last_requested = Some(id);
        self.release()
    }

    /// Takes the done entries off the front; the newest of them, if any.
    fn release(&mut self) -> Option<EntryId> {
        let mut through = None;
        while let Some((&first, &done)) = self.in_flight.iter().next() {
            if !done {
                break;
            }
            self.in_flight.remove(&first);
            through = Some(first);
        }
        through
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_out_of_order_release_in_spool_order() {
        let (a, b, c) = (EntryId::at(1, 0), EntryId::at(1, 10), EntryId::at(2, 0));
        let mut d = Delivery::default();
        d.requested(Carried::Control);
        d.requested(Carried::Entry(a));
        d.requested(Carried::Entry(b));
        d.requested(Carried::Entry(c));
        for pkid in [1, 2, 3, 4] {
            d.sent(pkid);
        }
        assert_eq!(d.in_flight(), 3);
        assert_eq!(
            d.acknowledged(1),
            None,
            "the control message is not an entry"
        );
        assert_eq!(d.acknowledged(3), None, "b waits for a");
        assert_eq!(d.acknowledged(2), Some(b), "a and b are now both done");
        assert_eq!(d.acknowledged(4), Some(c));
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.last_requested(), Some(c));
        assert_eq!(d.acknowledged(4), None, "a duplicate ack changes nothing");
    }

    #[test]
    fn a_skipped_entry_waits_for_those_before_it() {
        let (a, b, c) = (EntryId::at(1, 0), EntryId::at(1, 10), EntryId::at(1, 20));
        let mut d = Delivery::default();
        d.requested(Carried::Entry(a));
        d.sent(1);
        assert_eq!(d.skipped(b), None, "b is done, but a is not yet");
        assert_eq!(d.last_requested(), Some(b));
        assert_eq!(d.acknowledged(1), Some(b));
        assert_eq!(d.skipped(c), Some(c), "nothing before c is in flight");
        assert_eq!(d.in_flight(), 0);
    }

    #[test]
    fn control_messages_are_counted_until_acknowledged() {
        let mut d = Delivery::default();
        d.requested(Carried::Control);
        d.requested(Carried::Entry(EntryId::at(1, 0)));
        d.requested(Carried::Control);
        assert_eq!(d.controls_in_flight(), 2, "requested, not yet sent");
        for pkid in [1, 2, 3] {
            d.sent(pkid);
        }
        assert_eq!(d.controls_in_flight(), 2);
        assert_eq!(d.acknowledged(3), None);
        assert_eq!(d.controls_in_flight(), 1);
        assert_eq!(d.acknowledged(2), Some(EntryId::at(1, 0)));
        assert_eq!(d.acknowledged(1), None);
        assert_eq!(d.controls_in_flight(), 0);
    }

    #[test]
    fn reset_forgets_what_was_in_flight() {
        let mut d = Delivery::default();
        d.requested(Carried::Entry(EntryId::at(1, 0)));
        d.sent(7);
        d.reset();
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.last_requested(), None);
        assert_eq!(d.acknowledged(7), None);
    }
}
