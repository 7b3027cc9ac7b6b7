//! A SQLite VFS that simulates a power cut.
//!
//! LazyFS (what etcd's robustness tests use) is not available here, so this wraps SQLite's
//! default VFS (`unix`) and keeps, for every database, WAL and rollback-journal file it opens,
//! the file's *durable image*: its content as of the last successful `xSync`. Writes and
//! truncations go to the real file as usual (so the running process sees them, as it would see
//! the page cache) and are also queued as *pending*; a successful `xSync` of that file applies
//! its pending changes to the durable image.
//!
//! [`power_cut`] is the power failure: it bumps a generation counter, so every file handle opened
//! before it fails all further I/O (the old process is "dead"; its writer cannot sneak a sync in
//! afterwards), then writes each file's durable image — pending data dropped — into a new
//! directory, which the next "boot" opens. The shared-memory WAL index (`-shm`) is never synced
//! by SQLite, so after a cut it is gone (SQLite rebuilds it from the WAL, as after a real power
//! loss, where its content is undefined).
//!
//! What it simulates, exactly: per file, data written but not fsynced before the cut is dropped;
//! data fsynced before it survives; the `-shm` file does not survive. What it does not simulate:
//! torn writes within a sector, reordering of unsynced writes that partly survive, and directory
//! entries lost for lack of a directory fsync (a file's existence is treated as durable).
//!
//! # Unsafe
//!
//! SQLite's VFS is a C interface (`sqlite3_vfs`, `sqlite3_io_methods`): registering one means
//! handing SQLite `extern "C"` functions that receive raw pointers to memory SQLite allocated.
//! There is no safe way to do that, so this module allows `unsafe_code` (the crate denies it
//! elsewhere, and the crate is used by tests only). The invariants it relies on:
//! - SQLite allocates `szOsFile` bytes for every file it opens through this VFS; we declare our
//!   header plus the real VFS's size and place the real file right after our header.
//! - `pMethods` of our file is non-null exactly when the real file is open and our header's
//!   `info` pointer is a live `Box<FileInfo>`, freed in `xClose`.
//! - The real VFS and its methods outlive the process (SQLite never unregisters `unix`).

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

/// The name this VFS registers under (it also becomes the default VFS).
pub const VFS_NAME: &CStr = c"drover-powerloss";

/// Counters of the simulation, for tests that must show the cut really dropped something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful `xSync` calls on tracked files.
    pub syncs: u64,
    /// Power cuts so far.
    pub cuts: u64,
    /// Pending (unsynced) writes and truncations dropped by power cuts.
    pub dropped_changes: u64,
    /// Bytes of pending writes dropped by power cuts.
    pub dropped_bytes: u64,
    /// I/O calls refused because their handle was opened before a cut.
    pub refused_after_cut: u64,
}

/// What one [`power_cut`] did.
#[derive(Clone, Debug, Default)]
pub struct CutReport {
    /// Files written into the new directory, with their durable size in bytes.
    pub files: Vec<(PathBuf, usize)>,
    /// Pending changes (writes and truncations) that were dropped.
    pub dropped_changes: u64,
    /// Bytes of pending writes that were dropped.
    pub dropped_bytes: u64,
}

enum Pending {
    Write { offset: usize, data: Vec<u8> },
    Truncate(usize),
}

#[derive(Default)]
struct Durable {
    image: Vec<u8>,
    pending: Vec<Pending>,
}

