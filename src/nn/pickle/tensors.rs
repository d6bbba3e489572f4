//! From pickled values to tensors: the storages and tensors that torch's
//! persistent ids and rebuild functions describe, the state dict among the
//! pickled values, and the tensors built from it.

use super::machine::{Id, Machine, Node, decode_text};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// Keys under which training checkpoints commonly keep the state dict.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// A storage as referenced by a persistent id.
#[derive(Debug, Clone)]
pub(super) struct StorageRef {
    pub(super) key: String,
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
pub(super) struct TensorSpec {
    pub(super) storage: StorageRef,
    pub(super) kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

/// A storage as read for one tensor: (key, legacy view, element type).
type StorageUse = (String, Option<(i64, i64)>, Kind);

/// One-dimensional storage tensors, built once per [`StorageUse`].
#[derive(Default)]
pub(super) struct StorageCache {
    built: HashMap<StorageUse, Tensor>,
}

impl StorageCache {
    /// The storage of `r` as a 1-D tensor of `kind`; `fetch(key, nbytes)`
    /// returns the first `nbytes` bytes of root storage `key`.
    pub(super) fn get(
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
pub(super) fn build_tensor(storage: &Tensor, spec: &TensorSpec) -> Result<Tensor, String> {
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

/// Every tensor of the state dict under `root`, in file order, reading each
/// storage's bytes once through `fetch(key, byte_count)`.
pub(super) fn state_dict_tensors(
    vm: &Machine,
    root: Id,
    mut fetch: impl FnMut(&str, u64) -> Result<Vec<u8>, String>,
) -> Result<Vec<(String, Tensor)>, String> {
    let entries = select_state_dict(vm, root)?;
    let mut storages = StorageCache::default();
    entries
        .into_iter()
        .map(|(name, spec)| {
            storages
                .get(&spec.storage, spec.kind, &mut fetch)
                .and_then(|s| build_tensor(&s, &spec))
                .map(|t| (name.clone(), t))
                .map_err(|e| format!("tensor '{name}': {e}"))
        })
        .collect()
}

/// The `(key, tensor)` entries of the state dict in `root`.
pub(super) fn select_state_dict(
    vm: &Machine,
    root: Id,
) -> Result<Vec<(String, TensorSpec)>, String> {
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

// The torch-specific part of the pickle machine: dtypes, storage persistent
// ids (BINPERSID) and the tensor rebuild functions (from `Machine::call`).
impl Machine {
    /// A `torch.<dtype>` global as a kind.
    pub(super) fn dtype(&self, id: Id) -> Result<Kind, String> {
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

    pub(super) fn rebuild_tensor(
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
    pub(super) fn persistent_load(&mut self, pid: Id) -> Result<Node, String> {
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
