//! The files a transform names: included `.xf` files, lookup tables, template
//! files and schema files, all read through one [`Loader`].
//!
//! [`Disk`], the loader of a load from files, holds three rules:
//! - **confined**: a file is read only when its canonical path (symlinks
//!   resolved) lies in one of the allowed roots, by default the folder of the
//!   transform being loaded; so `../x`, an absolute path elsewhere or a symlink
//!   out of the folder are refused;
//! - **regular files only**: a FIFO, a device (`/dev/zero`) or a folder is
//!   refused from its metadata, before it is opened, so the loader never waits;
//! - **bounded**: at most [`Kind::limit`] bytes are read of each file.
//!
//! [`Memory`] holds files in memory instead, for a program that keeps its
//! transforms elsewhere (a database, a request, a playground) and for tests:
//! the same kinds, limits and messages, and no file system at all.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest `.xf`, template or schema file read: 16 MiB.
pub const TEXT_LIMIT: u64 = 16 << 20;
/// The largest lookup table read: 256 MiB.
pub const LOOKUP_LIMIT: u64 = 256 << 20;

/// What a file is for, which sets its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `.xf` file (the transform itself, or an included one).
    Transform,
    /// A template file (`template "FILE"`, or one a template includes).
    Template,
    /// A schema file (`validate "FILE.json"`).
    Schema,
    /// A lookup table.
    Lookup,
}

impl Kind {
    /// The most bytes read of a file of this kind.
    pub fn limit(self) -> u64 {
        match self {
            Kind::Lookup => LOOKUP_LIMIT,
            Kind::Transform | Kind::Template | Kind::Schema => TEXT_LIMIT,
        }
    }
}

/// Why a file was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// There is no such file.
    NotFound,
    /// Its canonical path is outside every allowed root.
    Outside,
    /// A folder, FIFO, socket or device.
    NotRegular(&'static str),
    /// Over [`Kind::limit`] bytes.
    TooLarge(u64),
    /// Any other I/O error (permissions, not UTF-8), as text.
    Io(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotFound => f.write_str("No such file or directory"),
            FileError::Outside => f.write_str(
                "outside the transform's folder (only files in it and below are read, \
                 unless `--allow-dir` or `LoadOptions::allowed_roots` adds a folder)",
            ),
            FileError::NotRegular(what) => write!(f, "{what}, not a regular file"),
            FileError::TooLarge(limit) => write!(f, "over the limit of {limit} bytes"),
            FileError::Io(reason) => f.write_str(reason),
        }
    }
}

/// A file as read: its identity (the canonical path, for a file on disk) and text.
pub struct Loaded {
    pub id: PathBuf,
    pub text: String,
}

/// Where a transform's files come from.
pub trait Loader: Send + Sync {
    /// The identity of the file at `path` (as the transform names it, joined
    /// to the folder of the file naming it), without reading it: two paths to
    /// one file give one identity.
    fn id(&self, path: &Path) -> Result<PathBuf, FileError>;

    /// Reads the file at `path`, at most `kind.limit()` bytes of it.
    fn read(&self, path: &Path, kind: Kind) -> Result<Loaded, FileError>;
}

/// Files on disk, confined to some roots.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Canonical folders; a file is read only inside one of them.
    roots: Vec<PathBuf>,
}

impl Disk {
    /// A loader reading inside `roots` (each canonicalized; one that does not
    /// exist allows nothing).
    pub fn new<P: AsRef<Path>>(roots: impl IntoIterator<Item = P>) -> Disk {
        let roots = roots
            .into_iter()
            .filter_map(|root| std::fs::canonicalize(root.as_ref()).ok())
            .collect();
        Disk { roots }
    }

    /// A loader confined to `dir`, or else to the current directory.
    pub fn beside(dir: Option<&Path>) -> Arc<dyn Loader> {
        Arc::new(Disk::new([dir.unwrap_or(Path::new("."))]))
    }

    fn allowed(&self, canonical: &Path) -> bool {
        self.roots.iter().any(|root| canonical.starts_with(root))
    }
}

impl Loader for Disk {
    fn id(&self, path: &Path) -> Result<PathBuf, FileError> {
        let canonical = std::fs::canonicalize(path).map_err(|e| io_error(&e))?;
        if !self.allowed(&canonical) {
            return Err(FileError::Outside);
        }
        Ok(canonical)
    }

