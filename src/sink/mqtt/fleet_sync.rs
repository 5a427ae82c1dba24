//! The MQTT side of a fleet's shared gallery (see `gallery::fleet_merge` for the rules): this
//! board's identities go out retained on `<prefix>/gallery/<device>/<id>`, the other boards'
//! come in on `<prefix>/gallery/+/+` and are merged into the gallery file. The I/O thread owns
//! one of these; it opens the gallery file itself (SQLite orders its writes with the capture
//! loop's).

use super::fleet_check::{self, Refusal};
use crate::gallery::fleet_merge::{Applied, FleetIdentity};
use crate::gallery::{Gallery, GalleryConfig, GalleryError};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::gallery::fleet_merge::ANOTHER_MODEL;

/// A digest of one message, to know it when it comes back.
fn digest(topic: &str, payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (topic, payload).hash(&mut hasher);
    hasher.finish()
}

/// What a refusal means, for the one warning a board gets about it.
fn describe(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Malformed => "not a well-formed gallery message",
        Refusal::Oversized => "larger than any gallery message",
        Refusal::Lane => "published in the lane of a board that neither minted nor changed it",
        Refusal::Topic => "the topic names another identity than the message",
        Refusal::Format => "a gallery format this edgevit does not read: upgrade it",
        Refusal::Model => "another model's identity: the boards must run the same model",
    }
}

/// How often the gallery is looked at for changes to publish.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long after the broker accepted the subscription a stop waits, so that the retained
/// identities it sends are merged before we go (a short run would otherwise end unheard).
const SETTLE: Duration = Duration::from_millis(500);
/// How long our own messages may take to come back through our subscription. MQTT 3.1.1
/// gives no answer when a broker's ACL refuses a publish (Mosquitto acknowledges it and drops
/// it): a message that never comes back is how a board learns that it may not write its lane.
const ECHO_WAIT: Duration = Duration::from_secs(3);

/// What the sink needs to take part in a fleet: the gallery the ReID stage uses.
#[derive(Debug, Clone)]
pub struct FleetLink {
    pub gallery: PathBuf,
    pub config: GalleryConfig,
}

/// The fleet state of one I/O thread.
pub struct FleetSync {
    link: FleetLink,
    prefix: String,
    device: String,
    gallery: Option<Gallery>,
    /// What the broker holds of ours: id -> the message's fingerprint.
    published: HashMap<String, u64>,
    next_check: Instant,
    /// When the broker acknowledged the subscription of this session.
    subscribed_at: Option<Instant>,
    /// Messages heard before the capture loop created the gallery file: merged once it has.
    waiting: Vec<(String, FleetIdentity)>,
    /// Messages ignored since the last [`FleetSync::take_ignored`], by reason.
    ignored: Vec<Refusal>,
    /// (lane, reason) pairs already warned about: one warning each, then debug lines.
    warned: std::collections::HashSet<(String, &'static str)>,
    /// Digests of the messages published and not yet heard back, and when the first went.
    awaiting: std::collections::HashSet<u64>,
    awaiting_since: Option<Instant>,
    /// The broker never gave our messages back (said once per run).
    unheard_said: bool,
    /// Ids (as topic levels) of our retained messages the broker sent since the session began:
    /// those the gallery no longer speaks of are cleared.
    retained_ours: HashSet<String>,
}

impl FleetSync {
    pub fn new(link: FleetLink, prefix: &str, device: &str) -> Self {
        FleetSync {
            link,
            prefix: prefix.trim_end_matches('/').to_string(),
            device: device.to_string(),
            gallery: None,
            published: HashMap::new(),
            next_check: Instant::now(),
            subscribed_at: None,
            waiting: Vec::new(),
            ignored: Vec::new(),
            warned: Default::default(),
            awaiting: Default::default(),
            awaiting_since: None,
            unheard_said: false,
            retained_ours: HashSet::new(),
        }
    }

    /// Notes a message of ours that should come back through our subscription.
    fn sent(&mut self, topic: &str, payload: &[u8]) {
        self.awaiting.insert(digest(topic, payload));
        self.awaiting_since.get_or_insert_with(Instant::now);
    }

    /// One of our own came back: the broker takes what we write to our lane.
    fn heard_back(&mut self, topic: &str, payload: &[u8]) {
        if self.awaiting.contains(&digest(topic, payload)) {
            self.awaiting.clear();
            self.awaiting_since = None;
        }
    }

    /// The connection is closing: what has not come back by now will not; said as overdue.
    pub fn closing(&mut self) {
        if !self.awaiting.is_empty() {
            self.awaiting_since = Some(Instant::now() - ECHO_WAIT);
            self.unheard();
        }
    }

