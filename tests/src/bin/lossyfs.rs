//! `lossyfs BACKING MOUNTPOINT`: a FUSE file system that loses, like a power cut, every
//! file write that was not fsynced (the idea of LazyFS), for the power-loss test
//! (`tests/tests/power_loss.rs`, ARCHITECTURE §4).
//!
//! It passes everything through to the directory `BACKING`, except file contents:
//! - A write goes into this process's memory (dirty 4 KiB pages per file, plus the
//!   file's pending size), never to the backing file. Reads, `stat` and later writes,
//!   through any descriptor of the file, see the pending data (read-your-writes);
//!   `truncate`/`ftruncate` only change the pending size.
//! - `fsync` or `fdatasync` of a file writes its pending pages and size to the backing
//!   file, then fsyncs that. Nothing else does: not `close`, not `sync_file_range`
//!   (which FUSE never sees: it is exactly what sled's flush uses, and exactly what does
//!   not survive a power cut), not the passing of time.
//! - When the process dies (the test SIGKILLs it), every pending write dies with it:
//!   the backing directory then holds exactly the fsynced contents, which is what a
//!   disk holds after a power cut.
//!
//! Metadata operations (create, mkdir, rename, unlink, rmdir, chmod, symlink, ...) are
//! applied to the backing directory at once, so they survive a cut whether or not the
//! directory was fsynced; `fsync` of a directory fsyncs the backing directory. This is
//! what LazyFS does, and why: journalling file systems (ext4, xfs) in practice commit
//! a directory entry with the next fsync of anything, so a model that lost unsynced
//! entries would flag code that is fine on them, and modelling POSIX's weaker promise
//! would need a shadow namespace far bigger than this file. The part of a power cut
//! that bites real programs, and sled in particular (`sync_file_range`, the `conf`
//! file it never fsyncs, blob files), is file contents: a file created and never
//! fsynced survives here with the contents it had when last fsynced, which for a new
//! file is none at all.
//!
//! On start it mounts, prints `lossyfs: mounted` on stdout and serves until killed
//! or unmounted. If mounting is not permitted it exits with status 77. Unmount with
//! `fusermount3 -uz MOUNTPOINT` or, as root, `umount -l MOUNTPOINT`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

/// The unit of dirty data kept in memory.
const PAGE: u64 = 4096;
/// Attributes and entries are not cached by the kernel: sizes change here, not on disk.
const TTL: Duration = Duration::ZERO;
/// Linux open(2) flags (the same on every Linux architecture but alpha, sparc, parisc).
const O_TRUNC: i32 = 0o1000;
const O_EXCL: i32 = 0o200;
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
/// Exit status when mounting is not permitted here (the test then skips).
const EXIT_NOT_PERMITTED: i32 = 77;

fn errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_i32)
}

/// An inode as the kernel knows it.
struct Node {
    /// Path relative to the backing directory; `None` once its last name is gone.
    path: Option<PathBuf>,
    /// The backing file's inode number (files are identified by it across renames).
    backing_ino: u64,
    lookups: u64,
}

/// A file's writes that are not fsynced yet.
struct Dirty {
    /// The backing file, open for reading and writing.
    file: Arc<File>,
    /// The file's size as readers see it.
    size: u64,
    /// Below this offset, bytes not in `pages` are the backing file's; at or above it
    /// they are zero (the file was truncated to here since the last fsync).
    base_len: u64,
    /// Page index → the page's current contents.
    pages: BTreeMap<u64, Box<[u8]>>,
    mtime: SystemTime,
}

