//! What a test finds in a directory's files: for checking that a purge or a vacuum
//! left no byte of a document behind, or that a store wrote no file of a kind.

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively; unreadable entries are skipped.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Files under `dir` (recursively) whose bytes contain `needle`; sockets and other
/// unreadable entries are skipped.
pub fn files_containing(dir: &Path, needle: impl AsRef<[u8]>) -> Vec<PathBuf> {
    let needle = needle.as_ref();
    files_under(dir)
        .into_iter()
        .filter(|file| {
            std::fs::read(file).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}
