"""Mutated copies of DICOM files, for measuring what hostile files make
`scintigan data ingest` allocate (peak RSS under /usr/bin/time -v).

    .venv/bin/python fuzz/mutate_dicom.py OUT_DIR [-n 400] [--seed 1] SRC...

SRC are DICOM files or folders of them (*.dcm). Each output file is one
source with one to three mutations aimed at what makes a reader allocate:
a 4-byte length field (an element's, an item's, a fragment's, the meta
group length) set huge or past the end of the file, Rows/Columns/
NumberOfFrames/BitsAllocated set to their largest values, random byte
flips, insertions and truncation. Lengths are found by walking the
elements (explicit and implicit VR little endian, explicit big endian; the
meta group always), so the mutations hit real length fields, not random
bytes. Standard library only.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from pathlib import Path

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
ROWS, COLUMNS, BITS_ALLOCATED, FRAMES = 0x00280010, 0x00280011, 0x00280100, 0x00280008


class Element:
    def __init__(self, tag, vr, len_off, len_size, value_off, length):
        self.tag, self.vr = tag, vr
        self.len_off, self.len_size = len_off, len_size
        self.value_off, self.length = value_off, length


def walk(data: bytes, pos: int, end: int, explicit: bool, little: bool, meta_only: bool):
    """Elements from `pos`, descending into sequences and items (a linear
    walk: an undefined or defined length SQ/item is entered, not skipped;
    fragments of encapsulated pixel data are skipped)."""
    e = "<" if little else ">"
    out = []
    in_fragments = False
    while pos + 8 <= end:
        group, elem = struct.unpack_from(e + "HH", data, pos)
        tag = (group << 16) | elem
        if meta_only and group != 0x0002:
            break
        if group == 0xFFFE:
            (length,) = struct.unpack_from(e + "I", data, pos + 4)
            out.append(Element(tag, None, pos + 4, 4, pos + 8, length))
            pos += 8
            if tag == SEQ_END:
                in_fragments = False
            elif tag == ITEM and (in_fragments and length != 0xFFFFFFFF):
                pos += length
            continue
        if explicit:
            vr = data[pos + 4 : pos + 6]
            if vr in LONG_VRS:
                if pos + 12 > end:
                    break
                (length,) = struct.unpack_from(e + "I", data, pos + 8)
                el = Element(tag, vr, pos + 8, 4, pos + 12, length)
            else:
                (length,) = struct.unpack_from(e + "H", data, pos + 6)
                el = Element(tag, vr, pos + 6, 2, pos + 8, length)
        else:
            (length,) = struct.unpack_from(e + "I", data, pos + 4)
            el = Element(tag, None, pos + 4, 4, pos + 8, length)
        out.append(el)
        pos = el.value_off
        if length == 0xFFFFFFFF:
            in_fragments = tag == PIXEL_DATA
            continue  # a sequence or encapsulated pixel data: enter it
        if el.vr == b"SQ":
            continue  # a defined-length sequence: enter it too
        pos += length
    return out


def elements(data: bytes):
    """(meta elements, data set elements, endianness of the data set)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return [], [], True
    meta = walk(data, 132, len(data), True, True, True)
    ts = b""
    for el in meta:
        if el.tag == 0x00020010:
            ts = data[el.value_off : el.value_off + el.length].rstrip(b"\0 ")
    start = max((el.value_off + (el.length if el.length != 0xFFFFFFFF else 0) for el in meta), default=132)
    if ts == b"1.2.840.10008.1.2.1.99":  # deflated: the data set is not walkable
        return meta, [], True
    little = ts != b"1.2.840.10008.1.2.2"
    explicit = ts != b"1.2.840.10008.1.2"
    try:
        body = walk(data, start, len(data), explicit, little, False)
    except struct.error:
        body = []
    return meta, body, little