impl Dirty {
    fn new(file: Arc<File>) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            file,
            size: meta.len(),
            base_len: meta.len(),
            pages: BTreeMap::new(),
            mtime: meta.modified().unwrap_or(UNIX_EPOCH),
        })
    }

    /// Read the backing file's bytes at `offset` into `buf` where they still count
    /// (below `base_len`); zeros elsewhere.
    fn read_base(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let end = (offset + buf.len() as u64).min(self.base_len);
        if end > offset {
            read_full(&self.file, offset, &mut buf[..(end - offset) as usize])?;
        }
        Ok(())
    }

    fn read(&self, offset: u64, size: u64) -> io::Result<Vec<u8>> {
        let end = (offset + size).min(self.size);
        if end <= offset {
            return Ok(Vec::new());
        }
        let mut buf = vec![0; (end - offset) as usize];
        self.read_base(offset, &mut buf)?;
        for (&index, page) in self.pages.range(offset / PAGE..=(end - 1) / PAGE) {
            let page_start = index * PAGE;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        Ok(buf)
    }

    fn page_mut(&mut self, index: u64) -> io::Result<&mut [u8]> {
        if !self.pages.contains_key(&index) {
            let mut page = vec![0; PAGE as usize].into_boxed_slice();
            self.read_base(index * PAGE, &mut page)?;
            // Bytes past the current size are zero whatever the backing file holds.
            if index * PAGE + PAGE > self.size {
                let keep = self.size.saturating_sub(index * PAGE) as usize;
                page[keep..].fill(0);
            }
            self.pages.insert(index, page);
        }
        Ok(self.pages.get_mut(&index).expect("just inserted"))
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            let index = at / PAGE;
            let page_start = index * PAGE;
            let to = end.min(page_start + PAGE);
            let page = self.page_mut(index)?;
            page[(at - page_start) as usize..(to - page_start) as usize]
                .copy_from_slice(&data[(at - offset) as usize..(to - offset) as usize]);
            at = to;
        }
        self.size = self.size.max(end);
        self.mtime = SystemTime::now();
        Ok(())
    }

    fn truncate(&mut self, size: u64) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE);
            self.pages.split_off(&first_gone);
            if !size.is_multiple_of(PAGE)
                && let Some(page) = self.pages.get_mut(&(size / PAGE))
            {
                page[(size % PAGE) as usize..].fill(0);
            }
            self.base_len = self.base_len.min(size);
        }
        self.size = size;
        self.mtime = SystemTime::now();
    }

    /// Make the pending state the backing file's, durably.
    fn persist(&self) -> io::Result<()> {
        // Zero what a truncation dropped, then set the size, then write the pages.
        self.file.set_len(self.base_len)?;
        self.file.set_len(self.size)?;
        for (&index, page) in &self.pages {
            let start = index * PAGE;
            if start >= self.size {
                break;
            }
            let len = (self.size - start).min(PAGE) as usize;
            self.file.write_all_at(&page[..len], start)?;
        }
        self.file.sync_all()
    }
}

fn read_full(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => break, // past the end: the rest stays zero
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Handle {
    ino: u64,
    file: Arc<File>,
    writable: bool,
}

struct State {
    backing: PathBuf,
    nodes: HashMap<u64, Node>,
    /// Backing inode number → our inode number, for files that still have a name.
    by_backing: HashMap<u64, u64>,
    next_ino: u64,
    dirty: HashMap<u64, Dirty>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
}

/// The file system.
struct LossyFs {
    state: Mutex<State>,
}

fn kind_of(meta: &Metadata) -> FileType {
    FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile)
}

