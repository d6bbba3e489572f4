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

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The first pickle of a legacy `torch.save` file.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The second pickle of a legacy file (`torch.serialization.PROTOCOL_VERSION`).
const LEGACY_PROTOCOL: i128 = 1001;
/// Keys under which training checkpoints commonly keep the state dict.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// Every tensor of the state dict in a `torch.save` file (zip or legacy
/// format), keys in file order, as CPU tensors with the stored dtype, shape,
/// strides and storage offset. The top-level object must be a dict of
/// tensors, or a dict holding one under `state_dict`, `model_state_dict` or
/// `model`. Tensors that shared a storage in the file share it here too.
pub fn read_torch_checkpoint(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    read_file(path).map_err(one_line)
}

/// `message` with control characters (from keys and strings in the file)
/// escaped, so that it stays on one line.
fn one_line(message: String) -> String {
    if !message.chars().any(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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

// ---------------------------------------------------------------------------
// Containers: zip and legacy.

/// Reads the zip format from `reader`; `file_len` bounds allocations.
fn read_zip<R: Read + Seek>(reader: R, file_len: u64) -> Result<Vec<(String, Tensor)>, String> {
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
    let entries = select_state_dict(&vm, root)?;
    let mut storages = StorageCache::default();
    entries
        .into_iter()
        .map(|(name, spec)| {
            let storage = storages.get(&spec.storage, spec.kind, |key, nbytes| {
                read_entry(
                    &mut zip,
                    &format!("{prefix}data/{key}"),
                    Some(nbytes),
                    file_len,
                )
            });
            let tensor = storage.and_then(|s| build_tensor(&s, &spec));
            tensor
                .map(|t| (name.clone(), t))
                .map_err(|e| format!("tensor '{name}': {e}"))
        })
        .collect()
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
fn read_legacy(data: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
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

    let entries = select_state_dict(&vm, root)?;
    let mut storages = StorageCache::default();
    entries
        .into_iter()
        .map(|(name, spec)| {
            let storage = storages.get(&spec.storage, spec.kind, |key, nbytes| {
                let range = ranges
                    .get(key)
                    .ok_or_else(|| format!("storage '{key}' is not in the file's storage list"))?;
                data.get(range.clone())
                    .filter(|b| b.len() as u64 >= nbytes)
                    .and_then(|b| b.get(..usize::try_from(nbytes).ok()?))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| format!("storage '{key}' is shorter than its {nbytes} bytes"))
            });
            let tensor = storage.and_then(|s| build_tensor(&s, &spec));
            tensor
                .map(|t| (name.clone(), t))
                .map_err(|e| format!("tensor '{name}': {e}"))
        })
        .collect()
}

/// `count` elements of `kind` in bytes, when non-negative and addressable.
fn byte_len(count: i64, kind: Kind) -> Option<usize> {
    usize::try_from(count)
        .ok()?
        .checked_mul(kind.elt_size_in_bytes())
}

// ---------------------------------------------------------------------------
// From pickled values to tensors.

/// A storage as referenced by a persistent id.
#[derive(Debug, Clone)]
struct StorageRef {
    key: String,
    /// `None` for storage types we cannot read.
    kind: Option<Kind>,
    type_name: String,
    /// Elements of `kind` in the whole (root) storage.
    numel: i64,
    /// Legacy storage views: `(offset, len)` in elements of the root storage.
    view: Option<(i64, i64)>,
}

/// A tensor to build: `as_strided(size, stride, offset)` of `storage` read
/// as elements of `kind`.
#[derive(Debug, Clone)]
struct TensorSpec {
    storage: StorageRef,
    kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

/// A storage as read for one tensor: (key, legacy view, element type).
type StorageUse = (String, Option<(i64, i64)>, Kind);

/// One-dimensional storage tensors, built once per [`StorageUse`].
#[derive(Default)]
struct StorageCache {
    built: HashMap<StorageUse, Tensor>,
}

impl StorageCache {
    /// The storage of `r` as a 1-D tensor of `kind`; `fetch(key, nbytes)`
    /// returns the first `nbytes` bytes of root storage `key`.
    fn get(
        &mut self,
        r: &StorageRef,
        kind: Kind,
        fetch: impl FnOnce(&str, u64) -> Result<Vec<u8>, String>,
    ) -> Result<Tensor, String> {
        let cache_key = (r.key.clone(), r.view, kind);
        if let Some(t) = self.built.get(&cache_key) {
            return Ok(t.shallow_clone());
        }
        let storage_kind = r
            .kind
            .ok_or_else(|| format!("storage '{}' has unsupported type {}", r.key, r.type_name))?;
        let elt = storage_kind.elt_size_in_bytes() as u64;
        let root_bytes = u64::try_from(r.numel)
            .ok()
            .and_then(|n| n.checked_mul(elt))
            .ok_or_else(|| format!("storage '{}' has bad size {}", r.key, r.numel))?;
        let bytes = fetch(&r.key, root_bytes)?;
        let (start, len) = match r.view {
            None => (0, root_bytes),
            Some((offset, len)) => {
                let bad = || {
                    format!(
                        "storage view {offset}+{len} lies outside storage '{}' of {} elements",
                        r.key, r.numel
                    )
                };
                let start = u64::try_from(offset).ok().and_then(|o| o.checked_mul(elt));
                let len = u64::try_from(len).ok().and_then(|l| l.checked_mul(elt));
                match (start, len) {
                    (Some(s), Some(l)) if s.checked_add(l).is_some_and(|e| e <= root_bytes) => {
                        (s, l)
                    }
                    _ => return Err(bad()),
                }
            }
        };
        let slice = usize::try_from(start)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(s, l)| bytes.get(s..s.checked_add(l)?))
            .ok_or_else(|| format!("storage '{}' is shorter than {} bytes", r.key, start + len))?;
        let elt_t = kind.elt_size_in_bytes();
        if slice.len() % elt_t != 0 {
            return Err(format!(
                "storage '{}' of {} bytes cannot be read as {kind:?} ({elt_t}-byte elements)",
                r.key,
                slice.len()
            ));
        }
        let numel = i64::try_from(slice.len() / elt_t)
            .map_err(|_| format!("storage '{}' is too large", r.key))?;
        let tensor = Tensor::f_from_data_size(slice, &[numel], kind)
            .map_err(|e| format!("storage '{}': {}", r.key, first_line(&e.to_string())))?;
        self.built.insert(cache_key, tensor.shallow_clone());
        Ok(tensor)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `spec` as a view of `storage` (1-D, `spec.kind`), after checking that
/// every element it addresses lies inside the storage.
fn build_tensor(storage: &Tensor, spec: &TensorSpec) -> Result<Tensor, String> {
    let numel = storage.size().first().copied().unwrap_or(0);
    let where_ = || {
        format!(
            "size {:?}, stride {:?}, offset {} in storage '{}' of {numel} elements",
            spec.size, spec.stride, spec.offset, spec.storage.key
        )
    };
    if spec.offset < 0 || spec.size.iter().any(|&s| s < 0) || spec.stride.iter().any(|&s| s < 0) {
        return Err(format!("negative size, stride or offset: {}", where_()));
    }
    if spec
        .size
        .iter()
        .try_fold(1i64, |acc, &n| acc.checked_mul(n))
        .is_none()
    {
        return Err(format!("too many elements: {}", where_()));
    }
    if spec.size.contains(&0) {
        return Tensor::f_empty(spec.size.as_slice(), (spec.kind, Device::Cpu))
            .map_err(|e| first_line(&e.to_string()).to_string());
    }
    let last = spec
        .size
        .iter()
        .zip(&spec.stride)
        .try_fold(spec.offset, |acc, (&n, &s)| {
            (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
        });
    match last {
        Some(last) if last < numel => {}
        _ => return Err(format!("out of storage bounds: {}", where_())),
    }
    storage
        .f_as_strided(spec.size.as_slice(), spec.stride.as_slice(), spec.offset)
        .map_err(|e| format!("{}: {}", where_(), first_line(&e.to_string())))
}

/// The `(key, tensor)` entries of the state dict in `root`.
fn select_state_dict(vm: &Machine, root: Id) -> Result<Vec<(String, TensorSpec)>, String> {
    let mut dict_id = root;
    for _ in 0..4 {
        let Node::Dict(dict) = vm.node(dict_id) else {
            return Err(format!(
                "the checkpoint holds a {}, not a dict of tensors (a state dict)",
                vm.describe(dict_id)
            ));
        };
        let wrapped = WRAPPER_KEYS.iter().find_map(|k| {
            let id = dict.get_str(k)?;
            matches!(vm.node(id), Node::Dict(_)).then_some(id)
        });
        match wrapped {
            Some(inner) => dict_id = inner,
            None => break,
        }
    }
    let Node::Dict(dict) = vm.node(dict_id) else {
        return Err("state dict nested too deeply".into());
    };
    let mut out = Vec::with_capacity(dict.items.len());
    for &(k, v) in &dict.items {
        let Some(key) = vm.str(k) else {
            return Err(format!(
                "state dict key is a {}, not a string",
                vm.describe(k)
            ));
        };
        match vm.node(v) {
            Node::Tensor(spec) => out.push((key.to_string(), spec.clone())),
            Node::Unsupported(why) => {
                return Err(format!("state dict entry '{key}' is a {why}"));
            }
            _ => {
                let keys: Vec<&str> = dict
                    .items
                    .iter()
                    .filter_map(|&(k, _)| vm.str(k))
                    .take(8)
                    .collect();
                return Err(format!(
                    "state dict entry '{key}' is a {}, not a tensor (the dict's keys: {}{})",
                    vm.describe(v),
                    keys.join(", "),
                    if dict.items.len() > 8 { ", ..." } else { "" }
                ));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The pickle machine.

type Id = usize;

/// A dict in insertion order; string keys are de-duplicated as Python does.
#[derive(Debug, Default)]
struct Dict {
    items: Vec<(Id, Id)>,
    by_str: HashMap<String, usize>,
}

impl Dict {
    fn get_str(&self, key: &str) -> Option<Id> {
        self.by_str
            .get(key)
            .and_then(|&i| self.items.get(i))
            .map(|&(_, v)| v)
    }
}

/// A pickled value. Containers refer to other nodes by index.
#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i128),
    /// An integer wider than 128 bits.
    BigInt,
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Set(Vec<Id>),
    Dict(Dict),
    Global {
        module: String,
        name: String,
    },
    Storage(StorageRef),
    Tensor(TensorSpec),
    /// Anything else: what built it, for messages.
    Object(String),
    /// A tensor we cannot read (dtype, storage type), with why.
    Unsupported(String),
}

struct Machine {
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// Root storages seen in persistent ids: key -> (dtype, element count).
    storages: HashMap<String, (Option<Kind>, i64)>,
}

/// A cursor over pickle bytes; offsets in messages are absolute.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                format!(
                    "truncated: needs {n} bytes at offset {}, {} left",
                    self.pos,
                    self.data.len().saturating_sub(self.pos)
                )
            })?;
        let out = self.data.get(self.pos..end).ok_or("truncated")?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn len_u32(&mut self) -> Result<usize, String> {
        usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|_| "length overflow".into())
    }
    fn len_u64(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| "length overflow".into())
    }
    /// A text line without its `\n`.
    fn line(&mut self) -> Result<&'a [u8], String> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("truncated: no end of line after offset {}", self.pos))?;
        let line = self.take(n)?;
        self.pos += 1;
        Ok(line)
    }
}

/// Python 2 `str` and text-protocol lines: UTF-8 when valid, else Latin-1.
fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("string is not UTF-8: {e}"))
}

