//! Crash-safe file replacement: write a temp file beside the target, fsync,
//! rename over the target, fsync the directory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replace `path` with `bytes` atomically: a reader sees the old content or
/// the new, never a mix, even if the process dies half-way.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Replace `path` atomically with what `fill` writes into a buffered temp
/// file beside it (temp, fsync, rename, fsync the folder). When `fill` or
/// any step fails, the old file is untouched and the temp removed.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, 0o666, true, fill)
}

/// [`write_atomic`] for a file only its owner may read (mode 0600 from the
/// start: the temp is never readable by others either).
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, 0o600, true, |w| w.write_all(bytes))
}

/// Temp, then (when `durable`) fsync, rename, then (when `durable`) fsync
/// the folder.
fn replace(
    path: &Path,
    mode: u32,
    durable: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = temp_sibling(path);
    let result = (|| {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        let mut file = BufWriter::new(file);
        fill(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            // A bare file name's parent is "": the current folder.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            sync_dir(dir.unwrap_or(Path::new(".")))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write `image` as a PNG at `path`, atomically (see [`write_atomic_with`]).
pub fn save_png_atomic(path: &Path, image: impl Into<image::DynamicImage>) -> io::Result<()> {
    let image = image.into();
    write_atomic_with(path, |w| {
        image
            .write_to(w, image::ImageFormat::Png)
            .map_err(io::Error::other)
    })
}

/// [`save_png_atomic`] for one of many images written before the file that
/// lists them (an ingest's or a generate stage's `manifest.csv`): renamed
/// into place whole, but not fsynced one by one (5 ms a file here, minutes
/// for a large data set). Call [`sync_filesystem`] before writing the list,
/// so that whatever the list names is on disk.
pub fn save_png_batched(path: &Path, image: impl Into<image::DynamicImage>) -> io::Result<()> {
    let image = image.into();
    replace(path, 0o666, false, |w| {
        image
            .write_to(w, image::ImageFormat::Png)
            .map_err(io::Error::other)
    })
}

/// Flush everything written to the file system holding `dir` (syncfs).
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let folder = File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A hidden temp name in the same directory (so the rename stays on one
/// file system), unique per process and call.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// fsync a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("scintigan-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("status.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_folder() {
        // `scintigan eval --predictions pred.csv`: the parent is "".
        let name = format!("scintigan-atomic-bare-{}.csv", std::process::id());
        write_atomic(Path::new(&name), b"a,b\n").unwrap();
        assert_eq!(fs::read(&name).unwrap(), b"a,b\n");
        fs::remove_file(&name).unwrap();
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_leaves_no_temp() {
        let dir =
            std::env::temp_dir().join(format!("scintigan-atomic-fail-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("report.md");
        write_atomic(&target, b"first report").unwrap();
        let err = write_atomic_with(&target, |w| {
            w.write_all(b"half a sec")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&target).unwrap(), b"first report");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A PNG goes through the same helper and reads back.
        let png = dir.join("grid.png");
        let img = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]));
        save_png_atomic(&png, img.clone()).unwrap();
        assert_eq!(image::open(&png).unwrap().to_luma8(), img);
        // The batched form: whole files, then one flush for all.
        let many = dir.join("many.png");
        save_png_batched(&many, img.clone()).unwrap();
        sync_filesystem(&dir).unwrap();
        assert_eq!(image::open(&many).unwrap().to_luma8(), img);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 3, "no temp left");
        fs::remove_dir_all(&dir).unwrap();
    }
}
