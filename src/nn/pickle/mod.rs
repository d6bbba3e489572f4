//! Reading `torch.save` checkpoints (state dicts) without libtorch's
//! unpickler, which rejects the `collections.OrderedDict` (with its
//! `_metadata` attribute) that `torch.save(model.state_dict(), f)` writes.
//!
//! Two container formats are read:
//!
//! * **zip** (PyTorch >= 1.6, the default): a zip archive whose entries all
//!   sit under one folder `<name>/`: `<name>/data.pkl` is the pickled object,
//!   `<name>/data/<key>` holds the raw little-endian bytes of storage `<key>`,
//!   and `<name>/byteorder` (when present) says `little` or `big`. Storages
//!   are referenced from the pickle by the persistent id
//!   `('storage', storage_type, key, location, numel)`.
//! * **legacy** (`_use_new_zipfile_serialization=False`, and every file
//!   written before PyTorch 1.6): a sequence of pickles in one file: the magic
//!   number `0x1950a86a20f9469cfc6c`, the protocol version (1001), a
//!   `sys_info` dict (`little_endian`, type sizes), the object itself, then
//!   the sorted list of storage keys; then, for each key in that order, an
//!   8-byte little-endian element count followed by the storage's raw bytes.
//!   Persistent ids are `('storage', storage_type, key, location, numel,
//!   view_metadata)`, where `view_metadata` is `None` or
//!   `(view_key, offset, size)` for a slice of a storage (very old files).
//!
//! The pickles are run by a small pickle machine (protocols 0-5, the opcodes
//! `pickle` emits for dicts, lists, tuples, strings, numbers and globals)
//! that calls nothing: it knows `collections.OrderedDict`, the tensor
//! rebuild functions of `torch._utils` / `torch._tensor`, `torch.Size` and the
//! storage classes, and turns any other global into an opaque object.
//! Values live in an arena and refer to each other by index, so shared or
//! cyclic references and deep nesting cost nothing to drop.
//!
//! Errors are single lines naming what went wrong and where (zip entry,
//! pickle offset, state-dict key); the caller adds the file name.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use tch::Tensor;

mod container;
mod machine;
mod tensors;
#[cfg(test)]
mod tests;

use container::{read_legacy, read_zip};

/// Every tensor of the state dict in a `torch.save` file (zip or legacy
/// format), keys in file order, as CPU tensors with the stored dtype, shape,
/// strides and storage offset. The top-level object must be a dict of
/// tensors, or a dict holding one under `state_dict`, `model_state_dict` or
/// `model`. Tensors that shared a storage in the file share it here too.
pub fn read_torch_checkpoint(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    read_file(path).map_err(crate::text::one_line)
}

fn read_file(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    let mut head = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    if head.is_empty() {
        return Err("empty file, not a torch.save checkpoint".into());
    }
    if head.starts_with(b"PK") {
        file.rewind().map_err(|e| format!("cannot read: {e}"))?;
        return read_zip(BufReader::new(file), file_len);
    }
    if head.first() == Some(&0x80) {
        drop(file);
        let data = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        return read_legacy(&data);
    }
    let mut rest = Vec::new();
    file.rewind()
        .and_then(|_| (&mut file).take(512).read_to_end(&mut rest))
        .map_err(|e| format!("cannot read: {e}"))?;
    if rest.get(257..262) == Some(&b"ustar"[..]) {
        return Err(
            "a tar archive (the torch.save format of PyTorch < 0.1.10) is not supported; re-save it with a recent torch.save".into(),
        );
    }
    Err(format!(
        "not a torch.save checkpoint: starts with bytes {} (expected a zip archive 'PK' or a pickle 0x80)",
        hex(&head)
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
