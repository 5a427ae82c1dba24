//! Home Assistant MQTT discovery: one device per edgevit instance and, per camera, a sensor for
//! the current label, a sensor for its score and an event entity; for a camera whose objects a
//! detector finds, an occupancy binary sensor and a count per label seen, an object event entity
//! and, with ReID, the last identity seen. Payloads follow
//! <https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery> (sensor and event
//! platforms); all are retained and re-sent on every connect and whenever Home Assistant
//! announces `online` on `<prefix>/status`.

use super::names::level;
use super::topics::Topics;
use crate::model::Task;
use serde::Deserialize;

/// What a camera's records report, and so which entities announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reports {
    /// The top class of each frame.
    Classes,
    /// The identities in fixed regions.
    Identities,
    /// Objects a detector found: the labels seen so far, whether they carry identities, and
    /// the named people recognised so far (each gets an event entity).
    Objects {
        labels: Vec<String>,
        identities: bool,
        people: Vec<String>,
    },
}

impl Reports {
    /// What a whole-frame model of `task` reports.
    pub fn of(task: Task) -> Self {
        match task {
            Task::Reid => Reports::Identities,
            _ => Reports::Classes,
        }
    }
}
use serde_json::{json, Value};

/// `[sink.discovery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Publish Home Assistant discovery messages.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Home Assistant's discovery prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_enabled() -> bool {
    true
}
fn default_prefix() -> String {
    "homeassistant".into()
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: default_enabled(),
            prefix: default_prefix(),
        }
    }
}

impl DiscoveryConfig {
    /// Where Home Assistant announces its restarts.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }
}