def huge(rng: random.Random, size: int) -> int:
    return rng.choice(
        [0xFFFFFFF0, 0xFFFFFFFE, 0x7FFFFFFF, 0x40000000, 0x10000000, size * 16, size + rng.randint(1, 4096),
         rng.randint(1 << 20, 0xFFFFFFFE)]
    ) & 0xFFFFFFFE


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    buf = bytearray(data)
    meta, body, little = elements(data)
    e = "<" if little else ">"
    done = []
    kinds = [
        rng.choice(["len4", "len4", "len4", "pixel_len", "fragment_len", "meta_len", "dims", "dims", "len2", "flip"])
        for _ in range(rng.choice([1, 1, 2, 3]))
    ]
    # Insertion and truncation move or drop what the offsets point at: last.
    if rng.random() < 0.25:
        kinds.append(rng.choice(["insert", "truncate"]))
    for kind in kinds:
        long4 = [el for el in body if el.len_size == 4]
        if kind == "len4" and long4:
            el = rng.choice(long4)
            struct.pack_into(e + "I", buf, el.len_off, huge(rng, len(buf)))
        elif kind == "pixel_len" and any(el.tag == PIXEL_DATA and el.len_size == 4 for el in body):
            el = next(el for el in body if el.tag == PIXEL_DATA and el.len_size == 4)
            struct.pack_into(e + "I", buf, el.len_off, huge(rng, len(buf)))
        elif kind == "fragment_len" and any(el.tag == ITEM for el in body):
            el = rng.choice([el for el in body if el.tag == ITEM])
            struct.pack_into(e + "I", buf, el.len_off, huge(rng, len(buf)))
        elif kind == "meta_len" and meta:
            el = rng.choice([el for el in meta if el.len_size == 4] or meta)
            value = huge(rng, len(buf)) if el.len_size == 4 else 0xFFFF
            struct.pack_into("<I" if el.len_size == 4 else "<H", buf, el.len_off, value)
        elif kind == "dims" and body:
            for el in body:
                if el.tag in (ROWS, COLUMNS) and el.length == 2:
                    struct.pack_into(e + "H", buf, el.value_off, rng.choice([65535, 65534, 32768, 40000]))
                elif el.tag == BITS_ALLOCATED and el.length == 2:
                    struct.pack_into(e + "H", buf, el.value_off, rng.choice([32, 16]))
                elif el.tag == FRAMES and el.length >= 2:
                    text = rng.choice([b"16", b"9999", b"15"])[: el.length].ljust(el.length, b" ")
                    buf[el.value_off : el.value_off + el.length] = text
        elif kind == "len2" and [el for el in body if el.len_size == 2]:
            el = rng.choice([el for el in body if el.len_size == 2])
            struct.pack_into(e + "H", buf, el.len_off, rng.choice([0xFFFF, 0xFFFE, min(el.length + 2, 0xFFFF)]))
        elif kind == "flip":
            for _ in range(rng.randint(1, 32)):
                buf[rng.randrange(132, len(buf))] = rng.randrange(256)
        elif kind == "insert":
            at = rng.randrange(132, len(buf))
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == "truncate":
            del buf[rng.randrange(132, len(buf)) :]
        else:
            continue
        done.append(kind)
    return bytes(buf), done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("src", type=Path, nargs="+")
    ap.add_argument("-n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sources = []
    for s in args.src:
        sources += sorted(s.rglob("*.dcm")) if s.is_dir() else [s]
    sources = [p for p in sources if p.read_bytes()[128:132] == b"DICM"]
    if not sources:
        print("no DICOM Part-10 sources", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for i in range(args.n):
        src = sources[i % len(sources)]
        data, done = mutate(src.read_bytes(), rng)
        for k in done:
            counts[k] = counts.get(k, 0) + 1
        # One folder per file: each stands for its own patient when it has
        # no PatientID left.
        d = args.out / f"m{i:04d}"
        d.mkdir(exist_ok=True)
        (d / f"{src.stem}.dcm").write_bytes(data)
    print(f"{args.n} mutated files from {len(sources)} sources in {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
