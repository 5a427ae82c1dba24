//! The gallery file: an SQLite database (rusqlite, SQLite bundled and built from source).
//!
//! Why SQLite: every change is a transaction in a write-ahead log, so a SIGKILL or a power cut
//! at any moment leaves the last committed state and never a torn file; other processes
//! (`edgevit gallery ...`) can change it while the service runs, and `PRAGMA data_version`
//! tells the service when they did; it is one file that `sqlite3` opens for inspection.

use super::index::{from_blob, to_blob};
use super::{GalleryError, Identity};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// `PRAGMA application_id` of an edgevit gallery ("EVIT"): tells our file from other SQLite files.
const APPLICATION_ID: i32 = 0x4556_4954;
/// `PRAGMA user_version`: the schema's version (2 added the thumbnails; 3 made exemplar ids
/// never reused, so that a reader can tell a new exemplar from one it has by its id alone; older
/// files are brought up to date when opened).
const SCHEMA_VERSION: i32 = 3;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identity (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    name TEXT,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    confirmed INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    last_camera TEXT
);
CREATE TABLE exemplar (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity INTEGER NOT NULL REFERENCES identity(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    camera TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE INDEX exemplar_identity ON exemplar(identity);
CREATE TABLE tombstone (
    label TEXT PRIMARY KEY,
    merged_into TEXT,
    ts_ms INTEGER NOT NULL,
    by TEXT NOT NULL
);
CREATE TABLE sighting (
    identity INTEGER NOT NULL REFERENCES identity(id) ON DELETE CASCADE,
    camera TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (identity, camera)
);
";

/// The model a gallery was built with: embeddings of another model cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStamp {
    pub name: String,
    pub dim: usize,
}

/// One stored exemplar.
pub struct StoredExemplar {
    pub row: i64,
    pub identity: i64,
    pub embedding: Vec<f32>,
}

/// Everything in a gallery file.
pub struct Contents {
    pub identities: Vec<Identity>,
    pub exemplars: Vec<StoredExemplar>,
    pub tombstones: Vec<Tombstone>,
}

/// An identity that was forgotten, or merged into another: kept so that the fleet hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub label: String,
    /// The identity it became one with; `None`: forgotten.
    pub merged_into: Option<String>,
    pub ts_ms: i64,
    /// The device that forgot or merged it.
    pub by: String,
}

/// An open gallery file.
pub struct Store {
    path: PathBuf,
    pub(super) connection: Connection,
    /// `PRAGMA data_version` after our last read: it changes when another process commits.
    seen_version: i64,
}