    /// Whether our messages are overdue; says so once per run.
    fn unheard(&mut self) -> bool {
        let overdue = self
            .awaiting_since
            .is_some_and(|at| at.elapsed() >= ECHO_WAIT);
        if overdue && !self.unheard_said {
            self.unheard_said = true;
            log::warn!(
                "mqtt: fleet: none of the {} gallery messages this board published to {}/gallery/{}/... came back from the broker: \
                 it does not let this client write there (an ACL: a board's MQTT user must be allowed its own device's lanes, \
                 see \"Each board in its own lane\" in docs/reid.md); the other boards will not hear of this board's identities",
                self.awaiting.len(),
                self.prefix,
                super::names::level(&self.device)
            );
        }
        overdue
    }

    /// The messages ignored since the last call (for the metrics).
    pub fn take_ignored(&mut self) -> Vec<Refusal> {
        std::mem::take(&mut self.ignored)
    }

    fn ignore(&mut self, lane: &str, topic: &str, refusal: Refusal) {
        self.ignored.push(refusal);
        if self.warned.insert((lane.to_string(), refusal.reason())) {
            log::warn!(
                "mqtt: fleet: ignoring {topic} ({}); further such messages from {lane} are logged at debug level",
                describe(refusal)
            );
        } else {
            log::debug!("mqtt: fleet: ignoring {topic} ({})", refusal.reason());
        }
    }

    /// Where every board's identities are.
    pub fn filter(&self) -> String {
        format!("{}/gallery/+/+", self.prefix)
    }

    fn topic(&self, id: &str) -> String {
        format!(
            "{}/gallery/{}/{}",
            self.prefix,
            super::names::level(&self.device),
            super::names::level(id)
        )
    }

    /// A new session: the broker may have lost what we published; say it all again.
    pub fn connected(&mut self) {
        self.published.clear();
        self.awaiting.clear();
        self.awaiting_since = None;
        self.next_check = Instant::now();
        self.subscribed_at = None;
        self.retained_ours.clear();
    }

    /// The broker acknowledged a subscription; its retained messages follow.
    pub fn subscribed(&mut self) {
        self.subscribed_at.get_or_insert_with(Instant::now);
    }

    /// The gallery, opened on first use (the capture loop creates the file).
    fn gallery(&mut self) -> Option<&mut Gallery> {
        if self.gallery.is_none() {
            match Gallery::open_existing(&self.link.gallery, &self.link.config) {
                Ok(mut gallery) => {
                    gallery.set_device(&self.device);
                    self.gallery = Some(gallery);
                }
                Err(GalleryError::Missing { .. }) => return None,
                Err(e) => {
                    log::warn!(
                        "mqtt: fleet: cannot open the gallery: {}",
                        crate::error::Report(&e)
                    );
                    return None;
                }
            }
        }
        self.gallery.as_mut()
    }

    /// Merges a message from the fleet; `false` when the topic is not a gallery topic.
    pub fn received(&mut self, topic: &str, payload: &[u8]) -> bool {
        let Some(rest) = topic.strip_prefix(&format!("{}/gallery/", self.prefix)) else {
            return false;
        };
        let Some((from, id_level)) = rest.split_once('/') else {
            return true;
        };
        // An empty payload clears a retained message; our own come back to us.
        if from == super::names::level(&self.device) {
            self.heard_back(topic, payload);
            if !payload.is_empty() {
                self.retained_ours.insert(id_level.to_string());
            }
            return true;
        }
        if payload.is_empty() {
            return true;
        }
        match fleet_check::check(from, id_level, payload) {
            Ok(message) => {
                self.waiting.push((from.to_string(), message));
                self.merge_waiting();
            }
            Err(refusal) => self.ignore(from, topic, refusal),
        }
        true
    }