fn system_time(secs: i64, nanos: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

impl State {
    fn backing_path(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn node_path(&self, ino: u64) -> Result<PathBuf, Errno> {
        let node = self.nodes.get(&ino).ok_or(Errno::ENOENT)?;
        node.path.clone().ok_or(Errno::ENOENT)
    }

    fn child_path(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.node_path(parent)?.join(name))
    }

    /// Our inode for a backing file found at `rel`, made or refreshed.
    fn node_for(&mut self, rel: &Path, meta: &Metadata) -> u64 {
        if let Some(&ino) = self.by_backing.get(&meta.ino()) {
            let node = self.nodes.get_mut(&ino).expect("mapped node exists");
            node.path = Some(rel.to_owned());
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.by_backing.insert(meta.ino(), ino);
        self.nodes.insert(
            ino,
            Node {
                path: Some(rel.to_owned()),
                backing_ino: meta.ino(),
                lookups: 0,
            },
        );
        ino
    }

    fn attr(&self, ino: u64, meta: &Metadata) -> FileAttr {
        let mut attr = FileAttr {
            ino: INodeNo(ino),
            size: meta.len(),
            blocks: meta.blocks(),
            atime: system_time(meta.atime(), meta.atime_nsec()),
            mtime: system_time(meta.mtime(), meta.mtime_nsec()),
            ctime: system_time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(meta),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: PAGE as u32,
            flags: 0,
        };
        if let Some(dirty) = self.dirty.get(&ino) {
            attr.size = dirty.size;
            attr.blocks = dirty.size.div_ceil(512);
            attr.mtime = dirty.mtime;
        }
        attr
    }

    /// The backing file's metadata: through an open descriptor if there is one (the
    /// file may have no name left), else by path.
    fn metadata(&self, ino: u64) -> Result<Metadata, Errno> {
        if let Some(dirty) = self.dirty.get(&ino) {
            return dirty.file.metadata().map_err(|e| errno(&e));
        }
        if let Some(handle) = self.handles.values().find(|h| h.ino == ino) {
            return handle.file.metadata().map_err(|e| errno(&e));
        }
        let path = self.backing_path(&self.node_path(ino)?);
        std::fs::symlink_metadata(path).map_err(|e| errno(&e))
    }

    fn lookup(&mut self, rel: PathBuf) -> Result<FileAttr, Errno> {
        let meta = std::fs::symlink_metadata(self.backing_path(&rel)).map_err(|e| errno(&e))?;
        let ino = self.node_for(&rel, &meta);
        self.nodes.get_mut(&ino).expect("node").lookups += 1;
        Ok(self.attr(ino, &meta))
    }

    /// The pending state of a regular file, started from the backing file if needed.
    fn dirty_mut(&mut self, ino: u64, fh: Option<u64>) -> Result<&mut Dirty, Errno> {
        if !self.dirty.contains_key(&ino) {
            let file = match fh.and_then(|fh| self.handles.get(&fh)) {
                Some(h) if h.writable => h.file.clone(),
                _ => {
                    let path = self.backing_path(&self.node_path(ino)?);
                    Arc::new(
                        OpenOptions::new()
                            .read(true)
                            .write(true)
                            .open(path)
                            .map_err(|e| errno(&e))?,
                    )
                }
            };
            let dirty = Dirty::new(file).map_err(|e| errno(&e))?;
            self.dirty.insert(ino, dirty);
        }
        Ok(self.dirty.get_mut(&ino).expect("just inserted"))
    }

    /// The name `rel` of the backing file `meta` is gone (unlink, rmdir, rename over
    /// it). If it was the file's last name, forget the backing inode number (the
    /// backing file system may reuse it) and, once nothing has the file open, its
    /// pending data: like the data of an unlinked file on a disk.
    fn name_removed(&mut self, rel: &Path, meta: &Metadata) {
        let Some(&ino) = self.by_backing.get(&meta.ino()) else {
            return;
        };
        if let Some(node) = self.nodes.get_mut(&ino)
            && node.path.as_deref() == Some(rel)
        {
            // Another name, if any, is found again by the next lookup.
            node.path = None;
        }
        if meta.is_dir() || meta.nlink() <= 1 {
            self.by_backing.remove(&meta.ino());
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.path = None;
            }
            self.drop_if_orphan(ino);
        }
    }

    fn drop_if_orphan(&mut self, ino: u64) {
        let unlinked = self.nodes.get(&ino).is_none_or(|n| n.path.is_none());
        let open = self.handles.values().any(|h| h.ino == ino);
        if unlinked && !open {
            self.dirty.remove(&ino);
            if self.nodes.get(&ino).is_some_and(|n| n.lookups == 0) {
                self.nodes.remove(&ino);
            }
        }
    }

    fn new_handle(&mut self, ino: u64, file: File, writable: bool) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(
            fh,
            Handle {
                ino,
                file: Arc::new(file),
                writable,
            },
        );
        fh
    }
}

