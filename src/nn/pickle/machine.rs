//! The pickle machine (see the module doc of [`super`]).

use super::tensors::{StorageRef, TensorSpec};
use std::collections::HashMap;
use tch::Kind;

pub(super) type Id = usize;

/// A dict in insertion order; string keys are de-duplicated as Python does.
#[derive(Debug, Default)]
pub(super) struct Dict {
    pub(super) items: Vec<(Id, Id)>,
    by_str: HashMap<String, usize>,
}

impl Dict {
    pub(super) fn get_str(&self, key: &str) -> Option<Id> {
        self.by_str
            .get(key)
            .and_then(|&i| self.items.get(i))
            .map(|&(_, v)| v)
    }
}

/// A pickled value. Containers refer to other nodes by index.
#[derive(Debug)]
pub(super) enum Node {
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

pub(super) struct Machine {
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// Root storages seen in persistent ids: key -> (dtype, element count).
    pub(super) storages: HashMap<String, (Option<Kind>, i64)>,
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
pub(super) fn decode_text(bytes: &[u8]) -> String {
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
    pub(super) fn run(data: &[u8], start: usize) -> Result<(Machine, Id), String> {
        let (vm, id, _) = Self::run_at(data, start)?;
        Ok((vm, id))
    }

    /// As [`Machine::run`], also returning the offset after STOP, with
    /// `what` (the pickle's role) in errors.
    pub(super) fn run_one(
        data: &[u8],
        start: usize,
        what: &str,
    ) -> Result<(Machine, Id, usize), String> {
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

    pub(super) fn node(&self, id: Id) -> &Node {
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

    pub(super) fn int(&self, id: Id) -> Option<i128> {
        match self.node(id) {
            Node::Int(v) => Some(*v),
            Node::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    pub(super) fn i64(&self, id: Id, what: &str) -> Result<i64, String> {
        self.int(id)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| format!("{what} is a {}, not a 64-bit integer", self.describe(id)))
    }

    pub(super) fn str(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn items(&self, id: Id) -> Option<&[Id]> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    pub(super) fn int_list(&self, id: Id, what: &str) -> Result<Vec<i64>, String> {
        let items = self
            .items(id)
            .ok_or_else(|| format!("{what} is a {}, not a tuple", self.describe(id)))?;
        items.iter().map(|&i| self.i64(i, what)).collect()
    }

    pub(super) fn str_list(&self, id: Id) -> Option<Vec<String>> {
        self.items(id)?
            .iter()
            .map(|&i| self.str(i).map(String::from))
            .collect()
    }

    pub(super) fn dict_get(&self, id: Id, key: &str) -> Option<Id> {
        match self.node(id) {
            Node::Dict(d) => d.get_str(key),
            _ => None,
        }
    }

    /// What a value is, in a few words (never recursive).
    pub(super) fn describe(&self, id: Id) -> String {
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

    pub(super) fn global_name(&self, id: Id) -> Option<(&str, &str)> {
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
