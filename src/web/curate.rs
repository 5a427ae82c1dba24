//! The gallery as the page sees and changes it: the same `Gallery` calls as `edgevit gallery`
//! (list, rename, merge, forget), on a connection of the page's own, so that the capture loop
//! and the fleet sync pick the change up as they do a command's.

use crate::gallery::{Gallery, GalleryConfig, GalleryError, IdentitySummary};
use std::path::Path;

/// A change asked for by the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Rename,
    Merge,
    Forget,
}

impl Change {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "rename" => Some(Change::Rename),
            "merge" => Some(Change::Merge),
            "forget" => Some(Change::Forget),
            _ => None,
        }
    }

    /// What the gallery page says after a form's redirect (which names only the id).
    pub fn done_to(self, id: &str) -> String {
        match self {
            Change::Rename => format!("{id} renamed"),
            Change::Merge => format!("merged into {id}"),
            Change::Forget => format!("{id} forgotten"),
        }
    }

    /// What the API answers once it is done.
    pub fn done(self, id: &str, detail: &str) -> String {
        match self {
            Change::Rename => format!("{id} is now {detail:?}"),
            Change::Merge => format!("{detail} merged into {id}"),
            Change::Forget => format!("{id} forgotten"),
        }
    }
}

/// The HTTP status of a gallery error: the user's mistake, or ours.
pub fn status_of(error: &GalleryError) -> u16 {
    match error {
        GalleryError::NotFound(_) | GalleryError::Missing { .. } => 404,
        GalleryError::NameTaken { .. } | GalleryError::Conflict(_) => 409,
        _ => 500,
    }
}

/// Opens the gallery file, as this board (`device`) when it is in a fleet.
pub fn open(path: &Path, device: Option<&str>) -> Result<Gallery, GalleryError> {
    let mut gallery = Gallery::open_existing(path, &GalleryConfig::default())?;
    if let Some(device) = device {
        gallery.set_device(device);
    }
    Ok(gallery)
}

/// Every identity, named ones first, then by id.
pub fn identities(gallery: &Gallery) -> Result<Vec<IdentitySummary>, GalleryError> {
    let mut all = gallery.summaries()?;
    all.sort_by(|a, b| {
        (a.identity.name.is_none(), &a.identity.label)
            .cmp(&(b.identity.name.is_none(), &b.identity.label))
    });
    Ok(all)
}

/// Applies `change` to identity `who`; `value` is the new name (rename) or the identity
/// merged into `who` (merge). Returns the id that remains and the message to show.
pub fn apply(
    gallery: &mut Gallery,
    change: Change,
    who: &str,
    value: Option<&str>,
) -> Result<(String, String), GalleryError> {
    let needed = |what: &str| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| GalleryError::Conflict(format!("{what} is missing")))
    };
    match change {
        Change::Rename => {
            let name = needed("the new name (field `name`)")?;
            let id = gallery.rename(who, &name)?;
            Ok((id.clone(), change.done(&id, &name)))
        }
        Change::Merge => {
            let other = needed("the identity to merge (field `with`)")?;
            let kept = gallery.merge(who, &other)?;
            Ok((kept.clone(), change.done(&kept, &other)))
        }
        Change::Forget => {
            let id = gallery.forget(who)?;
            Ok((id.clone(), change.done(&id, "")))
        }
    }
}