impl Store {
    /// Opens the gallery at `path`, creating it for `model` when the file is absent or empty.
    /// `model = None` opens an existing gallery for any model (list, rename, merge, forget).
    pub fn open(
        path: &Path,
        model: Option<&ModelStamp>,
    ) -> Result<(Store, ModelStamp), GalleryError> {
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        if fresh && model.is_none() {
            return Err(GalleryError::Missing {
                path: path.to_path_buf(),
            });
        }
        let sql = |source| GalleryError::Sql {
            path: path.to_path_buf(),
            source,
        };
        let unreadable = |source: rusqlite::Error| classify_open_error(path, source);
        if fresh {
            // The state directory may not exist yet (outside systemd's StateDirectory=).
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| GalleryError::Create {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
        let connection = Connection::open(path).map_err(unreadable)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        // The first read of the file: a file that is not SQLite fails here.
        let application_id: i32 = connection
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(unreadable)?;
        let tables: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(unreadable)?;
        if application_id != APPLICATION_ID && (tables > 0 || application_id != 0) {
            return Err(GalleryError::Foreign {
                path: path.to_path_buf(),
                why: format!(
                    "an SQLite database of another application (application_id {application_id:#x}, {tables} tables)"
                ),
            });
        }
        let check: String = connection
            .pragma_query_value(None, "quick_check", |r| r.get(0))
            .map_err(unreadable)?;
        if check != "ok" {
            return Err(GalleryError::Corrupt {
                path: path.to_path_buf(),
                why: check,
            });
        }
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        // In WAL mode NORMAL survives a crash of the process at any point; a power cut may
        // lose the last transactions but leaves a consistent file.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        let mut store = Store {
            path: path.to_path_buf(),
            connection,
            seen_version: 0,
        };
        let stamp = if application_id == 0 {
            let model = model.ok_or_else(|| GalleryError::Missing {
                path: path.to_path_buf(),
            })?;
            store.create(model)?;
            model.clone()
        } else {
            store.check_schema()?;
            let stamp = store.stamp()?;
            if let Some(model) = model {
                if *model != stamp {
                    return Err(GalleryError::ModelMismatch {
                        path: path.to_path_buf(),
                        gallery: stamp,
                        model: model.clone(),
                    });
                }
            }
            stamp
        };
        store.seen_version = store.data_version()?;
        Ok((store, stamp))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        |source| GalleryError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn create(&mut self, model: &ModelStamp) -> Result<(), GalleryError> {
        let path = self.path.clone();
        let sql = |source| GalleryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(sql)?;
        tx.execute_batch(SCHEMA).map_err(sql)?;
        tx.execute_batch(super::thumbnails::SCHEMA).map_err(sql)?;
        for (key, value) in [
            ("format", "edgevit-gallery".to_string()),
            ("model", model.name.clone()),
            ("dim", model.dim.to_string()),
            ("next_id", "1".to_string()),
        ] {
            tx.execute("INSERT INTO meta VALUES (?1, ?2)", params![key, value])
                .map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql)?;
        // Last: a file with our application id always has the whole schema.
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    fn check_schema(&self) -> Result<(), GalleryError> {
        let mut version: i32 = self
            .connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sql())?;
        if version == 1 {
            self.connection
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {}; PRAGMA user_version = 2; COMMIT;",
                    super::thumbnails::SCHEMA
                ))
                .map_err(self.sql())?;
            version = 2;
        }
        if version == 2 {
            // AUTOINCREMENT cannot be added to a table: it is made anew with the same rows.
            self.connection
                .execute_batch(
                    "BEGIN IMMEDIATE;
                     CREATE TABLE exemplar_v3 (
                         id INTEGER PRIMARY KEY AUTOINCREMENT,
                         identity INTEGER NOT NULL REFERENCES identity(id) ON DELETE CASCADE,
                         embedding BLOB NOT NULL,
                         camera TEXT NOT NULL,
                         ts_ms INTEGER NOT NULL
                     );
                     INSERT INTO exemplar_v3 SELECT id, identity, embedding, camera, ts_ms FROM exemplar;
                     DROP TABLE exemplar;
                     ALTER TABLE exemplar_v3 RENAME TO exemplar;
                     CREATE INDEX exemplar_identity ON exemplar(identity);
                     PRAGMA user_version = 3;
                     COMMIT;",
                )
                .map_err(self.sql())?;
            version = 3;
        }
        if version != SCHEMA_VERSION {
            return Err(GalleryError::Foreign {
                path: self.path.clone(),
                why: format!(
                    "gallery schema version {version}, this edgevit reads version {SCHEMA_VERSION}"
                ),
            });
        }
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<String, GalleryError> {
        self.connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.sql())?
            .ok_or_else(|| GalleryError::Corrupt {
                path: self.path.clone(),
                why: format!("its meta table has no {key:?}"),
            })
    }

    fn stamp(&self) -> Result<ModelStamp, GalleryError> {
        let dim = self.meta("dim")?;
        Ok(ModelStamp {
            name: self.meta("model")?,
            dim: dim.parse().map_err(|_| GalleryError::Corrupt {
                path: self.path.clone(),
                why: format!("its embedding size {dim:?} is not a number"),
            })?,
        })
    }

    fn data_version(&self) -> Result<i64, GalleryError> {
        self.connection
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(self.sql())
    }

    /// Whether another process committed a change since our last look.
    pub fn changed_elsewhere(&mut self) -> Result<bool, GalleryError> {
        let version = self.data_version()?;
        let changed = version != self.seen_version;
        self.seen_version = version;
        Ok(changed)
    }

    /// Reads every identity and exemplar.
    pub fn load(&self, dim: usize) -> Result<Contents, GalleryError> {
        let rows: Vec<i64> = self
            .exemplar_rows()?
            .into_iter()
            .map(|(row, _)| row)
            .collect();
        Ok(Contents {
            identities: self.identities()?,
            exemplars: self.exemplars(&rows, dim)?,
            tombstones: self.tombstones()?,
        })
    }

