//! Free space on the file system holding a path, and the disk-full check
//! made before a checkpoint is written.

use super::StoreError;
use std::path::Path;

/// (free to unprivileged users, total) bytes of the file system holding
/// `path`; `None` when `statvfs` cannot answer.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return None;
    }
    let unit = s.f_frsize as u64;
    Some((s.f_bavail as u64 * unit, s.f_blocks as u64 * unit))
}

/// What a write of `payload` bytes needs free: the payload, 2 % for the
/// file format, and 1 MiB for the small files written beside it.
pub fn with_margin(payload: u64) -> u64 {
    payload + payload / 50 + (1 << 20)
}

/// `Err(DiskFull)` when the file system holding `dir` has less free than
/// `needed` bytes (with [`with_margin`]). A file system that cannot say is
/// given the benefit of the doubt: the write itself then reports.
pub fn ensure_space(dir: &Path, needed: u64) -> Result<(), StoreError> {
    match disk_space(dir) {
        Some((free, _)) if free < with_margin(needed) => Err(StoreError::DiskFull {
            dir: dir.to_path_buf(),
            free,
            needed: with_margin(needed),
        }),
        _ => Ok(()),
    }
}

/// Whether `e` is the operating system saying the disk is full (ENOSPC or
/// EDQUOT), as an I/O error or in the words of a writer that flattened it.
pub fn is_out_of_space(e: &StoreError) -> bool {
    match e {
        StoreError::DiskFull { .. } => true,
        StoreError::Io { source, .. } => io_out_of_space(source),
        StoreError::Corrupt { message, .. } => says_out_of_space(message),
        _ => false,
    }
}

/// An I/O error that is ENOSPC or EDQUOT.
pub fn io_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// A message that quotes the operating system's words for ENOSPC or EDQUOT
/// (a writer that turned the I/O error into text).
pub fn says_out_of_space(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("Disk quota exceeded")
}

/// Bytes as a short figure: "812 kB", "12 MB", "1.4 GB".
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1e6 {
        format!("{:.0} kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.0} MB", n / 1e6)
    } else {
        format!("{:.1} GB", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_beyond_the_disk_is_refused_with_both_figures() {
        let dir = std::env::temp_dir();
        let (free, total) = disk_space(&dir).expect("statvfs on the temp dir");
        assert!(free <= total && total > 0);
        assert!(ensure_space(&dir, 0).is_ok() || free < (1 << 20));
        let err = ensure_space(&dir, total * 2).unwrap_err();
        let StoreError::DiskFull {
            free: said_free,
            needed,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        // Others write to this disk meanwhile: the free figure is a moment's.
        assert!(said_free.abs_diff(free) < total / 10, "{err}");
        assert_eq!(*needed, with_margin(total * 2));
        let text = err.to_string();
        assert!(text.starts_with("disk full: "), "{text}");
        assert!(text.contains(&human_bytes(*said_free)), "{text}");
        assert!(text.contains(&human_bytes(*needed)), "{text}");
    }

    #[test]
    fn byte_figures_read_as_people_write_them() {
        assert_eq!(human_bytes(812_000), "812 kB");
        assert_eq!(human_bytes(12_300_000), "12 MB");
        assert_eq!(human_bytes(1_400_000_000), "1.4 GB");
    }
}