/// The retained (topic, payload) discovery messages for one camera.
pub fn camera_messages(
    config: &DiscoveryConfig,
    topics: &Topics,
    device: &str,
    camera: &str,
    reports: &Reports,
) -> Vec<(String, Value)> {
    let node = format!("edgevit_{}", level(device));
    let object = level(camera);
    let device_block = json!({
        "identifiers": [node],
        "name": format!("edgevit {device}"),
        "manufacturer": "edgevit",
        "model": "edgevit",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    // "stopped" (a clean stop) must read as unavailable too, not as an unknown payload.
    let availability = json!([{
        "topic": topics.availability(),
        "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
    }]);
    let result = topics.result(camera);
    let entity = |platform: &str, suffix: &str, name: String, mut fields: Value| {
        let unique_id = format!("{node}_{object}_{suffix}");
        if let Some(map) = fields.as_object_mut() {
            map.insert("name".into(), json!(name));
            map.insert("unique_id".into(), json!(unique_id));
            map.insert("object_id".into(), json!(unique_id));
            map.insert("availability".into(), availability.clone());
            map.insert("device".into(), device_block.clone());
        }
        (
            format!(
                "{}/{platform}/{node}/{object}_{suffix}/config",
                config.prefix
            ),
            fields,
        )
    };
    if let Reports::Objects {
        labels,
        identities,
        people,
    } = reports
    {
        let mut messages = object_entities(topics, camera, labels, entity);
        if *identities {
            messages.extend(recognition_entities(topics, camera, people, &entity));
            for label in labels {
                messages.push(entity(
                    "camera",
                    &format!("{}_snapshot", slug(label)),
                    format!("{camera} {label} snapshot"),
                    json!({ "topic": topics.snapshot(camera, label) }),
                ));
            }
        }
        return messages;
    }
    if *reports == Reports::Identities {
        let identity = topics.identity(camera);
        return vec![
            entity(
                "sensor",
                "identity",
                format!("{camera} last identity"),
                json!({
                    "state_topic": identity,
                    "value_template": "{{ value_json.label }}",
                    "json_attributes_topic": identity,
                    "icon": "mdi:account-search",
                }),
            ),
            entity(
                "event",
                "identity_event",
                format!("{camera} identity event"),
                json!({
                    "state_topic": identity,
                    "event_types": ["start", "update", "end"],
                }),
            ),
        ];
    }
    vec![
        entity(
            "sensor",
            "label",
            format!("{camera} label"),
            json!({
                "state_topic": result,
                "value_template": "{{ value_json.top[0].label if value_json.top else 'none' }}",
                "json_attributes_topic": result,
                "icon": "mdi:tag-search",
            }),
        ),
        entity(
            "sensor",
            "score",
            format!("{camera} score"),
            json!({
                "state_topic": result,
                "value_template": "{{ value_json.top[0].score if value_json.top else 0 }}",
                "state_class": "measurement",
            }),
        ),
        entity(
            "event",
            "event",
            format!("{camera} event"),
            json!({
                "state_topic": topics.event(camera),
                "event_types": ["start", "update", "end"],
            }),
        ),
    ]
}

/// A scene camera's entities: per label an occupancy binary sensor and a count; an event
/// entity for its objects' events.
fn object_entities(
    topics: &Topics,
    camera: &str,
    labels: &[String],
    entity: impl Fn(&str, &str, String, Value) -> (String, Value),
) -> Vec<(String, Value)> {
    let counts = topics.objects(camera);
    let every = topics.every_object(camera);
    let mut messages = Vec::new();
    for label in labels {
        let slug = slug(label);
        // The label inside the template is a JSON string: quotes and braces stay data.
        let key = serde_json::to_string(label).unwrap_or_default();
        messages.push(entity(
            "binary_sensor",
            &format!("{slug}_occupancy"),
            format!("{camera} {label} occupancy"),
            json!({
                "state_topic": counts,
                "value_template": format!("{{{{ 'ON' if (value_json[{key}] | default(0)) > 0 else 'OFF' }}}}"),
                "device_class": "occupancy",
            }),
        ));
        messages.push(entity(
            "sensor",
            &format!("{slug}_count"),
            format!("{camera} {label} count"),
            json!({
                "state_topic": counts,
                "value_template": format!("{{{{ value_json[{key}] | default(0) }}}}"),
                "state_class": "measurement",
            }),
        ));
    }
    messages.push(entity(
        "event",
        "object_event",
        format!("{camera} object event"),
        json!({ "state_topic": every, "event_types": ["new", "update", "end"] }),
    ));
    messages
}

/// A ReID scene camera's entities: the last person it recognised (a name, else an id), an
/// event entity for its recognitions, and one per named person recognised there ("Grace Hopper
/// at door").
fn recognition_entities(
    topics: &Topics,
    camera: &str,
    people: &[String],
    entity: &impl Fn(&str, &str, String, Value) -> (String, Value),
) -> Vec<(String, Value)> {
    let identity = topics.identity(camera);
    let mut messages = vec![
        entity(
            "sensor",
            "last_identity",
            format!("{camera} last recognised person"),
            json!({
                "state_topic": identity,
                "value_template": "{{ value_json.label if value_json.type == 'recognized' else this.state }}",
                "json_attributes_topic": identity,
                "icon": "mdi:account-search",
            }),
        ),
        entity(
            "event",
            "recognition",
            format!("{camera} recognition"),
            json!({ "state_topic": identity, "event_types": ["recognized", "left"] }),
        ),
    ];
    for name in people {
        messages.push(entity(
            "event",
            &format!("{}_seen", slug(name)),
            format!("{name} at {camera}"),
            json!({
                "state_topic": topics.person(camera, name),
                "event_types": ["recognized", "left"],
                "icon": "mdi:account-check",
            }),
        ));
    }
    messages
}

/// A label as a piece of an entity id: lower case letters, digits and `_`.
fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_unique_ids_availability_and_one_device() {
        let topics = Topics::new("edgevit", "door");
        let config = DiscoveryConfig::default();
        let mut messages = camera_messages(&config, &topics, "door", "cam0", &Reports::Classes);
        messages.extend(camera_messages(
            &config,
            &topics,
            "door",
            "cam1",
            &Reports::Classes,
        ));
        messages.extend(camera_messages(
            &config,
            &topics,
            "door",
            "cam2",
            &Reports::Identities,
        ));
        let ids: std::collections::HashSet<&str> = messages
            .iter()
            .map(|(_, p)| p["unique_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 8, "unique ids");
        for (topic, payload) in &messages {
            assert!(
                topic.starts_with("homeassistant/") && topic.ends_with("/config"),
                "{topic}"
            );
            assert_eq!(
                payload["availability"][0]["topic"],
                "edgevit/door/availability"
            );
            assert_eq!(payload["device"]["identifiers"][0], "edgevit_door");
            assert!(payload["state_topic"]
                .as_str()
                .unwrap()
                .starts_with("edgevit/door/cam"));
        }
        let (topic, event) = &messages[2];
        assert_eq!(topic, "homeassistant/event/edgevit_door/cam0_event/config");
        assert_eq!(event["event_types"], json!(["start", "update", "end"]));
        assert_eq!(event["state_topic"], "edgevit/door/cam0/event");
        let (topic, identity) = &messages[6];
        assert_eq!(
            topic,
            "homeassistant/sensor/edgevit_door/cam2_identity/config"
        );
        assert_eq!(identity["state_topic"], "edgevit/door/cam2/identity");
    }

    #[test]
    fn a_scene_camera_gets_occupancy_and_counts_per_label_and_its_recognitions() {
        let topics = Topics::new("edgevit", "door");
        let reports = Reports::Objects {
            labels: vec!["person".into(), "traffic light".into()],
            identities: true,
            people: vec!["Grace Hopper".into()],
        };
        let messages = camera_messages(
            &DiscoveryConfig::default(),
            &topics,
            "door",
            "cam0",
            &reports,
        );
        let topics_of: Vec<&str> = messages.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics_of,
            [
                "homeassistant/binary_sensor/edgevit_door/cam0_person_occupancy/config",
                "homeassistant/sensor/edgevit_door/cam0_person_count/config",
                "homeassistant/binary_sensor/edgevit_door/cam0_traffic_light_occupancy/config",
                "homeassistant/sensor/edgevit_door/cam0_traffic_light_count/config",
                "homeassistant/event/edgevit_door/cam0_object_event/config",
                "homeassistant/sensor/edgevit_door/cam0_last_identity/config",
                "homeassistant/event/edgevit_door/cam0_recognition/config",
                "homeassistant/event/edgevit_door/cam0_grace_hopper_seen/config",
                "homeassistant/camera/edgevit_door/cam0_person_snapshot/config",
                "homeassistant/camera/edgevit_door/cam0_traffic_light_snapshot/config",
            ]
        );
        let occupancy = &messages[2].1;
        assert_eq!(occupancy["state_topic"], "edgevit/door/cam0/objects");
        assert_eq!(
            occupancy["value_template"],
            "{{ 'ON' if (value_json[\"traffic light\"] | default(0)) > 0 else 'OFF' }}"
        );
        assert_eq!(messages[5].1["state_topic"], "edgevit/door/cam0/identity");
        assert_eq!(messages[5].1["name"], "cam0 last recognised person");
        let person = &messages[7].1;
        assert_eq!(person["name"], "Grace Hopper at cam0");
        assert_eq!(
            person["state_topic"],
            "edgevit/door/cam0/identity/Grace Hopper"
        );
        assert_eq!(person["event_types"], json!(["recognized", "left"]));
        assert_eq!(messages[8].1["topic"], "edgevit/door/cam0/snapshot/person");
    }
}