    /// Every identity, without its exemplars.
    pub fn identities(&self) -> Result<Vec<Identity>, GalleryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT id, label, origin, name, updated_ms, updated_by, confirmed, hits, created_ms, last_seen_ms, last_camera FROM identity ORDER BY id",
            )
            .map_err(self.sql())?;
        statement
            .query_map([], |r| {
                Ok(Identity {
                    key: r.get(0)?,
                    label: r.get(1)?,
                    origin: r.get(2)?,
                    name: r.get(3)?,
                    updated_ms: r.get(4)?,
                    updated_by: r.get(5)?,
                    confirmed: r.get(6)?,
                    hits: r.get(7)?,
                    created_ms: r.get(8)?,
                    last_seen_ms: r.get(9)?,
                    last_camera: r.get(10)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.sql())
    }

    /// Each exemplar's row id and identity, without its embedding: read from the index on
    /// `identity`, so it costs a fraction of reading the embeddings.
    pub fn exemplar_rows(&self) -> Result<Vec<(i64, i64)>, GalleryError> {
        let mut statement = self
            .connection
            .prepare("SELECT id, identity FROM exemplar ORDER BY id")
            .map_err(self.sql())?;
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.sql())
    }

    /// The exemplars stored as `rows` (rows that are gone are skipped).
    pub fn exemplars(&self, rows: &[i64], dim: usize) -> Result<Vec<StoredExemplar>, GalleryError> {
        let sql = self.sql();
        let mut statement = self
            .connection
            .prepare_cached("SELECT identity, embedding FROM exemplar WHERE id = ?1")
            .map_err(&sql)?;
        let mut exemplars = Vec::with_capacity(rows.len());
        for &row in rows {
            let found = statement
                .query_row([row], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
                .map_err(&sql)?;
            let Some((identity, blob)) = found else {
                continue;
            };
            let embedding = from_blob(&blob, dim).ok_or_else(|| GalleryError::Corrupt {
                path: self.path.clone(),
                why: format!(
                    "exemplar {row} holds {} bytes, not {dim} numbers",
                    blob.len()
                ),
            })?;
            exemplars.push(StoredExemplar {
                row,
                identity,
                embedding,
            });
        }
        Ok(exemplars)
    }

    /// Every tombstone.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>, GalleryError> {
        let mut statement = self
            .connection
            .prepare("SELECT label, merged_into, ts_ms, by FROM tombstone ORDER BY label")
            .map_err(self.sql())?;
        statement
            .query_map([], |r| {
                Ok(Tombstone {
                    label: r.get(0)?,
                    merged_into: r.get(1)?,
                    ts_ms: r.get(2)?,
                    by: r.get(3)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.sql())
    }

    /// Runs `change` in one transaction: all of it is stored, or none.
    pub fn write<T>(
        &mut self,
        change: impl FnOnce(&Writer) -> rusqlite::Result<T>,
    ) -> Result<T, GalleryError> {
        let path = self.path.clone();
        let sql = |source| GalleryError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(sql)?;
        let value = change(&Writer { tx: &tx }).map_err(sql)?;
        tx.commit().map_err(sql)?;
        // Our own commits do not change data_version for us; nothing to reload.
        Ok(value)
    }
}

/// The writes of one transaction.
pub struct Writer<'a> {
    pub(super) tx: &'a rusqlite::Transaction<'a>,
}

impl Writer<'_> {
    /// Takes the next identity number (never reused, even for discarded identities).
    pub fn next_id(&self) -> rusqlite::Result<i64> {
        let id: i64 = self.tx.query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_id'",
            [],
            |r| r.get(0),
        )?;
        self.tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'next_id'",
            [(id + 1).to_string()],
        )?;
        Ok(id)
    }

    pub fn insert_identity(&self, identity: &Identity) -> rusqlite::Result<()> {
        self.tx.execute(
            "INSERT INTO identity (id, label, origin, name, updated_ms, updated_by, confirmed, hits, created_ms, last_seen_ms, last_camera) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                identity.key,
                identity.label,
                identity.origin,
                identity.name,
                identity.updated_ms,
                identity.updated_by,
                identity.confirmed,
                identity.hits,
                identity.created_ms,
                identity.last_seen_ms,
                identity.last_camera
            ],
        )?;
        Ok(())
    }

    pub fn update_identity(&self, identity: &Identity) -> rusqlite::Result<()> {
        self.tx.execute(
            "UPDATE identity SET name = ?2, confirmed = ?3, hits = ?4, last_seen_ms = ?5, last_camera = ?6, label = ?7, origin = ?8, updated_ms = ?9, updated_by = ?10, created_ms = ?11 WHERE id = ?1",
            params![
                identity.key,
                identity.name,
                identity.confirmed,
                identity.hits,
                identity.last_seen_ms,
                identity.last_camera,
                identity.label,
                identity.origin,
                identity.updated_ms,
                identity.updated_by,
                identity.created_ms
            ],
        )?;
        Ok(())
    }

    /// Records that `label` was forgotten or merged (replacing an earlier record of it).
    pub fn tombstone(&self, tombstone: &Tombstone) -> rusqlite::Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO tombstone (label, merged_into, ts_ms, by) VALUES (?1, ?2, ?3, ?4)",
            params![
                tombstone.label,
                tombstone.merged_into,
                tombstone.ts_ms,
                tombstone.by
            ],
        )?;
        Ok(())
    }

    /// Drops the tombstones made before `before_ms`.
    pub fn delete_tombstones_before(&self, before_ms: i64) -> rusqlite::Result<()> {
        self.tx
            .execute("DELETE FROM tombstone WHERE ts_ms < ?1", [before_ms])?;
        Ok(())
    }

    pub fn delete_identity(&self, key: i64) -> rusqlite::Result<()> {
        self.tx
            .execute("DELETE FROM identity WHERE id = ?1", [key])?;
        Ok(())
    }

    /// Stores an exemplar; returns its row id.
    pub fn insert_exemplar(
        &self,
        identity: i64,
        embedding: &[f32],
        camera: &str,
        ts_ms: i64,
    ) -> rusqlite::Result<i64> {
        self.tx.execute(
            "INSERT INTO exemplar (identity, embedding, camera, ts_ms) VALUES (?1, ?2, ?3, ?4)",
            params![identity, to_blob(embedding), camera, ts_ms],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn delete_exemplar(&self, row: i64) -> rusqlite::Result<()> {
        self.tx
            .execute("DELETE FROM exemplar WHERE id = ?1", [row])?;
        Ok(())
    }

    /// Moves every exemplar, thumbnail and sighting of `from` to `to` (a merge).
    pub fn move_identity(&self, from: i64, to: i64) -> rusqlite::Result<()> {
        for table in ["exemplar", "thumbnail"] {
            self.tx.execute(
                &format!("UPDATE {table} SET identity = ?2 WHERE identity = ?1"),
                [from, to],
            )?;
        }
        self.tx.execute(
            "INSERT INTO sighting (identity, camera, count, first_ms, last_ms)
             SELECT ?2, camera, count, first_ms, last_ms FROM sighting WHERE identity = ?1
             ON CONFLICT (identity, camera) DO UPDATE SET count = count + excluded.count,
                 first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)",
            [from, to],
        )?;
        Ok(())
    }

    /// Counts a sighting of `identity` at `camera`.
    pub fn sighting(&self, identity: i64, camera: &str, ts_ms: i64) -> rusqlite::Result<()> {
        self.tx.execute(
            "INSERT INTO sighting (identity, camera, count, first_ms, last_ms) VALUES (?1, ?2, 1, ?3, ?3)
             ON CONFLICT (identity, camera) DO UPDATE SET count = count + 1, last_ms = excluded.last_ms",
            params![identity, camera, ts_ms],
        )?;
        Ok(())
    }
}

/// The cameras that saw an identity: `(camera, count, last_ms)`.
pub fn sightings(store: &Store, identity: i64) -> Result<Vec<(String, i64, i64)>, GalleryError> {
    let mut statement = store
        .connection
        .prepare("SELECT camera, count, last_ms FROM sighting WHERE identity = ?1 ORDER BY camera")
        .map_err(store.sql())?;
    statement
        .query_map([identity], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(store.sql())
}

/// A file SQLite cannot read is foreign (not a database) or damaged; anything else is I/O.
fn classify_open_error(path: &Path, source: rusqlite::Error) -> GalleryError {
    use rusqlite::ErrorCode;
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => GalleryError::Foreign {
            path: path.to_path_buf(),
            why: "not an SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => GalleryError::Corrupt {
            path: path.to_path_buf(),
            why: source.to_string(),
        },
        Some(ErrorCode::CannotOpen) => GalleryError::Create {
            path: path.to_path_buf(),
            source: std::io::Error::other("SQLite cannot open or create the file there"),
        },
        _ => GalleryError::Sql {
            path: path.to_path_buf(),
            source,
        },
    }
}