/// Python 2 module names as Python 3's unpickler maps them.
fn py3_module(module: &str) -> &str {
    match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        other => other,
    }
}

/// A readable name for an opcode byte.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'i' => "INST",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

impl Machine {
    fn new() -> Self {
        Machine {
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            storages: HashMap::new(),
        }
    }

    /// Runs the pickle starting at `start` in `data`; returns the machine
    /// and the value STOP returned.
    fn run(data: &[u8], start: usize) -> Result<(Machine, Id), String> {
        let (vm, id, _) = Self::run_at(data, start)?;
        Ok((vm, id))
    }

    /// As [`Machine::run`], also returning the offset after STOP, with
    /// `what` (the pickle's role) in errors.
    fn run_one(data: &[u8], start: usize, what: &str) -> Result<(Machine, Id, usize), String> {
        Self::run_at(data, start).map_err(|e| format!("{what} pickle: {e}"))
    }

    fn run_at(data: &[u8], start: usize) -> Result<(Machine, Id, usize), String> {
        let mut vm = Machine::new();
        let mut r = Reader { data, pos: start };
        loop {
            let at = r.pos;
            let op = r.u8().map_err(|_| {
                format!("truncated: pickle ends at offset {at} before its STOP opcode")
            })?;
            match vm.step(op, &mut r) {
                Ok(Some(result)) => return Ok((vm, result, r.pos)),
                Ok(None) => {}
                Err(e) => {
                    let shown = if op.is_ascii_graphic() {
                        format!(" '{}'", char::from(op))
                    } else {
                        String::new()
                    };
                    return Err(format!("opcode 0x{op:02x}{shown} at offset {at}: {e}"));
                }
            }
        }
    }

