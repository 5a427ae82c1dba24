//! The topic layout, in one place.

use super::names::level;

/// Topics of one edgevit instance: `<prefix>/<device>/...`.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, device: &str) -> Self {
        Topics {
            base: format!("{}/{}", prefix.trim_end_matches('/'), level(device)),
        }
    }

    /// Retained `online` / `offline` (last will) / `stopped`.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    /// Debounced `start` / `update` / `end` events of `camera`.
    pub fn event(&self, camera: &str) -> String {
        format!("{}/{}/event", self.base, level(camera))
    }

    /// Debounced `start` / `update` / `end` of the identities in `camera`'s ROIs.
    pub fn identity(&self, camera: &str) -> String {
        format!("{}/{}/identity", self.base, level(camera))
    }

    /// `recognized` / `left` of one named person at `camera`.
    pub fn person(&self, camera: &str, name: &str) -> String {
        format!("{}/{}/identity/{}", self.base, level(camera), level(name))
    }

    /// Retained: the latest recognised `object`'s crop (a JPEG) at `camera`.
    pub fn snapshot(&self, camera: &str, object: &str) -> String {
        format!("{}/{}/snapshot/{}", self.base, level(camera), level(object))
    }

    /// `camera`'s count of objects by label, when it changes.
    pub fn objects(&self, camera: &str) -> String {
        format!("{}/{}/objects", self.base, level(camera))
    }

    /// `new` / `update` / `end` of one tracked object of `camera`.
    pub fn object(&self, camera: &str, track: u64) -> String {
        format!("{}/{}/objects/{track}", self.base, level(camera))
    }

    /// Every tracked object's events of `camera` (a subscription).
    pub fn every_object(&self, camera: &str) -> String {
        format!("{}/{}/objects/+", self.base, level(camera))
    }

    /// Periodic statistics.
    pub fn stats(&self) -> String {
        format!("{}/stats", self.base)
    }

    /// `camera` going offline or coming back, in order with its results.
    pub fn camera_status(&self, camera: &str) -> String {
        format!("{}/{}/status", self.base, level(camera))
    }

    /// One JSON result per processed frame of `camera`.
    pub fn result(&self, camera: &str) -> String {
        format!("{}/{}/result", self.base, level(camera))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_wildcards_in_names() {
        let t = Topics::new("edgevit/", "door");
        assert_eq!(t.availability(), "edgevit/door/availability");
        assert_eq!(t.result("cam/1#"), "edgevit/door/cam_1_/result");
        let t = Topics::new("edgevit", "door\n1");
        assert_eq!(t.result("cam\nA"), "edgevit/door_1/cam_A/result");
    }
}
