//! File-system [`Store`] with Paho C's `MQTTCLIENT_PERSISTENCE_DEFAULT` layout.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{validate_key, PersistError, Result, Store};

/// Extension of a record file (Paho's `MESSAGE_FILENAME_EXTENSION`).
const MSG_EXT: &str = ".msg";
/// Extension of a record being written; never a key, removed at open.
const TMP_EXT: &str = ".msg.tmp";

/// URI schemes Paho's `MQTTClient_create` strips before it hands the server URI to the
/// persistence layer (`MQTTClient.c`: `tcp://`, `mqtt://`, `ws://`, `ssl://`, `tls://`,
/// `mqtts://`, `wss://`, `unix://`).
const SCHEMES: [&str; 8] = [
    "tcp://", "mqtt://", "ws://", "ssl://", "tls://", "mqtts://", "wss://", "unix://",
];

/// The per-client directory name Paho uses: `<clientId>-<serverURI>`, where the server URI
/// has its scheme stripped (as `MQTTClient_create` does) and every `:` replaced by `-`
/// (`MQTTPersistenceDefault.c: pstopen`).
///
/// Any `/` left in the URI (a websocket path, e.g. `ws://h:80/mqtt` → `c-h-80/mqtt`) is kept
/// and so, as in Paho, becomes a sub-directory. An unknown scheme is not stripped (Paho
/// refuses such URIs at create); a URI already stripped is used as is.
pub fn client_dir_name(client_id: &str, server_uri: &str) -> String {
    let rest = SCHEMES
        .iter()
        .find_map(|s| server_uri.strip_prefix(s))
        .unwrap_or(server_uri);
    format!("{client_id}-{}", rest.replace(':', "-"))
}

/// A [`Store`] keeping one file per key, `<root>/<clientId>-<serverURI>/<key>.msg`, like
/// Paho's default persistence (root `"."` when the C API passes NULL).
///
/// Differences from Paho, all on the safe side: `put` writes `<key>.msg.tmp`, syncs it,
/// renames it over `<key>.msg` and syncs the directory (skip the syncs with
/// [`FileStore::with_sync`]`(false)`), so a crash leaves the old or the new record; leftover
/// `.msg.tmp` files are removed at open; `keys` lists only `*.msg` files and `clear` removes
/// only those (and temporary files), not unrelated files.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
    sync: bool,
    dir: Option<PathBuf>,
}

impl FileStore {
    /// A closed store rooted at `root` (the per-client directory is made under it at open).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore {
            root: root.into(),
            sync: true,
            dir: None,
        }
    }

    /// Whether `put`/`remove` fsync the file and directory (default `true`). `false` trades
    /// durability on power loss for speed; writes stay atomic with respect to crashes of the
    /// process.
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The per-client directory, when open.
    pub fn client_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn dir(&self) -> Result<&Path> {
        self.dir.as_deref().ok_or(PersistError::Closed)
    }

    fn file_for(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.dir()?.join(format!("{key}{MSG_EXT}")))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.sync {
            sync_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        Ok(())
    }

    /// Regular files in the client directory whose names end with `ext`, as (name, path).
    fn files_ending(&self, ext: &str) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.dir()?;
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let path = entry.path();
            let is_file = entry.file_type().map_err(|e| io_err(&path, e))?.is_file();
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not ours: our names are UTF-8
            };
            if is_file && name.len() > ext.len() && name.ends_with(ext) {
                out.push((name, path));
            }
        }
        Ok(out)
    }
}

fn io_err(path: &Path, source: io::Error) -> PersistError {
    PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // Paho: S_IRWXU | S_IRGRP (subject to the umask).
        b.mode(0o740);
    }
    b.create(dir)
}

impl Store for FileStore {
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()> {
        if self.dir.is_some() {
            return Ok(());
        }
        let name = client_dir_name(client_id, server_uri);
        if name.contains('\0') {
            return Err(PersistError::InvalidKey(name));
        }
        let dir = self.root.join(name);
        create_dirs(&dir).map_err(|e| io_err(&dir, e))?;
        self.dir = Some(dir);
        // A leftover temporary file is a write that never completed: the old record (if
        // any) is still in place, so the temporary is just dropped.
        let tmps = match self.files_ending(TMP_EXT) {
            Ok(t) => t,
            Err(e) => {
                self.dir = None;
                return Err(e);
            }
        };
        for (_, path) in tmps {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.dir = None;
                    return Err(io_err(&path, e));
                }
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let dir = self.dir.take().ok_or(PersistError::Closed)?;
        // Paho removes the (leaf) client directory when it is empty, and only then.
        let empty = match fs::read_dir(&dir) {
            Ok(mut it) => it.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&dir, e)),
        };
        if empty {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                // Gone already, or a file appeared meanwhile: both fine, as in Paho.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) if fs::read_dir(&dir).is_ok_and(|mut it| it.next().is_some()) => {}
                Err(e) => return Err(io_err(&dir, e)),
            }
        }
        Ok(())
    }

    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        let path = self.file_for(key)?;
        let dir = self.dir()?.to_owned();
        let tmp = dir.join(format!("{key}{TMP_EXT}"));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            for p in parts {
                f.write_all(p)?;
            }
            if self.sync {
                f.sync_all()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&path, e));
        }
        self.sync_dir(&dir)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.file_for(key)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        let path = self.file_for(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                let dir = self.dir()?.to_owned();
                self.sync_dir(&dir)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        Ok(self
            .files_ending(MSG_EXT)?
            .into_iter()
            .filter_map(|(name, _)| name.strip_suffix(MSG_EXT).map(str::to_owned))
            .collect())
    }

    fn clear(&mut self) -> Result<()> {
        let mut files = self.files_ending(MSG_EXT)?;
        files.extend(self.files_ending(TMP_EXT)?);
        for (_, path) in files {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        let dir = self.dir()?.to_owned();
        self.sync_dir(&dir)
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        let path = self.file_for(key)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path, e)),
        }
    }
}