    fn node(&self, id: Id) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    fn add(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn push(&mut self, node: Node) {
        let id = self.add(node);
        self.stack.push(id);
    }

    fn pop(&mut self) -> Result<Id, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("stack underflow (popped past a MARK)".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn top(&self) -> Result<Id, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("stack underflow (top is a MARK)".into());
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| "stack underflow".into())
    }

    /// Everything pushed since the last MARK, removing the mark.
    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let mark = self.marks.pop().ok_or("no MARK on the stack")?;
        if mark > self.stack.len() {
            return Err("stack underflow below a MARK".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&self, key: u64) -> Result<Id, String> {
        self.memo
            .get(&key)
            .copied()
            .ok_or_else(|| format!("memo entry {key} was never stored"))
    }

    fn int(&self, id: Id) -> Option<i128> {
        match self.node(id) {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    fn i64(&self, id: Id, what: &str) -> Result<i64, String> {
        self.int(id)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| format!("{what} is a {}, not a 64-bit integer", self.describe(id)))
    }

    fn str(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn items(&self, id: Id) -> Option<&[Id]> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    fn int_list(&self, id: Id, what: &str) -> Result<Vec<i64>, String> {
        let items = self
            .items(id)
            .ok_or_else(|| format!("{what} is a {}, not a tuple", self.describe(id)))?;
        items.iter().map(|&i| self.i64(i, what)).collect()
    }

    fn str_list(&self, id: Id) -> Option<Vec<String>> {
        self.items(id)?
            .iter()
            .map(|&i| self.str(i).map(String::from))
            .collect()
    }

    fn dict_get(&self, id: Id, key: &str) -> Option<Id> {
        match self.node(id) {
            Node::Dict(d) => d.get_str(key),
            _ => None,
        }
    }

    /// What a value is, in a few words (never recursive).
    fn describe(&self, id: Id) -> String {
        match self.node(id) {
            Node::None => "None".into(),
            Node::Bool(b) => format!("bool ({b})"),
            Node::Int(v) => format!("int ({v})"),
            Node::BigInt => "big int".into(),
            Node::Float(v) => format!("float ({v})"),
            Node::Str(s) => format!("str ({:?})", s.chars().take(40).collect::<String>()),
            Node::Bytes(b) => format!("bytes ({} bytes)", b.len()),
            Node::Tuple(v) => format!("tuple of {}", v.len()),
            Node::List(v) => format!("list of {}", v.len()),
            Node::Set(v) => format!("set of {}", v.len()),
            Node::Dict(d) => format!("dict of {}", d.items.len()),
            Node::Global { module, name } => format!("global {module}.{name}"),
            Node::Storage(s) => format!("storage '{}'", s.key),
            Node::Tensor(_) => "tensor".into(),
            Node::Object(what) => format!("{what} object"),
            Node::Unsupported(why) => why.clone(),
        }
    }

    /// `dict[key] = value` on the dict `dict_id` (other targets: ignored,
    /// as for attributes of opaque objects).
    fn set_item(&mut self, dict_id: Id, key: Id, value: Id) -> Result<(), String> {
        let key_str = self.str(key).map(String::from);
        match self.nodes.get_mut(dict_id) {
            Some(Node::Dict(d)) => {
                if let Some(k) = key_str {
                    if let Some(&i) = d.by_str.get(&k) {
                        if let Some(item) = d.items.get_mut(i) {
                            item.1 = value;
                        }
                    } else {
                        d.by_str.insert(k, d.items.len());
                        d.items.push((key, value));
                    }
                } else {
                    d.items.push((key, value));
                }
                Ok(())
            }
            Some(Node::Object(_)) => Ok(()),
            _ => Err(format!(
                "SETITEM on a {}, not a dict",
                self.describe(dict_id)
            )),
        }
    }

    fn append(&mut self, list_id: Id, values: Vec<Id>) -> Result<(), String> {
        let what = self.describe(list_id);
        match self.nodes.get_mut(list_id) {
            Some(Node::List(v)) | Some(Node::Set(v)) => {
                v.extend(values);
                Ok(())
            }
            Some(Node::Object(_)) => Ok(()),
            _ => Err(format!("APPEND on a {what}, not a list")),
        }
    }

    /// Executes one opcode; `Some(result)` on STOP.
    fn step(&mut self, op: u8, r: &mut Reader) -> Result<Option<Id>, String> {
        match op {
            // Framing and protocol.
            0x80 => {
                let proto = r.u8()?;
                if proto > 5 {
                    return Err(format!("unsupported pickle protocol {proto}"));
                }
            }
            0x95 => {
                r.take(8)?; // FRAME: a length hint.
            }
            b'.' => return self.pop().map(Some),

            // Stack manipulation.
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?;
                self.stack.push(top);
            }

            // Memo.
            b'q' => {
                let key = u64::from(r.u8()?);
                self.memo.insert(key, self.top()?);
            }
            b'r' => {
                let key = u64::from(u32::from_le_bytes(r.array()?));
                self.memo.insert(key, self.top()?);
            }
            b'p' => {
                let key = parse_text::<u64>(r.line()?)?;
                self.memo.insert(key, self.top()?);
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo.insert(key, self.top()?);
            }
            b'h' => {
                let id = self.memo_get(u64::from(r.u8()?))?;
                self.stack.push(id);
            }
            b'j' => {
                let id = self.memo_get(u64::from(u32::from_le_bytes(r.array()?)))?;
                self.stack.push(id);
            }
            b'g' => {
                let id = self.memo_get(parse_text::<u64>(r.line()?)?)?;
                self.stack.push(id);
            }

            // Constants and numbers.
            b'N' => self.push(Node::None),
            0x88 => self.push(Node::Bool(true)),
            0x89 => self.push(Node::Bool(false)),
            b'J' => self.push(Node::Int(i128::from(i32::from_le_bytes(r.array()?)))),
            b'K' => self.push(Node::Int(i128::from(r.u8()?))),
            b'M' => self.push(Node::Int(i128::from(u16::from_le_bytes(r.array()?)))),
            0x8a => {
                let n = usize::from(r.u8()?);
                let bytes = r.take(n)?;
                self.push(long_from_bytes(bytes));
            }
            0x8b => {
                let n = usize::try_from(i32::from_le_bytes(r.array()?))
                    .map_err(|_| "negative LONG4 length".to_string())?;
                let bytes = r.take(n)?;
                self.push(long_from_bytes(bytes));
            }
            b'I' => {
                let line = r.line()?;
                let node = match line {
                    b"01" => Node::Bool(true),
                    b"00" => Node::Bool(false),
                    _ => Node::Int(parse_text::<i128>(line)?),
                };
                self.push(node);
            }
            b'L' => {
                let line = r.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                self.push(Node::Int(parse_text::<i128>(digits)?));
            }
            b'G' => self.push(Node::Float(f64::from_be_bytes(r.array()?))),
            b'F' => self.push(Node::Float(parse_text::<f64>(r.line()?)?)),

            // Strings and bytes.
            b'X' => {
                let n = r.len_u32()?;
                let s = utf8(r.take(n)?)?;
                self.push(Node::Str(s));
            }
            0x8c => {
                let n = usize::from(r.u8()?);
                let s = utf8(r.take(n)?)?;
                self.push(Node::Str(s));
            }
            0x8d => {
                let n = r.len_u64()?;
                let s = utf8(r.take(n)?)?;
                self.push(Node::Str(s));
            }
            b'T' => {
                let n = usize::try_from(i32::from_le_bytes(r.array()?))
                    .map_err(|_| "negative BINSTRING length".to_string())?;
                let s = decode_text(r.take(n)?);
                self.push(Node::Str(s));
            }
            b'U' => {
                let n = usize::from(r.u8()?);
                let s = decode_text(r.take(n)?);
                self.push(Node::Str(s));
            }
            b'B' => {
                let n = r.len_u32()?;
                let b = r.take(n)?.to_vec();
                self.push(Node::Bytes(b));
            }
            b'C' => {
                let n = usize::from(r.u8()?);
                let b = r.take(n)?.to_vec();
                self.push(Node::Bytes(b));
            }
            0x8e | 0x96 => {
                let n = r.len_u64()?;
                let b = r.take(n)?.to_vec();
                self.push(Node::Bytes(b));
            }

            // Containers.
            b'}' => self.push(Node::Dict(Dict::default())),
            b']' => self.push(Node::List(Vec::new())),
            b')' => self.push(Node::Tuple(Vec::new())),
            0x8f => self.push(Node::Set(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items));
            }
            0x85 => {
                let a = self.pop()?;
                self.push(Node::Tuple(vec![a]));
            }
            0x86 => {
                let b = self.pop()?;
                let a = self.pop()?;
                self.push(Node::Tuple(vec![a, b]));
            }
            0x87 => {
                let c = self.pop()?;
                let b = self.pop()?;
                let a = self.pop()?;
                self.push(Node::Tuple(vec![a, b, c]));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items));
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let dict = self.add(Node::Dict(Dict::default()));
                self.set_items(dict, &items)?;
                self.stack.push(dict);
            }
            b'a' => {
                let value = self.pop()?;
                let list = self.top()?;
                self.append(list, vec![value])?;
            }
            b'e' | 0x90 => {
                let values = self.pop_mark()?;
                let list = self.top()?;
                self.append(list, values)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top()?;
                self.set_item(dict, key, value)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.set_items(dict, &items)?;
            }

            // Globals, calls and objects.
            b'c' => {
                let module = decode_text(r.line()?);
                let name = decode_text(r.line()?);
                self.push(Node::Global {
                    module: py3_module(&module).to_string(),
                    name,
                });
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (self.str(module), self.str(name)) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let node = Node::Global {
                    module: py3_module(module).to_string(),
                    name: name.to_string(),
                };
                self.push(node);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = self.call(callable, args, 0)?;
                self.stack.push(result);
            }
            0x81 => {
                let _args = self.pop()?;
                let class = self.pop()?;
                let node = self.instantiate(class);
                self.push(node);
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let _args = self.pop()?;
                let class = self.pop()?;
                let node = self.instantiate(class);
                self.push(node);
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err("OBJ needs a class".into());
                }
                let class = items.remove(0);
                let node = self.instantiate(class);
                self.push(node);
            }
            b'b' => {
                // BUILD: the state (OrderedDict._metadata, object
                // attributes) does not matter for the tensors.
                let _state = self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let node = self.persistent_load(pid)?;
                self.push(node);
            }
            b'P' => {
                let pid = decode_text(r.line()?);
                self.push(Node::Object(format!("persistent id '{pid}'")));
            }

