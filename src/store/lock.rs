//! The run lock: whoever works a run directory (a foreground `run`, a
//! worker under the daemon, a Slurm job) holds an exclusive `flock` on
//! `runs/<id>/.lock` for as long as it runs. The kernel releases it when
//! the process ends, crash and `kill -9` included, so a stale lock cannot
//! outlive its holder. The file names the holder (pid, host, start time)
//! for the refusal message of whoever comes second.

use super::{StoreError, time::compact_utc, unix_now};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// Who holds a run's lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Compact UTC time the lock was taken.
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} (since {})",
            self.pid, self.host, self.since
        )
    }
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        Some(Holder {
            pid: words.next()?.parse().ok()?,
            host: words.next()?.to_string(),
            since: words.next().unwrap_or("?").to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{run}: already being worked by {holder}; refusing to start a second worker on it (wait for it to end, or stop it with `scintigan cancel`)"
    )]
    Held { run: PathBuf, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A held run lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    root: PathBuf,
}

impl RunLock {
    /// The run directory this lock is held on.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// This machine's host name (`unknown-host` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown-host".into())
}

fn open(root: &Path) -> Result<File, StoreError> {
    let path = root.join(LOCK_FILE);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))
}

fn describe(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    Holder::parse(&text).map_or_else(
        || "another process (its pid is not in .lock yet)".into(),
        |h| h.to_string(),
    )
}

/// Take `root`'s lock, or say who has it. Waits at most a quarter of a
/// second: long enough to outlast a [`holder`] probe (which holds a shared
/// lock for microseconds), never as long as a real holder.
pub fn acquire(root: &Path) -> Result<RunLock, LockError> {
    let mut file = open(root)?;
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    run: root.to_path_buf(),
                    holder: describe(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(&root.join(LOCK_FILE), e).into());
            }
        }
    }
    let path = root.join(LOCK_FILE);
    let line = format!(
        "{} {} {}\n",
        std::process::id(),
        host_name(),
        compact_utc(unix_now())
    );
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| StoreError::io(&path, e))?;
    Ok(RunLock {
        _file: file,
        root: root.to_path_buf(),
    })
}

/// Who holds `root`'s lock now, if anyone (a probe that takes nothing).
pub fn holder(root: &Path) -> Option<String> {
    if !root.join(LOCK_FILE).exists() {
        return None;
    }
    let mut file = open(root).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None, // free; released when `file` closes
        Err(TryLockError::WouldBlock) => Some(describe(&mut file)),
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_the_lock_until_it_is_released() {
        let dir = std::env::temp_dir().join(format!("scintigan-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(holder(&dir), None);
        let first = acquire(&dir).unwrap();
        // flock locks belong to the open file description: a second open in
        // this process is refused as another process would be.
        let err = acquire(&dir).unwrap_err().to_string();
        let me = format!("pid {} on {}", std::process::id(), host_name());
        assert!(err.contains(&me), "{err}");
        assert!(err.contains("refusing to start a second worker"), "{err}");
        assert!(holder(&dir).is_some_and(|h| h.contains(&me)));
        drop(first);
        assert_eq!(holder(&dir), None);
        let again = acquire(&dir);
        assert!(again.is_ok(), "free again after the holder let go");
        std::fs::remove_dir_all(&dir).ok();
    }
}