    fn read(&self, path: &Path, kind: Kind) -> Result<Loaded, FileError> {
        let id = self.id(path)?;
        // From the metadata, before opening: opening a FIFO would wait for a writer.
        let metadata = std::fs::metadata(&id).map_err(|e| io_error(&e))?;
        regular(&metadata)?;
        let file = std::fs::File::open(&id).map_err(|e| io_error(&e))?;
        // The file could have been swapped since: check what was opened, too.
        regular(&file.metadata().map_err(|e| io_error(&e))?)?;
        let text = read_bounded(file, kind.limit())?;
        Ok(Loaded { id, text })
    }
}

/// Files held in memory, by path. Paths are resolved without the file
/// system: `.` and `..` steps are taken lexically, and a path that climbs
/// above the relative root (`../x`) is outside, as on disk.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    files: HashMap<PathBuf, String>,
}

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    /// Adds (or replaces) the file at `path`; a path that climbs out of the
    /// root can never be read, so it is not kept.
    pub fn insert(&mut self, path: impl AsRef<Path>, text: impl Into<String>) {
        if let Some(path) = lexical(path.as_ref()) {
            self.files.insert(path, text.into());
        }
    }

    /// [`Memory::insert`], for building a loader in one expression.
    pub fn with(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Memory {
        self.insert(path, text);
        self
    }
}

impl Loader for Memory {
    fn id(&self, path: &Path) -> Result<PathBuf, FileError> {
        let id = lexical(path).ok_or(FileError::Outside)?;
        if self.files.contains_key(&id) {
            Ok(id)
        } else {
            Err(FileError::NotFound)
        }
    }

    fn read(&self, path: &Path, kind: Kind) -> Result<Loaded, FileError> {
        let id = self.id(path)?;
        let text = &self.files[&id];
        if text.len() as u64 > kind.limit() {
            return Err(FileError::TooLarge(kind.limit()));
        }
        Ok(Loaded {
            text: text.clone(),
            id,
        })
    }
}

/// `path` with `.` steps dropped and each `..` taking away the step before;
/// `None` when a `..` has nothing left to take away.
fn lexical(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Reads at most `limit` bytes of text: one byte more says it is too large.
pub fn read_bounded(source: impl Read, limit: u64) -> Result<String, FileError> {
    let mut bytes = Vec::new();
    source
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(&e))?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge(limit));
    }
    String::from_utf8(bytes).map_err(|_| FileError::Io("stream did not contain valid UTF-8".into()))
}

fn regular(metadata: &std::fs::Metadata) -> Result<(), FileError> {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "something else"
    };
    Err(FileError::NotRegular(what))
}

/// An I/O error's text without the OS error number.
fn io_error(error: &std::io::Error) -> FileError {
    if error.kind() == std::io::ErrorKind::NotFound {
        return FileError::NotFound;
    }
    let text = error.to_string();
    FileError::Io(text.split(" (os error").next().unwrap_or(&text).to_string())
}

/// The loader a minijinja environment reads template files with: `name`
/// beside `dir`; a missing file is minijinja's "template not found".
pub fn template_source(
    files: &dyn Loader,
    dir: &Path,
    name: &str,
) -> Result<Option<String>, minijinja::Error> {
    match files.read(&dir.join(name), Kind::Template) {
        Ok(loaded) => Ok(Some(loaded.text)),
        Err(FileError::NotFound) => Ok(None),
        Err(error) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("cannot read template {name}: {error}"),
        )),
    }
}