            _ => {
                return Err(format!("{} pickle opcode not supported", opcode_name(op)));
            }
        }
        Ok(None)
    }

    fn set_items(&mut self, dict: Id, items: &[Id]) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err(format!("odd number of items ({}) for a dict", items.len()));
        }
        for pair in items.chunks_exact(2) {
            if let [k, v] = pair {
                self.set_item(dict, *k, *v)?;
            }
        }
        Ok(())
    }

    fn global_name(&self, id: Id) -> Option<(&str, &str)> {
        match self.node(id) {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// `class.__new__(class, ...)`: a dict for dict classes, else opaque.
    fn instantiate(&self, class: Id) -> Node {
        match self.global_name(class) {
            Some(("collections", "OrderedDict") | ("builtins", "dict")) => {
                Node::Dict(Dict::default())
            }
            Some((module, name)) => Node::Object(format!("{module}.{name}")),
            None => Node::Object(self.describe(class)),
        }
    }

    /// REDUCE: `callable(*args)` for the callables torch checkpoints use.
    fn call(&mut self, callable: Id, args: Id, depth: u32) -> Result<Id, String> {
        let Some((module, name)) = self.global_name(callable) else {
            let what = self.describe(callable);
            return Ok(self.add(Node::Object(format!("result of calling {what}"))));
        };
        let (module, name) = (module.to_string(), name.to_string());
        let args: Vec<Id> = self
            .items(args)
            .ok_or_else(|| {
                format!(
                    "arguments to {module}.{name} are a {}, not a tuple",
                    self.describe(args)
                )
            })?
            .to_vec();
        let arg = |i: usize| {
            args.get(i)
                .copied()
                .ok_or_else(|| format!("{module}.{name} needs more than {} arguments", args.len()))
        };
        let node = match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") => {
                let dict = self.add(Node::Dict(Dict::default()));
                // Python 2's OrderedDict.__reduce__ passes [[key, value], ...].
                if let Some(&pairs) = args.first() {
                    let pairs = self
                        .items(pairs)
                        .ok_or_else(|| format!("{module}.{name} argument is not a list"))?
                        .to_vec();
                    for pair in pairs {
                        match self.items(pair) {
                            Some(&[k, v]) => self.set_item(dict, k, v)?,
                            _ => return Err(format!("{module}.{name} item is not a pair")),
                        }
                    }
                }
                return Ok(dict);
            }
            ("torch._utils", "_rebuild_tensor") | ("torch._utils", "_rebuild_tensor_v2") => {
                self.rebuild_tensor(arg(0)?, arg(1)?, arg(2)?, arg(3)?, None)?
            }
            ("torch._utils", "_rebuild_tensor_v3") => {
                // An unsupported dtype only matters if the tensor is used.
                match self.dtype(arg(6)?) {
                    Ok(kind) => {
                        self.rebuild_tensor(arg(0)?, arg(1)?, arg(2)?, arg(3)?, Some(kind))?
                    }
                    Err(e) => Node::Unsupported(e),
                }
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state")
            | ("torch", "Size") => return arg(0),
            ("torch._tensor", "_rebuild_from_type_v2")
            | ("torch._tensor", "_rebuild_from_type")
            | ("torch.tensor", "_rebuild_from_type") => {
                if depth > 8 {
                    return Err("tensor rebuild functions nested too deeply".into());
                }
                return self.call(arg(0)?, arg(2)?, depth + 1);
            }
            _ => Node::Object(format!("{module}.{name}(...)")),
        };
        Ok(self.add(node))
    }

    /// A `torch.<dtype>` global as a kind.
    fn dtype(&self, id: Id) -> Result<Kind, String> {
        let kind = match self.global_name(id) {
            Some(("torch", name)) => match name {
                "float32" | "float" => Some(Kind::Float),
                "float64" | "double" => Some(Kind::Double),
                "float16" | "half" => Some(Kind::Half),
                "bfloat16" => Some(Kind::BFloat16),
                "int64" | "long" => Some(Kind::Int64),
                "int32" | "int" => Some(Kind::Int),
                "int16" | "short" => Some(Kind::Int16),
                "int8" => Some(Kind::Int8),
                "uint8" => Some(Kind::Uint8),
                "bool" => Some(Kind::Bool),
                "complex64" | "cfloat" => Some(Kind::ComplexFloat),
                "complex128" | "cdouble" => Some(Kind::ComplexDouble),
                _ => None,
            },
            _ => None,
        };
        kind.ok_or_else(|| format!("tensor of unsupported dtype ({})", self.describe(id)))
    }

    fn rebuild_tensor(
        &self,
        storage: Id,
        offset: Id,
        size: Id,
        stride: Id,
        kind: Option<Kind>,
    ) -> Result<Node, String> {
        let Node::Storage(storage) = self.node(storage) else {
            return Err(format!(
                "tensor storage is a {}, not a storage",
                self.describe(storage)
            ));
        };
        let offset = self.i64(offset, "storage offset")?;
        let size = self.int_list(size, "tensor size")?;
        let stride = self.int_list(stride, "tensor stride")?;
        if size.len() != stride.len() {
            return Err(format!(
                "tensor size {size:?} and stride {stride:?} differ in length"
            ));
        }
        let kind = match kind.or(storage.kind) {
            Some(kind) => kind,
            None => {
                return Ok(Node::Unsupported(format!(
                    "tensor with unsupported storage type {}",
                    storage.type_name
                )));
            }
        };
        Ok(Node::Tensor(TensorSpec {
            storage: storage.clone(),
            kind,
            offset,
            size,
            stride,
        }))
    }

    /// BINPERSID: torch's `('storage', storage_type, key, location, numel
    /// [, view_metadata])`; `('module', ...)` of old full-model saves is
    /// opaque.
    fn persistent_load(&mut self, pid: Id) -> Result<Node, String> {
        let items = self
            .items(pid)
            .ok_or_else(|| format!("persistent id is a {}, not a tuple", self.describe(pid)))?
            .to_vec();
        let tag = items.first().and_then(|&t| match self.node(t) {
            Node::Str(s) => Some(s.clone()),
            Node::Bytes(b) => Some(decode_text(b)),
            _ => None,
        });
        match tag.as_deref() {
            Some("storage") => {}
            Some("module") => return Ok(Node::Object("pickled module source".into())),
            _ => {
                return Err(format!(
                    "unsupported persistent id (a tuple of {} starting with {})",
                    items.len(),
                    items
                        .first()
                        .map_or("nothing".into(), |&t| self.describe(t))
                ));
            }
        }
        let [_, storage_type, key, _location, numel, rest @ ..] = items.as_slice() else {
            return Err(format!(
                "storage persistent id has {} fields, expected 5 or 6",
                items.len()
            ));
        };
        let (kind, type_name) = match self.global_name(*storage_type) {
            Some((module, name)) => (storage_kind(module, name), format!("{module}.{name}")),
            None => (None, self.describe(*storage_type)),
        };
        let key = match self.node(*key) {
            Node::Str(s) => s.clone(),
            Node::Int(v) => v.to_string(),
            _ => return Err(format!("storage key is a {}", self.describe(*key))),
        };
        let numel = self.i64(*numel, "storage size")?;
        if numel < 0 {
            return Err(format!("storage '{key}' has negative size {numel}"));
        }
        let view = match rest {
            [] => None,
            [v] if matches!(self.node(*v), Node::None) => None,
            [v] => match self.items(*v) {
                Some(&[_, offset, len]) => Some((
                    self.i64(offset, "storage view offset")?,
                    self.i64(len, "storage view size")?,
                )),
                _ => return Err(format!("storage view is a {}", self.describe(*v))),
            },
            _ => {
                return Err(format!(
                    "storage persistent id has {} fields, expected 5 or 6",
                    items.len()
                ));
            }
        };
        match self.storages.get(&key) {
            Some(&(k, n)) if k != kind || n != numel => {
                return Err(format!(
                    "storage '{key}' referenced as {type_name} of {numel} elements, earlier as {k:?} of {n}"
                ));
            }
            Some(_) => {}
            None => {
                self.storages.insert(key.clone(), (kind, numel));
            }
        }
        Ok(Node::Storage(StorageRef {
            key,
            kind,
            type_name,
            numel,
            view,
        }))
    }
}

