//! Containers: zip and legacy (see the module doc of [`super`]).

use super::machine::{Machine, Node};
use super::tensors::state_dict_tensors;
use std::collections::HashMap;
use std::io::{Read, Seek};
use tch::{Kind, Tensor};

/// The first pickle of a legacy `torch.save` file.
pub(super) const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The second pickle of a legacy file (`torch.serialization.PROTOCOL_VERSION`).
const LEGACY_PROTOCOL: i128 = 1001;

/// Reads the zip format from `reader`; `file_len` bounds allocations.
pub(super) fn read_zip<R: Read + Seek>(
    reader: R,
    file_len: u64,
) -> Result<Vec<(String, Tensor)>, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("bad zip archive: {e}"))?;
    let pkl_names: Vec<String> = zip
        .file_names()
        .filter(|n| {
            n.strip_suffix("/data.pkl")
                .is_some_and(|p| !p.is_empty() && !p.contains('/'))
        })
        .map(String::from)
        .collect();
    let pkl_name = match pkl_names.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(
                "zip archive has no <name>/data.pkl entry: not a torch.save checkpoint".into(),
            );
        }
        many => {
            return Err(format!(
                "zip archive has several data.pkl entries ({}): not a torch.save checkpoint",
                many.join(", ")
            ));
        }
    };
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();

    let byteorder_name = format!("{prefix}byteorder");
    if zip.file_names().any(|n| n == byteorder_name) {
        let order = read_entry(&mut zip, &byteorder_name, None, file_len)?;
        let order = String::from_utf8_lossy(&order);
        if order.trim() != "little" {
            return Err(format!(
                "zip entry {byteorder_name} says '{}': only little-endian checkpoints are supported",
                order.trim().chars().take(20).collect::<String>()
            ));
        }
    }

    let pickle = read_entry(&mut zip, &pkl_name, None, file_len)?;
    let (vm, root) = Machine::run(&pickle, 0).map_err(|e| format!("zip entry {pkl_name}: {e}"))?;
    state_dict_tensors(&vm, root, |key, nbytes| {
        read_entry(
            &mut zip,
            &format!("{prefix}data/{key}"),
            Some(nbytes),
            file_len,
        )
    })
}

/// The bytes of zip entry `name`, its CRC-32 checked; with `want`, an error
/// when it holds fewer than `want` bytes.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    want: Option<u64>,
    file_len: u64,
) -> Result<Vec<u8>, String> {
    let mut entry = zip
        .by_name(name)
        .map_err(|e| format!("zip entry {name}: {e}"))?;
    let expected = want.unwrap_or(entry.size());
    // Only trust a size for pre-allocation when the file could hold it.
    let capacity = if expected <= file_len { expected } else { 0 };
    let mut buf = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    // Reading to the end makes the zip reader check the CRC-32.
    entry
        .read_to_end(&mut buf)
        .map_err(|e| format!("zip entry {name}: {e}"))?;
    if let Some(want) = want
        && (buf.len() as u64) < want
    {
        return Err(format!(
            "zip entry {name} holds {} bytes, the storage needs {want}",
            buf.len()
        ));
    }
    Ok(buf)
}

/// Reads the legacy format from the whole file `data`.
pub(super) fn read_legacy(data: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    let (vm, magic, pos) = Machine::run_one(data, 0, "magic number")?;
    if vm.int(magic) != Some(LEGACY_MAGIC) {
        return Err(format!(
            "not a torch.save checkpoint: the first pickle is a {}, not torch's magic number",
            vm.describe(magic)
        ));
    }
    let (vm, version, pos) = Machine::run_one(data, pos, "protocol version")?;
    if vm.int(version) != Some(LEGACY_PROTOCOL) {
        return Err(format!(
            "unsupported legacy torch.save protocol version {} (offset {pos}); expected {LEGACY_PROTOCOL}",
            vm.describe(version)
        ));
    }
    let (vm, sys_info, pos) = Machine::run_one(data, pos, "sys_info")?;
    if let Some(Node::Bool(false)) = vm.dict_get(sys_info, "little_endian").map(|id| vm.node(id)) {
        return Err("checkpoint was written on a big-endian machine: not supported".into());
    }
    let (vm, root, pos) = Machine::run_one(data, pos, "checkpoint object")?;
    let (keys_vm, keys, mut pos) = Machine::run_one(data, pos, "storage key list")?;
    let keys = keys_vm.str_list(keys).ok_or_else(|| {
        format!(
            "storage key list (before offset {pos}) is a {}, not a list of strings",
            keys_vm.describe(keys)
        )
    })?;

    // Where each storage's bytes lie in `data`.
    let mut ranges: HashMap<String, std::ops::Range<usize>> = HashMap::new();
    for key in keys {
        let Some(&(kind, numel)) = vm.storages.get(&key) else {
            return Err(format!(
                "storage '{key}' is listed at offset {pos} but no tensor uses it, so its size is unknown"
            ));
        };
        let kind = kind.ok_or_else(|| {
            format!("storage '{key}' has an unsupported storage type, cannot skip its bytes")
        })?;
        let count_bytes = data
            .get(pos..pos.saturating_add(8))
            .ok_or_else(|| format!("file truncated at offset {pos}: storage '{key}' is missing"))?;
        let mut count = [0u8; 8];
        count.copy_from_slice(count_bytes);
        let count = i64::from_le_bytes(count);
        if count != numel {
            return Err(format!(
                "storage '{key}' at offset {pos} holds {count} elements, the pickle says {numel}"
            ));
        }
        let start = pos + 8;
        let nbytes = byte_len(count, kind)
            .ok_or_else(|| format!("storage '{key}' at offset {pos}: bad element count {count}"))?;
        let end = start
            .checked_add(nbytes)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                format!(
                    "file truncated: storage '{key}' needs bytes {start}..{} but the file has {}",
                    start as u128 + nbytes as u128,
                    data.len()
                )
            })?;
        ranges.insert(key, start..end);
        pos = end;
    }

    state_dict_tensors(&vm, root, |key, nbytes| {
        let range = ranges
            .get(key)
            .ok_or_else(|| format!("storage '{key}' is not in the file's storage list"))?;
        data.get(range.clone())
            .filter(|b| b.len() as u64 >= nbytes)
            .and_then(|b| b.get(..usize::try_from(nbytes).ok()?))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("storage '{key}' is shorter than its {nbytes} bytes"))
    })
}

/// `count` elements of `kind` in bytes, when non-negative and addressable.
fn byte_len(count: i64, kind: Kind) -> Option<usize> {
    usize::try_from(count)
        .ok()?
        .checked_mul(kind.elt_size_in_bytes())
}
