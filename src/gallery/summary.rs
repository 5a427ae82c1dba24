//! One line per identity, as `edgevit gallery list --json` prints it and the web page's
//! `/api/gallery` serves it: the stored identity with its counts and sightings.

use super::{Gallery, GalleryError, Identity};

/// An identity with what the gallery holds of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentitySummary {
    #[serde(flatten)]
    pub identity: Identity,
    /// Embeddings kept to match it.
    pub exemplars: usize,
    /// Crops kept to show who it is.
    pub thumbnails: usize,
    /// The cameras that saw it.
    pub sightings: Vec<Sighting>,
}

/// How often one camera saw an identity.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sighting {
    pub camera: String,
    pub count: i64,
    pub last_seen_ms: i64,
}

impl Gallery {
    /// Every identity with its counts and sightings, in id order.
    pub fn summaries(&self) -> Result<Vec<IdentitySummary>, GalleryError> {
        self.identities()
            .map(|identity| self.summary_of(identity))
            .collect()
    }

    /// One identity, by id or name.
    pub fn summary(&self, who: &str) -> Result<IdentitySummary, GalleryError> {
        let key = self.find(who)?;
        let identity = (self.identities())
            .find(|i| i.key == key)
            .ok_or_else(|| GalleryError::NotFound(who.to_string()))?;
        self.summary_of(identity)
    }

    fn summary_of(&self, identity: &Identity) -> Result<IdentitySummary, GalleryError> {
        let id = identity.id();
        Ok(IdentitySummary {
            identity: identity.clone(),
            exemplars: self.index.embeddings(identity.key).count(),
            thumbnails: self.thumbnail_count(&id)?,
            sightings: (self.sightings(&id)?.into_iter())
                .map(|(camera, count, last_seen_ms)| Sighting {
                    camera,
                    count,
                    last_seen_ms,
                })
                .collect(),
        })
    }
}
