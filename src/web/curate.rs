//! The gallery as the page sees and changes it: the same `Gallery` calls as `edgevit gallery`
//! (list, rename, merge, forget), on a connection of the page's own, so that the capture loop
//! and the fleet sync pick the change up as they do a command's.

use crate::gallery::{Gallery, GalleryConfig, GalleryError, IdentitySummary};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

    /// The body field a change reads: the new name, the identity to merge in; none to forget.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Change::Rename => Some("name"),
            Change::Merge => Some("with"),
            Change::Forget => None,
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

/// The page's own connection to the gallery file, opened at the first request and kept: each
/// request only picks up what others committed since (`Gallery::refresh`, which reloads when
/// the file changed), instead of loading every embedding again for each thumbnail.
pub struct GalleryAccess {
    path: PathBuf,
    /// The board's name in its fleet: changes made here carry it.
    device: Option<String>,
    open: Mutex<Option<Gallery>>,
}

impl GalleryAccess {
    pub fn new(path: PathBuf, device: Option<String>) -> Self {
        GalleryAccess {
            path,
            device,
            open: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `use_it` on the gallery as it is now on disk.
    pub fn with<T>(
        &self,
        use_it: impl FnOnce(&mut Gallery) -> Result<T, GalleryError>,
    ) -> Result<T, GalleryError> {
        let mut open = crate::sync::lock(&self.open);
        if let Some(gallery) = open.as_mut() {
            gallery.refresh()?;
        } else {
            let mut gallery = Gallery::open_existing(&self.path, &GalleryConfig::default())?;
            if let Some(device) = &self.device {
                gallery.set_device(device);
            }
            *open = Some(gallery);
        }
        let gallery = open.as_mut().ok_or_else(|| GalleryError::Missing {
            path: self.path.clone(),
        })?;
        use_it(gallery)
    }
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