impl LossyFs {
    fn new(backing: PathBuf) -> io::Result<Self> {
        let meta = std::fs::metadata(&backing)?;
        let mut nodes = HashMap::new();
        nodes.insert(
            INodeNo::ROOT.0,
            Node {
                path: Some(PathBuf::new()),
                backing_ino: meta.ino(),
                lookups: 1,
            },
        );
        let mut by_backing = HashMap::new();
        by_backing.insert(meta.ino(), INodeNo::ROOT.0);
        Ok(Self {
            state: Mutex::new(State {
                backing,
                nodes,
                by_backing,
                next_ino: 2,
                dirty: HashMap::new(),
                handles: HashMap::new(),
                next_fh: 1,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would only come from a bug here; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `unlink` and `rmdir`: remove a name from the backing directory at once, as
    /// every metadata operation here is.
    fn remove_name(
        &self,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
        remove: impl FnOnce(&Path) -> std::io::Result<()>,
    ) {
        let mut st = self.state();
        let result = st.child_path(parent.0, name).and_then(|rel| {
            let path = st.backing_path(&rel);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| errno(&e))?;
            remove(&path).map_err(|e| errno(&e))?;
            st.name_removed(&rel, &meta);
            Ok(())
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

fn open_options(flags: i32) -> (OpenOptions, bool) {
    let mut options = OpenOptions::new();
    // Never O_TRUNC or O_APPEND on the backing file: truncation is pending state, and
    // the kernel already gives writes their offsets.
    let writable = match OpenFlags(flags).acc_mode() {
        OpenAccMode::O_RDONLY => {
            options.read(true);
            false
        }
        OpenAccMode::O_WRONLY | OpenAccMode::O_RDWR => {
            options.read(true).write(true);
            true
        }
    };
    (options, writable)
}

impl Filesystem for LossyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut st = self.state();
        match st.child_path(parent.0, name).and_then(|rel| st.lookup(rel)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut st = self.state();
        if ino == INodeNo::ROOT {
            return;
        }
        let Some(node) = st.nodes.get_mut(&ino.0) else {
            return;
        };
        node.lookups = node.lookups.saturating_sub(nlookup);
        let backing_ino = node.backing_ino;
        let linked = node.path.is_some();
        // Keep a node while it has pending data or open handles: the kernel may look
        // the file up again and must find the same data.
        if node.lookups == 0
            && !st.dirty.contains_key(&ino.0)
            && !st.handles.values().any(|h| h.ino == ino.0)
        {
            st.nodes.remove(&ino.0);
            if linked && st.by_backing.get(&backing_ino) == Some(&ino.0) {
                st.by_backing.remove(&backing_ino);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let st = self.state();
        match st.metadata(ino.0) {
            Ok(meta) => reply.attr(&TTL, &st.attr(ino.0, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut st = self.state();
        let result = (|| -> Result<(), Errno> {
            let io = |e: io::Error| errno(&e);
            if let Some(size) = size {
                st.dirty_mut(ino.0, fh.map(|f| f.0))?.truncate(size);
            }
            let path = st.node_path(ino.0).ok().map(|p| st.backing_path(&p));
            if let Some(mode) = mode {
                let path = path.as_ref().ok_or(Errno::ENOENT)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            if uid.is_some() || gid.is_some() {
                let path = path.as_ref().ok_or(Errno::ENOENT)?;
                std::os::unix::fs::lchown(path, uid, gid).map_err(io)?;
            }
            if atime.is_some() || mtime.is_some() {
                let resolve = |t: TimeOrNow| match t {
                    TimeOrNow::SpecificTime(t) => t,
                    TimeOrNow::Now => SystemTime::now(),
                };
                let mut times = std::fs::FileTimes::new();
                if let Some(t) = atime {
                    times = times.set_accessed(resolve(t));
                }
                if let Some(t) = mtime {
                    times = times.set_modified(resolve(t));
                    if let Some(dirty) = st.dirty.get_mut(&ino.0) {
                        dirty.mtime = resolve(t);
                    }
                }
                let path = path.as_ref().ok_or(Errno::ENOENT)?;
                File::open(path)
                    .and_then(|f| f.set_times(times))
                    .map_err(io)?;
            }
            Ok(())
        })();
        match result.and_then(|()| st.metadata(ino.0)) {
            Ok(meta) => reply.attr(&TTL, &st.attr(ino.0, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let st = self.state();
        let result = st
            .node_path(ino.0)
            .and_then(|p| std::fs::read_link(st.backing_path(&p)).map_err(|e| errno(&e)));
        match result {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & S_IFMT != S_IFREG {
            reply.error(Errno::ENOSYS);
            return;
        }
        let mut st = self.state();
        let result = st.child_path(parent.0, name).and_then(|rel| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & !umask & 0o7777)
                .open(st.backing_path(&rel))
                .map_err(|e| errno(&e))?;
            st.lookup(rel)
        });
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.state();
        let result = st.child_path(parent.0, name).and_then(|rel| {
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(st.backing_path(&rel))
                .map_err(|e| errno(&e))?;
            st.lookup(rel)
        });
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_name(parent, name, reply, |path| std::fs::remove_file(path));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_name(parent, name, reply, |path| std::fs::remove_dir(path));
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut st = self.state();
        let result = st.child_path(parent.0, link_name).and_then(|rel| {
            std::os::unix::fs::symlink(target, st.backing_path(&rel)).map_err(|e| errno(&e))?;
            st.lookup(rel)
        });
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            reply.error(Errno::EINVAL);
            return;
        }
        let mut st = self.state();
        let result = (|| -> Result<(), Errno> {
            let from = st.child_path(parent.0, name)?;
            let to = st.child_path(newparent.0, newname)?;
            let from_meta =
                std::fs::symlink_metadata(st.backing_path(&from)).map_err(|e| errno(&e))?;
            let replaced = std::fs::symlink_metadata(st.backing_path(&to)).ok();
            std::fs::rename(st.backing_path(&from), st.backing_path(&to)).map_err(|e| errno(&e))?;
            if let Some(replaced) = replaced
                && replaced.ino() != from_meta.ino()
            {
                st.name_removed(&to, &replaced);
            }
            // Move the paths of the renamed node and, for a directory, of everything
            // under it.
            for node in st.nodes.values_mut() {
                if let Some(path) = &node.path
                    && let Ok(rest) = path.strip_prefix(&from)
                {
                    node.path = Some(if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    });
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut st = self.state();
        let result = (|| -> Result<FileAttr, Errno> {
            let from = st.node_path(ino.0)?;
            let to = st.child_path(newparent.0, newname)?;
            std::fs::hard_link(st.backing_path(&from), st.backing_path(&to))
                .map_err(|e| errno(&e))?;
            st.lookup(to)
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.state();
        let result = (|| -> Result<u64, Errno> {
            let (options, writable) = open_options(flags.0);
            // An unlinked file still open elsewhere is reopened through that descriptor.
            let file = match st.node_path(ino.0) {
                Ok(rel) => options.open(st.backing_path(&rel)).map_err(|e| errno(&e))?,
                Err(e) => {
                    let other = st.handles.values().find(|h| h.ino == ino.0).ok_or(e)?;
                    other.file.try_clone().map_err(|e| errno(&e))?
                }
            };
            let fh = st.new_handle(ino.0, file, writable);
            if flags.0 & O_TRUNC != 0 && writable {
                st.dirty_mut(ino.0, Some(fh))?.truncate(0);
            }
            Ok(fh)
        })();
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.state();
        let result = (|| -> Result<(FileAttr, u64), Errno> {
            let rel = st.child_path(parent.0, name)?;
            let (mut options, writable) = open_options(flags);
            options.mode(mode & !umask & 0o7777);
            if flags & O_EXCL != 0 {
                options.create_new(true);
            } else {
                options.create(true);
            }
            // O_CREAT needs write access in std's eyes; read-only creates open twice.
            let file = if writable {
                options.open(st.backing_path(&rel))
            } else {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .mode(mode & !umask & 0o7777)
                    .open(st.backing_path(&rel))
                    .and_then(|_| File::open(st.backing_path(&rel)))
            }
            .map_err(|e| errno(&e))?;
            let attr = st.lookup(rel)?;
            let fh = st.new_handle(attr.ino.0, file, writable);
            if flags & O_TRUNC != 0 && writable {
                st.dirty_mut(attr.ino.0, Some(fh))?.truncate(0);
            }
            let meta = st.metadata(attr.ino.0)?;
            Ok((st.attr(attr.ino.0, &meta), fh))
        })();
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.state();
        let result = if let Some(dirty) = st.dirty.get(&ino.0) {
            dirty.read(offset, u64::from(size)).map_err(|e| errno(&e))
        } else if let Some(handle) = st.handles.get(&fh.0) {
            let mut buf = vec![0; size as usize];
            let len = handle
                .file
                .metadata()
                .map(|m| m.len().saturating_sub(offset).min(u64::from(size)))
                .map_err(|e| errno(&e));
            len.and_then(|len| {
                buf.truncate(len as usize);
                read_full(&handle.file, offset, &mut buf).map_err(|e| errno(&e))?;
                Ok(buf)
            })
        } else {
            Err(Errno::EBADF)
        };
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.state();
        if !st.handles.get(&fh.0).is_some_and(|h| h.writable) {
            reply.error(Errno::EBADF);
            return;
        }
        let result = st
            .dirty_mut(ino.0, Some(fh.0))
            .and_then(|d| d.write(offset, data).map_err(|e| errno(&e)));
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        st.handles.remove(&fh.0);
        st.drop_if_orphan(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        let result = match st.dirty.get(&ino.0).map(Dirty::persist) {
            Some(Ok(())) => {
                // Clean now: reads go to the backing file again.
                st.dirty.remove(&ino.0);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => match st.handles.get(&fh.0) {
                Some(h) => h.file.sync_all(),
                None => Ok(()),
            },
        };
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let st = self.state();
        match st.node_path(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.state();
        let result = (|| -> Result<Vec<(u64, FileType, std::ffi::OsString)>, Errno> {
            let rel = st.node_path(ino.0)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            let mut children: Vec<_> = std::fs::read_dir(st.backing_path(&rel))
                .map_err(|e| errno(&e))?
                .filter_map(|e| e.ok())
                .collect();
            children.sort_by_key(|e| e.file_name());
            for child in children {
                let Ok(meta) = child.metadata() else { continue };
                let child_rel = rel.join(child.file_name());
                let child_ino = st.node_for(&child_rel, &meta);
                entries.push((child_ino, kind_of(&meta), child.file_name()));
            }
            Ok(entries)
        })();
        match result {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let st = self.state();
        let result = st.node_path(ino.0).and_then(|rel| {
            File::open(st.backing_path(&rel))
                .and_then(|d| d.sync_all())
                .map_err(|e| errno(&e))
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room; the backing file system's real limits still apply on fsync.
        reply.statfs(
            1 << 28,
            1 << 27,
            1 << 27,
            1 << 24,
            1 << 23,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: lossyfs BACKING MOUNTPOINT");
        std::process::exit(2);
    };
    if !mountpoint.is_dir() {
        eprintln!(
            "lossyfs: mount point {} is not a directory",
            mountpoint.display()
        );
        std::process::exit(1);
    }
    let fs = match LossyFs::new(backing.clone()) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("lossyfs: backing directory {}: {e}", backing.display());
            std::process::exit(1);
        }
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("lossyfs".into()),
        MountOption::Subtype("lossyfs".into()),
    ];
    let session = match fuser::Session::new(fs, mountpoint, &config) {
        Ok(session) => session,
        Err(e) => {
            let text = e.to_string();
            // fuser tries mount(2) first, and on EPERM the setuid fusermount3 helper.
            let not_permitted = e.kind() == io::ErrorKind::PermissionDenied
                || e.kind() == io::ErrorKind::NotFound && Path::new("/dev/fuse").exists()
                || text.contains("not permitted")
                || text.contains("Permission denied");
            eprintln!("lossyfs: cannot mount {}: {e}", mountpoint.display());
            if not_permitted {
                eprintln!(
                    "lossyfs: mounting is not permitted here (no access to /dev/fuse, or \
                     mount(2) refused and fusermount3, from Debian's fuse3, missing or \
                     refused too)"
                );
                std::process::exit(EXIT_NOT_PERMITTED);
            }
            std::process::exit(1);
        }
    };
    let mut out = io::stdout();
    let _ = writeln!(out, "lossyfs: mounted");
    let _ = out.flush();
    if let Err(e) = session.run() {
        eprintln!("lossyfs: {e}");
        std::process::exit(1);
    }
}