    /// Merges what was heard, once the gallery file exists.
    fn merge_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.waiting);
        let Some(gallery) = self.gallery() else {
            self.waiting = waiting;
            return;
        };
        let mut other_models = Vec::new();
        for (from, message) in waiting {
            match gallery.apply_remote(&from, &message) {
                Ok(Applied::Ignored(why)) if why == ANOTHER_MODEL => {
                    other_models.push((from, message.id))
                }
                Ok(Applied::Ignored(why)) => {
                    log::debug!("fleet: {} from {from}: {why}", message.id)
                }
                Ok(applied) => log::info!("fleet: {} from {from}: {applied:?}", message.id),
                Err(e) => log::warn!(
                    "mqtt: fleet: cannot merge {} from {from}: {}",
                    message.id,
                    crate::error::Report(&e)
                ),
            }
        }
        for (from, id) in other_models {
            let topic = format!("{}/gallery/{from}/{id}", self.prefix);
            self.ignore(&from, &topic, Refusal::Model);
        }
    }

    /// Whether the fleet's retained identities have arrived and been merged, and our own
    /// came back (or are overdue: said, not waited for).
    pub fn settled(&mut self) -> bool {
        self.heard_ours()
            && self.waiting.is_empty()
            && self.subscribed_at.is_some_and(|at| at.elapsed() >= SETTLE)
    }

    /// Whether what we published came back (or is overdue, and said so): a stop waits for it
    /// after the last messages, as it waits for their acknowledgements.
    pub fn heard_ours(&mut self) -> bool {
        self.awaiting.is_empty() || self.unheard()
    }

    /// The retained messages to publish now: what changed since the last call (everything
    /// after a reconnect). `force` skips the wait between looks (a stop).
    pub fn due(&mut self, force: bool) -> Vec<(String, Vec<u8>)> {
        self.unheard();
        if !force && Instant::now() < self.next_check {
            return Vec::new();
        }
        self.next_check = Instant::now() + CHECK_EVERY;
        self.merge_waiting();
        self.gallery();
        let Some(gallery) = self.gallery.as_mut() else {
            return Vec::new();
        };
        // A look reads what the capture loop wrote since the last (every identified frame
        // writes); only the messages whose content changed are built and serialised.
        if let Err(e) = gallery.refresh() {
            log::warn!(
                "mqtt: fleet: cannot read the gallery: {}",
                crate::error::Report(&e)
            );
            return Vec::new();
        }
        let changed = gallery.fleet_changes(&self.published);
        let ids = gallery.fleet_ids();
        let mut out = Vec::new();
        for (message, print) in changed {
            let Ok(payload) = serde_json::to_string(&message) else {
                continue;
            };
            // Said once per content: an oversized message is not tried again every look.
            self.published.insert(message.id.clone(), print);
            if payload.len() + 512 > super::connection::MAX_PACKET {
                log::warn!(
                    "mqtt: fleet: {} is too large to publish ({} bytes)",
                    message.id,
                    payload.len()
                );
                continue;
            }
            let topic = self.topic(&message.id);
            self.sent(&topic, payload.as_bytes());
            out.push((topic, payload.into_bytes()));
        }
        out.extend(self.stale(&ids).into_iter().map(|t| (t, Vec::new())));
        out
    }

    /// The topics of our retained messages about ids the gallery no longer speaks of (an
    /// expired tombstone or identity; an identity another board renamed last, now in its
    /// lane): an empty retained message clears each, so that the broker holds one message per
    /// identity and nothing for ever.
    fn stale(&mut self, ids: &HashSet<String>) -> Vec<String> {
        let gone: Vec<String> = (self.published.keys())
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        let mut levels: HashSet<String> = std::mem::take(&mut self.retained_ours);
        for id in gone {
            self.published.remove(&id);
            levels.insert(super::names::level(&id));
        }
        let current: HashSet<String> = (ids.iter()).map(|id| super::names::level(id)).collect();
        let lane = format!(
            "{}/gallery/{}",
            self.prefix,
            super::names::level(&self.device)
        );
        let mut topics: Vec<String> = (levels.into_iter())
            .filter(|level| !current.contains(level))
            .map(|level| format!("{lane}/{level}"))
            .collect();
        topics.sort();
        for topic in &topics {
            log::debug!("mqtt: fleet: clearing {topic} (no longer this board's to say)");
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync() -> FleetSync {
        let link = FleetLink {
            gallery: PathBuf::from("/nonexistent/gallery.sqlite"),
            config: GalleryConfig::default(),
        };
        FleetSync::new(link, "edgevit/", "board-a")
    }

    /// What we published and the gallery no longer speaks of, and what the broker kept of ours
    /// from an earlier run that it no longer speaks of, is cleared; the rest stays.
    #[test]
    fn retained_messages_the_gallery_no_longer_speaks_of_are_cleared() {
        let mut fleet = sync();
        fleet.published.insert("id-board-a-000001".into(), 1);
        fleet.published.insert("id-board-a-000002".into(), 2);
        fleet.received("edgevit/gallery/board-a/id-board-a-000003", b"{}");
        fleet.received("edgevit/gallery/board-a/id-board-a-000004", b"{}");
        // An empty payload is a clearing already made: nothing to clear again.
        fleet.received("edgevit/gallery/board-a/id-board-a-000005", b"");
        let ids: HashSet<String> = ["id-board-a-000002", "id-board-a-000004"]
            .map(String::from)
            .into();
        assert_eq!(
            fleet.stale(&ids),
            [
                "edgevit/gallery/board-a/id-board-a-000001",
                "edgevit/gallery/board-a/id-board-a-000003"
            ]
        );
        assert!(!fleet.published.contains_key("id-board-a-000001"));
        assert!(fleet.published.contains_key("id-board-a-000002"));
        // Said once: the next look has nothing to clear.
        assert!(fleet.stale(&ids).is_empty());
    }
}