impl Durable {
    fn sync(&mut self) {
        for change in self.pending.drain(..) {
            match change {
                Pending::Write { offset, data } => {
                    let end = offset + data.len();
                    if self.image.len() < end {
                        self.image.resize(end, 0);
                    }
                    self.image[offset..end].copy_from_slice(&data);
                }
                Pending::Truncate(len) => self.image.resize(len, 0),
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// Counts opens and cuts, to order them.
    clock: u64,
    /// Each cut: the directory whose handles it killed, and when.
    cuts: Vec<(PathBuf, u64)>,
    files: HashMap<PathBuf, Durable>,
    stats: Stats,
    /// Trip wires: cut `from` into `to` right after `remaining` more writes under `from`.
    armed: Vec<Armed>,
    /// Results of cuts that trip wires fired, by the directory cut.
    fired: HashMap<PathBuf, Result<CutReport, String>>,
}

struct Armed {
    from: PathBuf,
    to: PathBuf,
    remaining: u64,
}

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The real (default `unix`) VFS, as an address so it can live in a static.
static REAL: OnceLock<usize> = OnceLock::new();

fn real_vfs() -> *mut ffi::sqlite3_vfs {
    *REAL.get().expect("the power-loss VFS is installed") as *mut ffi::sqlite3_vfs
}

/// Registers the power-loss VFS as SQLite's default, once per process. Every SQLite connection
/// opened afterwards in this process (the store's writer and readers included) goes through it.
pub fn install() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED.get_or_init(register).clone()
}

fn register() -> Result<(), String> {
    // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS (initializing SQLite if needed) or
    // null; the struct it points to is static inside SQLite. We copy it and replace the
    // functions we wrap; the copy is leaked, so it outlives every connection.
    unsafe {
        let real = ffi::sqlite3_vfs_find(std::ptr::null());
        if real.is_null() {
            return Err("SQLite has no default VFS to wrap".into());
        }
        REAL.set(real as usize)
            .map_err(|_| "the power-loss VFS was registered twice".to_string())?;
        let mut ours = *real;
        ours.szOsFile = header_size() as c_int + (*real).szOsFile;
        ours.zName = VFS_NAME.as_ptr();
        ours.pNext = std::ptr::null_mut();
        ours.xOpen = Some(x_open);
        ours.xDelete = Some(x_delete);
        let ours: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ours));
        let rc = ffi::sqlite3_vfs_register(ours, 1);
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_vfs_register failed with code {rc}"));
        }
    }
    Ok(())
}

/// Cuts the power of `from`: every file handle opened so far under it is dead (its I/O fails
/// from now on; handles elsewhere, e.g. other tests' stores, are unaffected), and the
/// durable image of every tracked file under `from` — its content as of its last fsync — is
/// written into `to` (created if needed), under the same file name. Other files under `from`
/// are copied as they are, except `-shm` files, which are never durable. Tracking of the files
/// under `from` ends. The caller opens the store again on `to`, like a machine booting after
/// the cut.
pub fn power_cut(from: &Path, to: &Path) -> io::Result<CutReport> {
    let mut st = state();
    st.armed.retain(|a| a.from != from);
    // A trip wire that already cut this directory: that was the power cut.
    if let Some(fired) = st.fired.remove(from) {
        return fired.map_err(io::Error::other);
    }
    cut_locked(&mut st, from, to)
}

/// Arms a trip wire: the power of `from` is cut (as by [`power_cut`] into `to`) right after the
/// `writes`-th write under `from` from now — so the cut lands inside a transaction, with that
/// write and its transaction's earlier ones unsynced. Check with [`fired`]; [`power_cut`] on the
/// same directory disarms it.
pub fn arm_cut_after_writes(from: &Path, to: &Path, writes: u64) {
    let mut st = state();
    st.armed.retain(|a| a.from != from);
    st.armed.push(Armed {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        remaining: writes.max(1),
    });
}

/// The result of the cut of `from` that a trip wire fired, once it fired (taken: a second call
/// answers `None`).
pub fn fired(from: &Path) -> Option<Result<CutReport, String>> {
    state().fired.remove(from)
}

