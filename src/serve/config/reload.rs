//! Reloading on a changed file: the files a running pipeline was read from
//! (its pipeline file, its transforms and every file they read, Armor
//! notification configs, secret files) are polled, and a change reloads the
//! pipeline as SIGHUP does.
//!
//! Polling, not file-system events: a pipeline has a handful of files, a
//! `stat` of each every few seconds costs nothing, and it sees every way a
//! file can change, on every file system: written in place (its time and
//! length), replaced by a rename (its inode), a Kubernetes ConfigMap's
//! symlink swapped (the file it leads to), deleted.
//!
//! An editor writes in steps (truncate, write, rename a backup), so a change
//! is reloaded only once a poll finds the files as the poll before found
//! them. A version that is refused is watched like a running one: it is
//! tried again only when a file changes again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the files are polled unless `--reload-poll` or the pipeline's
/// `reload_poll` says otherwise.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// The longest poll interval taken (a longer one is cut to it): a day.
pub const POLL_LIMIT: Duration = Duration::from_secs(86_400);

/// One version of a file, as far as its metadata tells.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Present {
        modified: Option<SystemTime>,
        len: u64,
        device: u64,
        inode: u64,
    },
    /// Not there, or not readable: the reload that follows says which.
    Missing,
}

impl Fingerprint {
    /// The file's fingerprint now, through symlinks.
    fn of(path: &Path) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(metadata) => Fingerprint::Present {
                modified: metadata.modified().ok(),
                len: metadata.len(),
                device: metadata.dev(),
                inode: metadata.ino(),
            },
            Err(_) => Fingerprint::Missing,
        }
    }
}

/// The files of the version loaded last (running, or refused), as they were
/// when it was loaded.
#[derive(Debug)]
pub struct Watch {
    files: Vec<(PathBuf, Fingerprint)>,
    /// What the last poll found, when it found a change: the next poll that
    /// finds the same reloads.
    settling: Option<Vec<Fingerprint>>,
}

impl Watch {
    /// Watches `paths` (a path named twice is watched once), as they are now.
    pub fn new(paths: &[PathBuf]) -> Watch {
        let mut files: Vec<(PathBuf, Fingerprint)> = Vec::with_capacity(paths.len());
        for path in paths {
            if !files.iter().any(|(known, _)| known == path) {
                files.push((path.clone(), Fingerprint::of(path)));
            }
        }
        Watch {
            files,
            settling: None,
        }
    }

    /// The watch for a version loaded from `paths` by a reload that began
    /// when the files were as in `before`: a file that changed while the
    /// reload read it differs from `before`, so the next change is not missed.
    pub fn after(before: Watch, paths: &[PathBuf]) -> Watch {
        let mut watch = Watch::new(paths);
        for (path, fingerprint) in &mut watch.files {
            if let Some((_, then)) = before.files.iter().find(|(known, _)| known == path) {
                *fingerprint = then.clone();
            }
        }
        watch
    }

    /// The same files, as they are now: taken before a reload reads them.
    pub fn now(&self) -> Watch {
        Watch::new(&self.paths())
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(path, _)| path.clone()).collect()
    }

    /// Looks at the files again: the ones that changed since the version was
    /// loaded, once they are as the last poll found them (else `None`).
    pub fn poll(&mut self) -> Option<Vec<PathBuf>> {
        let now: Vec<Fingerprint> = self
            .files
            .iter()
            .map(|(path, _)| Fingerprint::of(path))
            .collect();
        let changed: Vec<PathBuf> = self
            .files
            .iter()
            .zip(&now)
            .filter(|((_, then), now)| then != *now)
            .map(|((path, _), _)| path.clone())
            .collect();
        if changed.is_empty() {
            self.settling = None;
            return None;
        }
        if self.settling.as_ref() == Some(&now) {
            self.settling = None;
            return Some(changed);
        }
        self.settling = Some(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.xf"), dir.path().join("b.csv"));
        write(&a, "label x = \"1\"\n");
        write(&b, "id\n1\n");
        let mut watch = Watch::new(&[a.clone(), b.clone(), a.clone()]);
        assert_eq!(watch.paths(), vec![a.clone(), b.clone()]);
        assert_eq!(watch.poll(), None);
        write(&b, "id\n1\n2\n");
        assert_eq!(watch.poll(), None, "changing still, maybe");
        write(&b, "id\n1\n2\n3\n");
        assert_eq!(watch.poll(), None, "it changed again since the last poll");
        assert_eq!(watch.poll(), Some(vec![b.clone()]));
    }

    #[test]
    fn a_replaced_or_deleted_file_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.xf"), dir.path().join("b.xf"));
        write(&a, "label x = \"1\"\n");
        write(&b, "label x = \"1\"\n");
        let mut watch = Watch::new(&[a.clone(), b.clone()]);
        // The same length and maybe the same second: the inode tells.
        let new = dir.path().join("new.xf");
        write(&new, "label x = \"2\"\n");
        std::fs::rename(&new, &a).unwrap();
        std::fs::remove_file(&b).unwrap();
        watch.poll();
        assert_eq!(watch.poll(), Some(vec![a, b]));
    }

    #[test]
    fn a_file_that_changed_while_a_reload_read_it_is_seen_at_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.xf"), dir.path().join("b.xf"));
        write(&a, "label x = \"1\"\n");
        let watch = Watch::new(std::slice::from_ref(&a));
        let before = watch.now();
        // The reload reads the files; meanwhile one is written again.
        write(&a, "label x = \"2, longer\"\n");
        write(&b, "label y = \"1\"\n");
        let mut watch = Watch::after(before, &[a.clone(), b]);
        watch.poll();
        assert_eq!(watch.poll(), Some(vec![a]));
    }
}