/// Replaces (or creates) the file at `path` with `text` so that a reader, a
/// crash or a full disk never leaves half of it: the text goes to a new file
/// beside it, is synced, and is renamed over it. A file that exists keeps its
/// permissions, and a symbolic link keeps pointing where it did (the file it
/// names is the one replaced). The tools that rewrite an author's files (`xf
/// fmt`, `xf test --bless`) write through this.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let (path, permissions) = match std::fs::canonicalize(path) {
        Ok(target) => {
            let permissions = std::fs::metadata(&target)?.permissions();
            (target, Some(permissions))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => (path.to_path_buf(), None),
        Err(error) => return Err(error),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(
        ".{name}.xf-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    // A temporary file left by an earlier run that was killed (same pid) goes.
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = (|| {
        file.write_all(text.as_bytes())?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        // The rename itself is durable once the folder is synced (best effort:
        // not every platform opens folders).
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("t");
        std::fs::create_dir_all(inside.join("sub")).unwrap();
        std::fs::write(inside.join("a.csv"), "id\n1\n").unwrap();
        std::fs::write(inside.join("sub/b.j2"), "{{ x }}").unwrap();
        std::fs::write(dir.path().join("outside.csv"), "id\n2\n").unwrap();
        (dir, inside)
    }

    #[test]
    fn reads_inside_its_roots_and_below() {
        let (_dir, inside) = folder();
        let disk = Disk::new([&inside]);
        assert_eq!(
            disk.read(&inside.join("a.csv"), Kind::Lookup).unwrap().text,
            "id\n1\n"
        );
        let loaded = disk
            .read(&inside.join("sub/../sub/b.j2"), Kind::Template)
            .unwrap();
        assert_eq!(
            loaded.id,
            std::fs::canonicalize(inside.join("sub/b.j2")).unwrap()
        );
    }

    #[test]
    fn refuses_what_is_outside_its_roots() {
        let (dir, inside) = folder();
        let disk = Disk::new([&inside]);
        let outside = dir.path().join("outside.csv");
        for path in [inside.join("../outside.csv"), outside.clone()] {
            assert_eq!(
                disk.read(&path, Kind::Lookup).err(),
                Some(FileError::Outside)
            );
        }
        std::os::unix::fs::symlink(&outside, inside.join("link.csv")).unwrap();
        let link = inside.join("link.csv");
        assert_eq!(
            disk.read(&link, Kind::Lookup).err(),
            Some(FileError::Outside)
        );
        // Unless a root allows it.
        let wider = Disk::new([&inside, &dir.path().to_path_buf()]);
        assert_eq!(wider.read(&link, Kind::Lookup).unwrap().text, "id\n2\n");
        assert_eq!(
            disk.read(&inside.join("nope"), Kind::Lookup).err(),
            Some(FileError::NotFound)
        );
    }

    #[test]
    fn refuses_folders_fifos_and_devices_without_waiting() {
        let (dir, inside) = folder();
        let fifo = inside.join("fifo.xf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            let disk = Disk::new([&inside]);
            assert_eq!(
                disk.read(&fifo, Kind::Transform).err(),
                Some(FileError::NotRegular("a FIFO"))
            );
        }
        let disk = Disk::new([&inside, &PathBuf::from("/dev")]);
        assert_eq!(
            disk.read(&inside.join("sub"), Kind::Template).err(),
            Some(FileError::NotRegular("a folder"))
        );
        assert_eq!(
            disk.read(Path::new("/dev/zero"), Kind::Lookup).err(),
            Some(FileError::NotRegular("a device"))
        );
        drop(dir);
    }

    #[test]
    fn memory_reads_what_it_holds_and_nothing_above_it() {
        let memory = Memory::new()
            .with("t/a.csv", "id\n1\n")
            .with("./t/sub/../b.j2", "{{ x }}");
        let loaded = memory.read(Path::new("t/./a.csv"), Kind::Lookup).unwrap();
        assert_eq!(
            (loaded.id, loaded.text),
            (PathBuf::from("t/a.csv"), "id\n1\n".into())
        );
        assert_eq!(
            memory
                .read(Path::new("t/b.j2"), Kind::Template)
                .unwrap()
                .text,
            "{{ x }}"
        );
        assert_eq!(
            memory.read(Path::new("t/nope"), Kind::Lookup).err(),
            Some(FileError::NotFound)
        );
        assert_eq!(
            memory.read(Path::new("../t/a.csv"), Kind::Lookup).err(),
            Some(FileError::Outside)
        );
        let big = Memory::new().with("big.xf", "x".repeat(TEXT_LIMIT as usize + 1));
        assert_eq!(
            big.read(Path::new("big.xf"), Kind::Transform).err(),
            Some(FileError::TooLarge(TEXT_LIMIT))
        );
    }

    #[test]
    fn reads_are_bounded() {
        assert_eq!(read_bounded(&b"12345"[..], 5).unwrap(), "12345");
        assert_eq!(
            read_bounded(&b"123456"[..], 5).err(),
            Some(FileError::TooLarge(5))
        );
        assert_eq!(
            read_bounded(std::io::repeat(b'x'), 1 << 20).err(),
            Some(FileError::TooLarge(1 << 20))
        );
        assert_eq!(
            FileError::TooLarge(5).to_string(),
            "over the limit of 5 bytes"
        );
    }
}