fn cut_locked(st: &mut State, from: &Path, to: &Path) -> io::Result<CutReport> {
    st.clock += 1;
    let now = st.clock;
    st.cuts.push((from.to_path_buf(), now));
    st.stats.cuts += 1;
    std::fs::create_dir_all(to)?;
    let mut report = CutReport::default();
    let tracked: Vec<PathBuf> = st
        .files
        .keys()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for path in &tracked {
        let durable = st.files.remove(path).expect("key listed above");
        for change in &durable.pending {
            report.dropped_changes += 1;
            if let Pending::Write { data, .. } = change {
                report.dropped_bytes += data.len() as u64;
            }
        }
        let name = path.file_name().ok_or_else(|| {
            io::Error::other(format!("tracked path {} has no file name", path.display()))
        })?;
        if path.exists() {
            std::fs::write(to.join(name), &durable.image)?;
            report.files.push((to.join(name), durable.image.len()));
        }
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let skip = tracked.contains(&path)
            || name.to_string_lossy().ends_with("-shm")
            || !entry.file_type()?.is_file();
        if !skip {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    st.stats.dropped_changes += report.dropped_changes;
    st.stats.dropped_bytes += report.dropped_bytes;
    Ok(report)
}

/// Fires an armed trip wire whose directory holds `path`, if this was its last write.
fn trip(st: &mut State, path: &Path) {
    let Some(i) = st.armed.iter().position(|a| path.starts_with(&a.from)) else {
        return;
    };
    st.armed[i].remaining -= 1;
    if st.armed[i].remaining == 0 {
        let armed = st.armed.remove(i);
        let result = cut_locked(st, &armed.from, &armed.to).map_err(|e| e.to_string());
        st.fired.insert(armed.from, result);
    }
}

/// The counters so far (process-wide).
pub fn stats() -> Stats {
    state().stats
}

// === the VFS ===

/// What we keep per open file, boxed; our part of SQLite's file allocation points to it.
struct FileInfo {
    /// The file's path (`None` for SQLite's anonymous temporary files).
    name: Option<PathBuf>,
    /// Set for files whose durability is simulated (database, WAL, rollback journal).
    path: Option<PathBuf>,
    /// When this handle was opened; a later cut of a directory above it kills it.
    opened: u64,
}

#[repr(C)]
struct WrapFile {
    base: ffi::sqlite3_file,
    info: *mut FileInfo,
}

/// Our header, rounded up to 8 bytes so the real file that follows it is aligned.
const fn header_size() -> usize {
    std::mem::size_of::<WrapFile>().next_multiple_of(8)
}

/// The real file inside our allocation.
unsafe fn real_file(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: SQLite allocated header_size() + the real szOsFile bytes (see `register`).
    unsafe { file.cast::<u8>().add(header_size()).cast() }
}

unsafe fn real_methods<'a>(real: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    // SAFETY: only called on files whose real open succeeded, so pMethods is set.
    unsafe { &*(*real).pMethods }
}

unsafe fn info<'a>(file: *mut ffi::sqlite3_file) -> &'a FileInfo {
    // SAFETY: our methods are installed only together with a live info box (see x_open).
    unsafe { &*(*file.cast::<WrapFile>()).info }
}

/// Whether this handle was opened after the last cut (the "process" is still alive).
fn alive(st: &mut State, info: &FileInfo) -> bool {
    let alive = info.name.as_ref().is_none_or(|name| {
        !st.cuts
            .iter()
            .any(|(dir, at)| *at > info.opened && name.starts_with(dir))
    });
    if !alive {
        st.stats.refused_after_cut += 1;
    }
    alive
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: `file` points to szOsFile bytes owned by SQLite; the real VFS opens the part after
    // our header. We install our methods only when it succeeded.
    unsafe {
        let wrap = file.cast::<WrapFile>();
        (*wrap).base.pMethods = std::ptr::null();
        (*wrap).info = std::ptr::null_mut();
        let real_vfs = real_vfs();
        let real = real_file(file);
        (*real).pMethods = std::ptr::null();
        let open = (*real_vfs).xOpen.expect("the real VFS has xOpen");
        let rc = open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*real).pMethods.is_null()
                && let Some(close) = real_methods(real).xClose
            {
                close(real);
            }
            return rc;
        }
        let tracked_kind =
            ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL;
        let file_name = (!name.is_null())
            .then(|| PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned()));
        let path = file_name.clone().filter(|_| flags & tracked_kind != 0);
        let mut st = state();
        if let Some(path) = &path {
            st.files.entry(path.clone()).or_insert_with(|| Durable {
                // A file that exists when first opened is durable as it is (the previous
                // boot's cut wrote it); a new one starts empty.
                image: std::fs::read(path).unwrap_or_default(),
                pending: Vec::new(),
            });
        }
        st.clock += 1;
        let opened = st.clock;
        drop(st);
        (*wrap).info = Box::into_raw(Box::new(FileInfo {
            name: file_name,
            path,
            opened,
        }));
        (*wrap).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: forwards to the real VFS with its own pointer; `name` is a C string from SQLite.
    unsafe {
        let real_vfs = real_vfs();
        let delete = (*real_vfs).xDelete.expect("the real VFS has xDelete");
        let rc = delete(real_vfs, name, sync_dir);
        if rc == ffi::SQLITE_OK && !name.is_null() {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            state().files.remove(&path);
        }
        rc
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

/// Calls the real file's method `$m`, or answers `$missing` when the real VFS lacks it.
macro_rules! forward {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let real = real_file($file);
        match real_methods(real).$m {
            Some(f) => f(real $(, $arg)*),
            None => $missing,
        }
    }};
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once per successful open; we free our box after closing the
    // real file, whatever the generation (a dead process's descriptors are released too).
    unsafe {
        let rc = forward!(file, xClose, ffi::SQLITE_OK);
        let wrap = file.cast::<WrapFile>();
        if !(*wrap).info.is_null() {
            drop(Box::from_raw((*wrap).info));
            (*wrap).info = std::ptr::null_mut();
        }
        (*wrap).base.pMethods = std::ptr::null();
        rc
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe {
        if !alive(&mut state(), info(file)) {
            return ffi::SQLITE_IOERR_READ;
        }
        forward!(file, xRead, ffi::SQLITE_IOERR_READ, buf, amount, offset)
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: `buf` holds `amount` bytes (SQLite's contract for xWrite). The state lock is held
    // across the real write so a cut cannot fall between the write and its bookkeeping.
    unsafe {
        let info = info(file);
        let mut st = state();
        if !alive(&mut st, info) {
            return ffi::SQLITE_IOERR_WRITE;
        }
        let rc = forward!(file, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amount, offset);
        if rc == ffi::SQLITE_OK
            && let Some(path) = &info.path
        {
            let data = std::slice::from_raw_parts(buf.cast::<u8>(), amount as usize).to_vec();
            st.files
                .entry(path.clone())
                .or_default()
                .pending
                .push(Pending::Write {
                    offset: offset as usize,
                    data,
                });
            trip(&mut st, path);
        }
        rc
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: forwards to the real file under the state lock (see x_write).
    unsafe {
        let info = info(file);
        let mut st = state();
        if !alive(&mut st, info) {
            return ffi::SQLITE_IOERR_TRUNCATE;
        }
        let rc = forward!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size);
        if rc == ffi::SQLITE_OK
            && let Some(path) = &info.path
        {
            st.files
                .entry(path.clone())
                .or_default()
                .pending
                .push(Pending::Truncate(size as usize));
        }
        rc
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: forwards to the real file under the state lock: a sync either completes before a
    // cut (and its data is durable) or is refused after it.
    unsafe {
        let info = info(file);
        let mut st = state();
        if !alive(&mut st, info) {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        let rc = forward!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags);
        if rc == ffi::SQLITE_OK
            && let Some(path) = &info.path
        {
            st.files.entry(path.clone()).or_default().sync();
            st.stats.syncs += 1;
        }
        rc
    }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe {
        if !alive(&mut state(), info(file)) {
            return ffi::SQLITE_IOERR_FSTAT;
        }
        forward!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe {
        if !alive(&mut state(), info(file)) {
            return ffi::SQLITE_IOERR_LOCK;
        }
        forward!(file, xLock, ffi::SQLITE_IOERR_LOCK, level)
    }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwards SQLite's own arguments; unlocking is allowed after a cut so dead handles
    // can be torn down.
    unsafe { forward!(file, xUnlock, ffi::SQLITE_OK, level) }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe { forward!(file, xCheckReservedLock, ffi::SQLITE_IOERR_LOCK, out) }
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe { forward!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg) }
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwards to the real file.
    unsafe { forward!(file, xSectorSize, 4096) }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwards to the real file.
    unsafe { forward!(file, xDeviceCharacteristics, 0) }
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments; the real VFS maps the -shm file (shared mmap).
    unsafe {
        if !alive(&mut state(), info(file)) {
            return ffi::SQLITE_IOERR_SHMMAP;
        }
        forward!(
            file,
            xShmMap,
            ffi::SQLITE_IOERR_SHMMAP,
            page,
            page_size,
            extend,
            out
        )
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments; unlocks are allowed after a cut.
    unsafe {
        if flags & ffi::SQLITE_SHM_UNLOCK == 0 && !alive(&mut state(), info(file)) {
            return ffi::SQLITE_IOERR_SHMLOCK;
        }
        forward!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
    }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: forwards to the real file.
    unsafe { forward!(file, xShmBarrier, ()) }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwards to the real file (allowed after a cut, for teardown).
    unsafe { forward!(file, xShmUnmap, ffi::SQLITE_OK, delete) }
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments. After a cut we answer "no mapping" (null), so
    // SQLite falls back to xRead, which fails.
    unsafe {
        if !alive(&mut state(), info(file)) {
            *out = std::ptr::null_mut();
            return ffi::SQLITE_OK;
        }
        forward!(file, xFetch, ffi::SQLITE_OK, offset, amount, out)
    }
}

unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    ptr: *mut c_void,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the real file.
    unsafe { forward!(file, xUnfetch, ffi::SQLITE_OK, offset, ptr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path, synchronous: &str) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).expect("open through the power-loss VFS");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0;"
        ))
        .expect("pragmas");
        conn
    }

    fn rows(path: &Path) -> i64 {
        let conn = open(path, "FULL");
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count rows")
    }

    /// Commits with `synchronous=FULL`, cuts the power, reopens, and returns the surviving rows.
    fn survivors() -> (i64, CutReport) {
        install().expect("install the VFS");
        let tmp = tempfile_dir();
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        let conn = open(&a.join("db"), "FULL");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("create table");
        for i in 0..50 {
            conn.execute("INSERT INTO t VALUES (?1)", [i])
                .expect("insert");
        }
        let report = power_cut(&a, &b).expect("cut");
        // The dead handle cannot write any more.
        assert!(conn.execute("INSERT INTO t VALUES (99)", []).is_err());
        drop(conn);
        let n = rows(&b.join("db"));
        (n, report)
    }

    /// A scratch directory, removed when dropped (also when the test fails).
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn tempfile_dir() -> Scratch {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("drover-test-powerloss-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    /// A trip wire cuts inside a transaction: the commit in flight fails, earlier ones stay.
    #[test]
    fn trip_wire_cuts_inside_a_transaction() {
        install().expect("install the VFS");
        let tmp = tempfile_dir();
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        let conn = open(&a.join("db"), "FULL");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("create table");
        for i in 0..10 {
            conn.execute("INSERT INTO t VALUES (?1)", [i])
                .expect("insert");
        }
        arm_cut_after_writes(&a, &b, 1);
        assert!(
            conn.execute("INSERT INTO t VALUES (10)", []).is_err(),
            "a commit whose WAL write was cut before its fsync must fail"
        );
        let report = fired(&a).expect("the trip wire fired").expect("cut");
        assert!(report.dropped_changes > 0, "the cut dropped nothing");
        drop(conn);
        assert_eq!(rows(&b.join("db")), 10);
    }

    #[test]
    fn synced_commits_survive_a_power_cut() {
        let (n, report) = survivors();
        assert_eq!(
            n, 50,
            "every committed row must survive with synchronous=FULL"
        );
        assert!(!report.files.is_empty());
    }

    /// Negative control: without fsync, the commits were only in the "page cache" and the cut
    /// drops them. The table itself is gone too (its creation was never synced), so reopening
    /// finds no table at all.
    #[test]
    fn unsynced_commits_are_lost_in_a_power_cut() {
        install().expect("install the VFS");
        let tmp = tempfile_dir();
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        let conn = open(&a.join("db"), "OFF");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("create table");
        for i in 0..50 {
            conn.execute("INSERT INTO t VALUES (?1)", [i])
                .expect("insert");
        }
        let report = power_cut(&a, &b).expect("cut");
        drop(conn);
        assert!(report.dropped_changes > 0, "the cut dropped nothing");
        let conn = rusqlite::Connection::open(b.join("db")).expect("reopen");
        let n: rusqlite::Result<i64> = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0));
        assert!(
            n.is_err() || n.as_ref().is_ok_and(|n| *n < 50),
            "unsynced rows survived the cut: {n:?}"
        );
    }
}