/// The element type of a torch storage class (`torch.FloatStorage`,
/// `torch.cuda.HalfStorage`, `torch.storage.UntypedStorage`, ...).
fn storage_kind(module: &str, name: &str) -> Option<Kind> {
    if !matches!(module, "torch" | "torch.cuda" | "torch.storage") {
        return None;
    }
    Some(match name {
        "DoubleStorage" => Kind::Double,
        "FloatStorage" => Kind::Float,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" | "UntypedStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        "ComplexFloatStorage" => Kind::ComplexFloat,
        "ComplexDoubleStorage" => Kind::ComplexDouble,
        _ => return None,
    })
}

/// LONG1/LONG4 payload: little-endian two's complement.
fn long_from_bytes(bytes: &[u8]) -> Node {
    if bytes.len() > 16 {
        return Node::BigInt;
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 16];
    if let Some(dst) = buf.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    Node::Int(i128::from_le_bytes(buf))
}

fn parse_text<T: std::str::FromStr>(line: &[u8]) -> Result<T, String> {
    let text = String::from_utf8_lossy(line);
    text.trim()
        .parse()
        .map_err(|_| format!("bad number '{}'", text.chars().take(30).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_file(bytes: &[u8]) -> std::path::PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "scintigan-pickle-{}-{}.pth",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }

    fn read_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
        let path = temp_file(bytes);
        let result = read_torch_checkpoint(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pickle")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A tiny pickle writer for hand-made (and broken) checkpoints.
    #[derive(Default)]
    struct P(Vec<u8>);

    impl P {
        fn op(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn s(self, text: &str) -> Self {
            let mut out = self.op(&[0x8c, text.len() as u8]);
            out.0.extend_from_slice(text.as_bytes());
            out
        }
        fn global(self, module: &str, name: &str) -> Self {
            self.op(format!("c{module}\n{name}\n").as_bytes())
        }
        fn int(self, v: u8) -> Self {
            self.op(&[b'K', v])
        }
    }

    /// A legacy checkpoint `{"w": float32 tensor}` over a storage of
    /// `numel` floats 0, 1, 2...
    fn legacy(numel: u8, size: u8, stride: u8, offset: u8, stored: u8) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&[0x80, 2, 0x8a, 10]);
        out.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
        out.push(b'.');
        out.extend_from_slice(&[0x80, 2, b'M', 0xe9, 0x03, b'.']);
        let sys = P::default()
            .op(&[0x80, 2, b'}'])
            .s("little_endian")
            .op(&[0x88, b's', b'.']);
        out.extend_from_slice(&sys.0);
        let main = P::default()
            .op(&[0x80, 2])
            .global("collections", "OrderedDict")
            .op(b")R(")
            .s("w")
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .s("storage")
            .global("torch", "FloatStorage")
            .s("0")
            .s("cpu")
            .int(numel)
            .op(b"N")
            .op(b"t")
            .op(b"Q")
            .int(offset)
            .int(size)
            .op(&[0x85])
            .int(stride)
            .op(&[0x85, 0x89])
            .global("collections", "OrderedDict")
            .op(b")RtRu.");
        out.extend_from_slice(&main.0);
        let keys = P::default().op(&[0x80, 2, b'(']).s("0").op(b"l.");
        out.extend_from_slice(&keys.0);
        out.extend_from_slice(&i64::from(stored).to_le_bytes());
        for i in 0..stored {
            out.extend_from_slice(&f32::from(i).to_le_bytes());
        }
        out
    }

    #[test]
    fn hand_made_legacy_checkpoint_reads() {
        let tensors = read_bytes(&legacy(6, 3, 2, 1, 6)).expect("valid checkpoint");
        assert_eq!(tensors.len(), 1);
        let (name, t) = &tensors[0];
        assert_eq!(name, "w");
        assert_eq!(t.kind(), Kind::Float);
        assert_eq!(t.stride(), vec![2]);
        assert_eq!(
            Vec::<f32>::try_from(t.contiguous()).unwrap(),
            vec![1.0, 3.0, 5.0]
        );
    }

    #[test]
    fn out_of_bounds_views_are_errors() {
        // Last element at 1 + 2*3 = 7 in a storage of 6.
        let err = read_bytes(&legacy(6, 4, 2, 1, 6)).unwrap_err();
        assert!(
            err.contains("out of storage bounds") && err.contains("'w'"),
            "{err}"
        );
        let err = read_bytes(&legacy(6, 1, 1, 6, 6)).unwrap_err();
        assert!(err.contains("out of storage bounds"), "{err}");
    }

    #[test]
    fn missing_or_short_storage_is_an_error() {
        let err = read_bytes(&legacy(6, 3, 2, 1, 5)).unwrap_err();
        assert!(err.contains("holds 5 elements"), "{err}");
        let full = legacy(6, 3, 2, 1, 6);
        for cut in [1, 4, 9, 20, full.len() / 2, full.len() - 30, full.len() - 1] {
            let err = read_bytes(&full[..cut]).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
        let err = read_bytes(&full[..full.len() - 1]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn empty_and_random_files_are_errors() {
        let err = read_bytes(b"").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let mut state = 0x2545f4914f6cdd1du64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let err = read_bytes(&random).unwrap_err();
        assert!(err.contains("not a torch.save checkpoint"), "{err}");
        // Random bytes behind a pickle PROTO opcode, or a zip signature.
        for head in [&[0x80u8, 2][..], b"PK\x03\x04"] {
            let mut bytes = head.to_vec();
            bytes.extend_from_slice(&random);
            let err = read_bytes(&bytes).unwrap_err();
            assert!(!err.is_empty() && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn pickle_errors_name_opcode_and_offset() {
        let run = |bytes: &[u8]| Machine::run(bytes, 0).map(|_| ()).unwrap_err();
        let err = run(&[0x80, 2, 0xff]);
        assert!(err.contains("0xff") && err.contains("offset 2"), "{err}");
        let err = run(&[0x80, 2, b'.']);
        assert!(err.contains("underflow"), "{err}");
        let err = run(&[0x80, 2, b'h', 7, b'.']);
        assert!(err.contains("memo entry 7"), "{err}");
        let err = run(&[0x80, 2, b'X', 0xff, 0xff, 0xff, 0x7f, b'a']);
        assert!(err.contains("truncated"), "{err}");
        let err = run(&[0x80, 2, b'N']);
        assert!(err.contains("before its STOP"), "{err}");
        let err = run(&[0x80, 2, b'(', b'N', b'1', b'0', b'.']);
        assert!(err.contains("underflow"), "{err}");
        let err = run(&[0x80, 2, b'S']);
        assert!(err.contains("STRING"), "{err}");
        // A list appended to itself is fine (no recursion anywhere).
        let (vm, id) = Machine::run(&[0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.'], 0).unwrap();
        assert_eq!(vm.describe(id), "list of 1");
    }

    #[test]
    fn non_state_dicts_are_errors() {
        // A legacy file whose object is an empty list.
        let err = read_bytes(&{
            let mut b = vec![0x80, 2, 0x8a, 10];
            b.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
            b.extend_from_slice(&[b'.', 0x80, 2, b'M', 0xe9, 0x03, b'.']);
            b.extend_from_slice(&[0x80, 2, b'}', b'.']);
            b.extend_from_slice(&[0x80, 2, b']', b'.']);
            b.extend_from_slice(&[0x80, 2, b']', b'.']);
            b
        })
        .unwrap_err();
        assert!(err.contains("list of 0"), "{err}");
    }

    #[test]
    fn truncated_and_corrupted_zips_are_errors() {
        let good = fixture("tiny_zip.pth");
        assert!(read_bytes(&good).is_ok());
        let step = (good.len() / 97).max(1);
        for cut in (1..good.len()).step_by(step) {
            let err = read_bytes(&good[..cut]).unwrap_err();
            assert!(!err.contains('\n'), "cut {cut}: {err}");
        }
        // Flipped bytes must give a result or an error, never a panic.
        let mut state = 0x9e3779b97f4a7c15u64;
        for _ in 0..200 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bad = good.clone();
            let at = (state as usize) % bad.len();
            bad[at] ^= (state >> 40) as u8 | 1;
            let _ = read_bytes(&bad);
        }
    }
}
