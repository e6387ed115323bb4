#!/usr/bin/env python3
"""Adversarial-input harness for the `accord` CLI (standard library only).

Four families of malformed input, generated deterministically from --seed:

  chip  mutated chip TOML files (and `--set KEY=VALUE` overrides) run through
        `accord chip check FILE` / `chip show --json FILE` and `accord train --chip FILE ...`
  csv   mutated numeric CSV datasets run through `accord train --data FILE.csv` (+/- --reference)
  idx   mutated MNIST IDX directories run through `ACCORD_DATA=DIR accord train --data mnist`
  cli   bad values for every flag of every subcommand (parsed from `--help`)

Every case runs in a fresh directory under --workdir, with a timeout, an address-space cap
(prlimit --as, so a runaway allocation aborts instead of taking the machine down) and its max
RSS measured with wait4(). Outcomes: ok, clean-error, panic, abort, timeout, over-2GB
(and silent-error: non-zero exit with an empty stderr). Clean errors are checked for naming the
file / flag / TOML key / line; `ok` runs are checked for cheap signs of silent nonsense.

Usage:
  python3 tests/adversarial.py                       # full run (default 6000 cases)
  python3 tests/adversarial.py --quick               # ~300 cases
  python3 tests/adversarial.py --seed 7 --cases 8000 --report /tmp/r.json

Run a copy of the binary (default /tmp/accord-adv): `cp target/release/accord /tmp/accord-adv`.
Inputs of every non-clean case are kept under --workdir/<case id>/ for reproduction.
"""

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import tomllib
import zlib
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HW = os.path.join(REPO, "hw_models")
DATA = os.path.join(REPO, "data")
CHIP_NAMES = ["balance-core", "loihi", "reckon", "truenorth"]
D = "@CASEDIR@"  # placeholder for the case directory in argv / env
GB2_KB = 2 * 1024 * 1024  # ru_maxrss is in KiB
OUTCOMES = ["ok", "clean-error", "silent-error", "panic", "abort", "timeout", "over-2GB"]
FAMILIES = ["chip", "csv", "idx", "cli"]
# Share of --cases per family.
SHARES = {"chip": 0.30, "csv": 0.22, "idx": 0.14, "cli": 0.34}

# Train arguments that keep a chip run fast and able to get past the mode checks.
CHIP_TRAIN = {
    "balance-core": ["--data", "iris", "--hidden", "4", "--epochs", "1"],
    "loihi": ["--data", "iris", "--hidden", "4", "--epochs", "1", "--mode", "spiking", "--ticks", "4"],
    "reckon": ["--data", "iris", "--hidden", "4", "--epochs", "0", "--mode", "spiking", "--ticks", "4"],
    "truenorth": ["--data", "iris", "--hidden", "4", "--epochs", "0", "--mode", "spiking", "--ticks", "4"],
}


class Case:
    __slots__ = ("fam", "cid", "kind", "desc", "argv", "files", "env", "keys", "timeout",
                 "long_ok", "absurd", "dir")

    def __init__(self, fam, kind, desc, argv, files=None, env=None, keys=(), long_ok=False,
                 absurd=None):
        self.fam, self.kind, self.desc, self.argv = fam, kind, desc, argv
        self.files = files or {}
        self.env = env or {}
        self.keys = [k for k in keys if k]
        self.long_ok, self.absurd = long_ok, absurd
        self.cid = self.dir = None
        self.timeout = None


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def gz(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def gz_bomb(path, prefix, total, unit=b"\0"):
    """Write a gzip file whose content is `prefix` followed by zero-ish filler up to `total`
    bytes, quickly: after a full flush the deflate output of an identical chunk repeats."""
    chunk_len = 1 << 20
    chunk = (unit * (chunk_len // len(unit) + 1))[:chunk_len]
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    a = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    b = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert a == b, "full-flush output does not repeat"
    body = total - len(prefix)
    n, rest = divmod(body, chunk_len)
    crc = zlib.crc32(prefix)
    chunk_crc_state = None
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        f.write(head)
        for _ in range(n):
            f.write(a)
            crc = zlib.crc32(chunk, crc)
        tail = chunk[:rest]
        f.write(c.compress(tail) + c.flush(zlib.Z_FINISH))
        crc = zlib.crc32(tail, crc)
        f.write(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))
    del chunk_crc_state


def q(arg):
    if isinstance(arg, bytes):
        try:
            arg = arg.decode()
        except UnicodeDecodeError:
            return "$'" + "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else "\\x%02x" % b
                                  for b in arg) + "'"
    if len(arg) > 300:
        return shlex.quote(arg[:60]) + "...<%d chars>" % len(arg)
    return shlex.quote(arg)


# ------------------------------------------------------------------------------------------------
# family 1: chip files
# ------------------------------------------------------------------------------------------------

def toml_entries(text):
    """(kind, start, end, table, key, value) for table headers and key lines (line ranges)."""
    lines = text.split("\n")
    out, table, i = [], "", 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("["):
            m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", s)
            table = m.group(1) if m else ""
            out.append(("table", i, i + 1, table, None, None))
            i += 1
            continue
        m = re.match(r"^([A-Za-z0-9_\-]+)\s*=\s*(.*)$", s)
        if m:
            key, val = m.groups()
            end = i + 1
            if val.count('"""') == 1:
                j = i + 1
                while j < len(lines) and '"""' not in lines[j]:
                    j += 1
                end = j + 1
            elif val.startswith("[") and val.count("[") > val.count("]"):
                j = i + 1
                while j < len(lines) and "]" not in lines[j]:
                    j += 1
                end = j + 1
            out.append(("kv", i, end, table, key, val))
            i = end
            continue
        i += 1
    return lines, out


def table_blocks(lines, entries):
    heads = [e for e in entries if e[0] == "table"]
    blocks = []
    for k, h in enumerate(heads):
        end = heads[k + 1][1] if k + 1 < len(heads) else len(lines)
        blocks.append((h[3], h[1], end))
    return blocks


NUM_BAD_TOML = ["0", "-1", "1e308", "-1e308", "4294967296", "1e12", "nan", "inf", "-inf",
                "18446744073709551616", "9223372036854775807", "-9223372036854775808", "0.5",
                "-0.0", "65536", "2147483648", "1e-320", "255", "256", "41", "64", "1.0e400",
                "0x7fffffff", "-4294967296", "1", "2"]
TYPE_BAD_TOML = ['"NaN"', '"abc"', '""', "true", "[]", "{}", "[1, 2]", '"16"', "{ bits = 8 }",
                 '"nearest-even"', '"stall"', "1979-05-27T07:32:00Z", '"\\u0000"',
                 '"' + "x" * 5000 + '"']
ABSURD_TOML = {"-1", "1e308", "-1e308", "4294967296", "1e12", "nan", "inf", "-inf",
               "9223372036854775807", "-9223372036854775808", "2147483648", "-4294967296",
               "0x7fffffff", "1.0e400"}


def chip_mutation(rng, name, text):
    """One random mutation of chip `name`'s TOML: (kind, desc, bytes, keys, absurd)."""
    lines, entries = toml_entries(text)
    kvs = [e for e in entries if e[0] == "kv"]
    blocks = table_blocks(lines, entries)
    op = rng.choices(
        ["set-num", "set-type", "delete-key", "truncate", "dup-table", "dup-key", "byte-flip",
         "delete-table", "rename-key", "add-key", "multi-set", "format-semantic", "swap-range"],
        weights=[26, 8, 10, 8, 4, 3, 8, 5, 3, 3, 8, 8, 3])[0]

    def dotted(e):
        return f"{e[3]}.{e[4]}" if e[3] else e[4]

    def set_line(ls, e, val):
        ls = list(ls)
        ls[e[1]:e[2]] = [f"{e[4]} = {val}"] + [""] * (e[2] - e[1] - 1)
        return ls

    def enc(ls):
        return "\n".join(ls).encode()

    numeric = [e for e in kvs if re.match(r"^[-+]?[\d.]", e[5])]
    if op == "set-num":
        e = rng.choice(numeric)
        v = rng.choice(NUM_BAD_TOML)
        return op, f"{dotted(e)} = {v}", enc(set_line(lines, e, v)), [dotted(e), e[4]], \
            (f"{dotted(e)} = {v}" if v in ABSURD_TOML else None)
    if op == "set-type":
        e = rng.choice(kvs)
        v = rng.choice(TYPE_BAD_TOML + NUM_BAD_TOML[:6])
        return op, f"{dotted(e)} = {v[:40]}", enc(set_line(lines, e, v)), [dotted(e), e[4]], None
    if op == "multi-set":
        ls, keys, ds = lines, [], []
        absurd = None
        for e in rng.sample(numeric, min(len(numeric), rng.randint(2, 4))):
            v = rng.choice(NUM_BAD_TOML)
            ls = set_line(ls, e, v)
            keys += [dotted(e), e[4]]
            ds.append(f"{dotted(e)} = {v}")
            if v in ABSURD_TOML:
                absurd = ds[-1]
        return op, "; ".join(ds), enc(ls), keys, absurd
    if op == "delete-key":
        e = rng.choice(kvs)
        ls = list(lines)
        del ls[e[1]:e[2]]
        return op, f"delete {dotted(e)}", enc(ls), [dotted(e), e[4]], None
    if op == "rename-key":
        e = rng.choice(kvs)
        ls = list(lines)
        ls[e[1]] = ls[e[1]].replace(e[4], e[4] + rng.choice(["x", "_", "S"]), 1)
        return op, f"rename {dotted(e)}", enc(ls), [dotted(e), e[4]], None
    if op == "add-key":
        b = rng.choice(blocks) if blocks else ("", 0, 0)
        ls = list(lines)
        k = rng.choice(["bogus", "bits", "entries", "cols", "energy_pj", "name"])
        ls.insert(b[1] + 1, f"{k} = {rng.choice(NUM_BAD_TOML)}")
        return op, f"add {b[0]}.{k}", enc(ls), [f"{b[0]}.{k}", k], None
    if op == "dup-key":
        e = rng.choice(kvs)
        ls = list(lines)
        ls.insert(e[2], f"{e[4]} = {rng.choice(NUM_BAD_TOML)}")
        return op, f"duplicate key {dotted(e)}", enc(ls), [dotted(e), e[4]], None
    if op == "dup-table":
        t, s, en = rng.choice(blocks)
        ls = list(lines) + [""] + lines[s:en]
        return op, f"duplicate table [{t}]", enc(ls), [t], None
    if op == "delete-table":
        t, s, en = rng.choice(blocks)
        ls = list(lines)
        del ls[s:en]
        return op, f"delete table [{t}]", enc(ls), [t], None
    if op == "truncate":
        data = text.encode()
        cut = rng.randrange(len(data))
        return op, f"truncate at byte {cut}/{len(data)}", data[:cut], [], None
    if op == "byte-flip":
        data = bytearray(text.encode())
        where = []
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(len(data))
            data[p] = rng.randrange(256)
            where.append(p)
        return op, f"byte flips at {where}", bytes(data), [], None
    if op == "format-semantic":
        fmts = sorted({e[3] for e in kvs if e[3].startswith("formats.")})
        t = rng.choice(fmts)
        fe = {e[4]: e for e in kvs if e[3] == t}
        bits = int(fe["bits"][5].split()[0]) if "bits" in fe else 16
        choice = rng.choice([("frac", bits + 1), ("frac", bits), ("bits", 0), ("bits", 1),
                             ("bits", 64), ("bits", 63), ("frac", -1), ("frac", 200),
                             ("bits", 1 << 32), ("signed", "false"), ("rounding", '"up"'),
                             ("overflow", '"explode"')])
        if choice[0] not in fe:
            return op, f"{t}: noop", text.encode(), [t], None
        v = str(choice[1])
        return op, f"{t}.{choice[0]} = {v}", enc(set_line(lines, fe[choice[0]], v)), \
            [f"{t}.{choice[0]}", t], None
    # swap-range: input_min/input_max of a table
    tabs = sorted({e[3] for e in kvs if e[4] in ("input_min", "input_max")})
    t = rng.choice(tabs)
    fe = {e[4]: e for e in kvs if e[3] == t}
    lo, hi = rng.choice([("8.0", "-8.0"), ("1.0", "1.0"), ("-1e308", "1e308"), ("nan", "1.0"),
                         ("-inf", "inf"), ("0", "5e-324")])
    ls = set_line(set_line(lines, fe["input_min"], lo), fe["input_max"], hi)
    return "swap-range", f"{t}.input_min = {lo}, input_max = {hi}", enc(ls), \
        [f"{t}.input_min", f"{t}.input_max", "input_min", "input_max"], \
        (f"{t} range {lo}..{hi}" if lo in ("-1e308", "nan", "-inf") else None)


def flatten(d, prefix=""):
    out = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out += flatten(v, key)
        else:
            out.append(key)
    return out


SET_VALUES = ["0", "-1", "1e308", "4294967296", "1e12", "NaN", "inf", "-inf", "", "abc",
              "18446744073709551616", "9223372036854775807", "-9223372036854775808", "0.5",
              "true", "65536", "1e-320", "-0", "[1,2]", "{}", "x" * 3000]
SET_BAD_KEYS = ["", ".", "a..b", "formats", "formats.weight", "mesh.cols.x", "prices",
                "prices.sop.energy_pj.x", "missing", "missing.0", "name", "x" * 3000,
                "formats.weight.bits.", ".mesh", "mesh..cols", "emulations.retro_sop.via",
                "core", "description", "prices.nosuch.energy_pj", "static_power.mw_per_core"]


def gen_chip(rng, quota):
    texts = {n: open(os.path.join(HW, n + ".toml")).read() for n in CHIP_NAMES}
    keys = {n: flatten(tomllib.loads(t)) for n, t in texts.items()}
    cases = []

    def file_cases(name, kind, desc, data, ks, absurd, fname="chip.toml"):
        path = os.path.join(D, fname)
        # a mutated file gives a check case, a train case and sometimes a show case
        cmds = [("check", ["chip", "check", path]),
                ("train", ["train", "--chip", path] + CHIP_TRAIN[name])]
        if rng.random() < 0.25:
            cmds.append(("show", ["chip", "show", "--json", path]))
        for sub, argv in cmds:
            cases.append(Case("chip", f"{kind}/{sub}", f"{name}: {desc}", argv,
                              files={fname: data}, keys=ks + [fname], absurd=absurd))

    # fixed cases
    fixed = [
        ("empty", "empty file", b""),
        ("whitespace", "only whitespace", b" \n\n\t\n"),
        ("junk", "binary junk", bytes(rng.randrange(256) for _ in range(2000))),
        ("nul", "NUL bytes", b"\0" * 100),
        ("deep-array-100", "array nested 100 deep",
         b"name = " + b"[" * 100 + b"]" * 100 + b"\n"),
        ("deep-array-100000", "array nested 100000 deep",
         b"name = " + b"[" * 100000 + b"]" * 100000 + b"\n"),
        ("deep-inline-100000", "inline table nested 100000 deep",
         b"name = " + b"{a=" * 100000 + b"1" + b"}" * 100000 + b"\n"),
        ("deep-key", "dotted key with 100000 parts", b".".join([b"a"] * 100000) + b" = 1\n"),
        ("huge-comment", "8 MB comment appended",
         texts["balance-core"].encode() + b"#" + b"x" * (8 << 20) + b"\n"),
        ("huge-string", "8 MB description",
         texts["balance-core"].encode().replace(b'name = "balance-core"',
                                                b'name = "' + b"x" * (8 << 20) + b'"')),
        ("bom", "UTF-8 BOM", b"\xef\xbb\xbf" + texts["balance-core"].encode()),
        ("utf16", "UTF-16 encoded", texts["balance-core"].encode("utf-16")),
        ("crlf", "CRLF line ends", texts["loihi"].replace("\n", "\r\n").encode()),
        ("cr-only", "CR-only line ends", texts["loihi"].replace("\n", "\r").encode()),
        ("gzip", "gzip-compressed TOML", gz(texts["balance-core"].encode())),
        ("concat", "two chips concatenated",
         (texts["balance-core"] + "\n" + texts["loihi"]).encode()),
        ("mesh-huge", "mesh 65536 x 65536", texts["balance-core"].replace(
            "cols = 4\nrows = 4", "cols = 65536\nrows = 65536").encode()),
        ("mesh-u32max", "mesh 4294967295 x 4294967295", texts["balance-core"].replace(
            "cols = 4\nrows = 4", "cols = 4294967295\nrows = 4294967295").encode()),
        ("mesh-zero", "mesh 0 x 0", texts["balance-core"].replace(
            "cols = 4\nrows = 4", "cols = 0\nrows = 0").encode()),
        ("neurons-huge", "core.neurons = 4294967295", texts["balance-core"].replace(
            "neurons = 256", "neurons = 4294967295").encode()),
        ("synapses-huge", "core.synapses = 4294967295", texts["balance-core"].replace(
            "synapses = 65536", "synapses = 4294967295").encode()),
        ("act-entries-huge", "activation_table.entries = 4294967295",
         texts["balance-core"].replace("entries = 4096", "entries = 4294967295").encode()),
        ("bal-entries-huge", "balance_table.entries = 4294967295",
         texts["balance-core"].replace("entries = 64 ", "entries = 4294967295 ").encode()),
    ]
    for kind, desc, data in fixed:
        file_cases("balance-core", kind, desc, data, [], None)
    # odd file names (same valid content)
    for fname in ["chip", "chip.TOML", "my chip.toml", "ç.toml", "-chip.toml"]:
        file_cases("balance-core", "filename", f"valid file named {fname!r}",
                   texts["balance-core"].encode(), [], None, fname=fname)

    # --set overrides
    n_set = int(quota * 0.3)
    set_cases = []
    for name in CHIP_NAMES:
        for k in SET_BAD_KEYS:
            set_cases.append((name, k, rng.choice(SET_VALUES[:8])))
    for malformed in ["noequals", "=5", "mesh.cols==4", "mesh.cols=4=5", " mesh.cols = 4",
                      "mesh.cols=", "MESH.COLS=4"]:
        set_cases.append(("balance-core", None, malformed))
    while len(set_cases) < n_set:
        name = rng.choice(CHIP_NAMES)
        set_cases.append((name, rng.choice(keys[name]), rng.choice(SET_VALUES)))
    for name, k, v in set_cases[:max(n_set, 0)]:
        arg = v if k is None else f"{k}={v}"
        leaf = (k or "").split(".")[-1]
        absurd = f"{k}={v}" if (k in keys[name] and v in ("-1", "1e308", "4294967296", "1e12",
                                                         "NaN", "inf", "-inf")) else None
        cases.append(Case("chip", "set", f"{name}: --set {arg[:80]}",
                          ["train", "--chip", name] + CHIP_TRAIN[name] + ["--set", arg],
                          keys=[k, leaf, "--set"], absurd=absurd))
    # random file mutations until the quota is met
    while len(cases) < quota:
        name = rng.choice(CHIP_NAMES)
        kind, desc, data, ks, absurd = chip_mutation(rng, name, texts[name])
        file_cases(name, kind, desc, data, ks, absurd)
    return cases


# ------------------------------------------------------------------------------------------------
# family 2: CSV datasets
# ------------------------------------------------------------------------------------------------

NONNUM = ["abc", "1.2.3", "", "0x1F", "1e", "--1", "\u0661", "1_000", " ", '"1"', "1;2", "true",
          "NaN%", "\uff11", "1 2", "\t", "1e+", ".", "+-1", "1,5"]
NONFINITE = ["NaN", "nan", "inf", "-inf", "infinity", "+inf", "1e309", "-1e309", "Infinity"]
BAD_LABELS = ["65535", "65536", "4294967296", "18446744073709551616", "1e300", "-1", "-0", "1.5",
              "3.0", "1e3", "1e4", "9007199254740993", "0.0", "+2", "00002", "1e-300", "0.99999",
              "2.0000000000000001", "1000000", "12345678901234567890123"]


def gen_rows(rng):
    n = rng.randint(10, 60)
    d = rng.randint(1, 6)
    k = rng.randint(2, 4)
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    style = rng.choice(["f", "i", "e"])

    def val():
        x = rng.uniform(-10, 10)
        return {"f": f"{x:.{rng.randint(0, 6)}f}", "i": str(int(x)), "e": f"{x:e}"}[style]

    return [[val() for _ in range(d)] + [str(l)] for l in labels]


def render(rows, header=None, nl="\n", sep=","):
    out = ([header] if header is not None else []) + [sep.join(r) for r in rows]
    return (nl.join(out) + nl).encode()


def csv_mutation(rng):
    """(kind, desc, bytes, absurd, fname, extra-files)"""
    rows = gen_rows(rng)
    n, w = len(rows), len(rows[0])
    header = rng.choice([None, None, ",".join(f"c{i}" for i in range(w))])
    op = rng.choices(
        ["ragged-short", "ragged-long", "nonnum", "nonfinite", "label", "label-all",
         "single-class", "label-gaps", "few-rows", "long-line", "wide", "long-cell", "junk",
         "junk-append", "invalid-utf8", "nul", "format", "blank-mid", "gz", "gz-corrupt",
         "big-values", "constant", "every-row-own-class", "multi", "header-only"],
        weights=[6, 5, 8, 6, 10, 4, 4, 5, 4, 2, 2, 2, 3, 3, 3, 2, 6, 3, 2, 4, 4, 2, 2, 6, 2])[0]

    def cell(r, c, v):
        rows[r][c] = v

    absurd = None
    fname = "data.csv"
    if op == "ragged-short":
        r = rng.randrange(n)
        rows[r] = rows[r][:-1] if w > 1 else []
        desc = f"row {r + 1} one cell short"
    elif op == "ragged-long":
        r = rng.randrange(n)
        rows[r] = rows[r] + ["1"] * rng.randint(1, 3)
        desc = f"row {r + 1} has extra cells"
    elif op == "nonnum":
        r, c, v = rng.randrange(n), rng.randrange(w), rng.choice(NONNUM)
        cell(r, c, v)
        desc = f"row {r + 1} col {c + 1} = {v!r}"
    elif op == "nonfinite":
        r, c, v = rng.randrange(n), rng.randrange(w), rng.choice(NONFINITE)
        cell(r, c, v)
        desc = f"row {r + 1} col {c + 1} = {v!r}"
    elif op == "label":
        r, v = rng.randrange(n), rng.choice(BAD_LABELS)
        cell(r, w - 1, v)
        desc = f"row {r + 1} label = {v!r}"
        absurd = f"label {v} accepted" if v in ("65535", "1e4", "1000000") else None
    elif op == "label-all":
        v = rng.choice(["65535", "1e3", "-1", "4294967296", "1.5"])
        for r in range(n):
            cell(r, w - 1, v if r % 2 else "0")
        desc = f"every other label = {v!r}"
        absurd = f"label {v} accepted" if v in ("65535", "1e3") else None
    elif op == "single-class":
        v = rng.choice(["0", "7", "65535"])
        for r in range(n):
            cell(r, w - 1, v)
        desc = f"all labels = {v}"
        absurd = f"single class {v} accepted"
    elif op == "label-gaps":
        a, b = rng.choice([(0, 1000), (0, 65535), (3, 7), (1, 2), (100, 200)])
        for r in range(n):
            cell(r, w - 1, str(a if r % 2 else b))
        desc = f"labels only {a} and {b}"
        absurd = f"labels {a},{b} accepted" if b >= 1000 else None
    elif op == "few-rows":
        k = rng.choice([1, 2, 3, 4, 5])
        rows = rows[:k]
        desc = f"only {k} rows"
    elif op == "long-line":
        r = rng.randrange(n)
        rows[r] = ["1"] * 100000 + ["0"]
        desc = f"row {r + 1} has 100001 cells"
    elif op == "wide":
        width = rng.choice([5000, 20000])
        rows = [[str(rng.randint(0, 9)) for _ in range(width)] + [str(i % 2)] for i in range(12)]
        desc = f"12 rows of {width} features"
    elif op == "long-cell":
        r, c = rng.randrange(n), rng.randrange(w)
        v = rng.choice(["1" * 1_000_000, "0." + "1" * 1_000_000, "-" + "9" * 400])
        cell(r, c, v)
        desc = f"row {r + 1} col {c + 1} is a {len(v)}-char number"
    elif op == "junk":
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
        return op, f"{len(data)} random bytes", data, None, fname, {}
    elif op == "junk-append":
        data = render(rows, header) + bytes(rng.randrange(256) for _ in range(64))
        return op, "64 random bytes appended", data, None, fname, {}
    elif op == "invalid-utf8":
        data = bytearray(render(rows, header))
        p = rng.randrange(len(data))
        data[p:p] = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xfe\xff"])
        return op, f"invalid UTF-8 at byte {p}", bytes(data), None, fname, {}
    elif op == "nul":
        r, c = rng.randrange(n), rng.randrange(w)
        cell(r, c, rows[r][c] + "\0")
        desc = f"NUL in row {r + 1} col {c + 1}"
    elif op == "format":
        f = rng.choice(["bom", "crlf", "cr", "tab", "semicolon", "trailing-comma",
                        "leading-comma", "spaces", "no-final-newline", "trailing-blank",
                        "quoted", "header-numeric"])
        desc = f"format variant {f}"
        if f == "bom":
            return op, desc, b"\xef\xbb\xbf" + render(rows, header), None, fname, {}
        if f == "crlf":
            return op, desc, render(rows, header, "\r\n"), None, fname, {}
        if f == "cr":
            return op, desc, render(rows, header, "\r"), None, fname, {}
        if f == "tab":
            return op, desc, render(rows, header, sep="\t"), None, fname, {}
        if f == "semicolon":
            return op, desc, render(rows, header, sep=";"), None, fname, {}
        if f == "trailing-comma":
            rows = [r + [""] for r in rows]
        elif f == "leading-comma":
            rows = [[""] + r for r in rows]
        elif f == "spaces":
            rows = [["  " + x + " " for x in r] for r in rows]
        elif f == "no-final-newline":
            return op, desc, render(rows, header)[:-1], None, fname, {}
        elif f == "trailing-blank":
            return op, desc, render(rows, header) + b"\n\n  \n", None, fname, {}
        elif f == "quoted":
            rows = [['"' + x + '"' for x in r] for r in rows]
        elif f == "header-numeric":
            header = ",".join(str(i) for i in range(w))
    elif op == "blank-mid":
        r = rng.randrange(1, n)
        data = render(rows[:r], header) + b"\n" + render(rows[r:])
        return op, f"blank line before row {r + 1}", data, None, fname, {}
    elif op == "gz":
        return op, "gzip-compressed CSV named .csv.gz", gz(render(rows, header)), None, \
            "data.csv.gz", {}
    elif op == "gz-corrupt":
        data = bytearray(gz(render(rows, header)))
        how = rng.choice(["flip", "truncate", "crc", "isize", "trailing"])
        if how == "flip":
            p = rng.randrange(10, len(data) - 8)
            data[p] ^= 0xFF
        elif how == "truncate":
            data = data[:rng.randrange(2, len(data) - 1)]
        elif how == "crc":
            data[-8] ^= 1
        elif how == "isize":
            data[-4] ^= 1
        else:
            data += b"garbage"
        return op, f"gzip CSV, corrupt ({how})", bytes(data), None, "data.csv.gz", {}
    elif op == "big-values":
        v = rng.choice(["1e308", "-1e308", "5e-324", "1.7976931348623157e308", "-0"])
        c = rng.randrange(w - 1) if w > 1 else 0
        for r in range(0, n, 2):
            cell(r, c, v)
        desc = f"feature {c + 1} = {v} in half the rows"
    elif op == "constant":
        rows = [list(rows[0]) for _ in rows]
        for i, r in enumerate(rows):
            r[-1] = str(i % 2)
        desc = "all feature rows identical"
    elif op == "every-row-own-class":
        for i, r in enumerate(rows):
            r[-1] = str(i)
        desc = "every row its own class"
    elif op == "header-only":
        data = (",".join(f"c{i}" for i in range(w)) + "\n").encode()
        return op, "header only", data, None, fname, {}
    else:  # multi
        ds = []
        for _ in range(rng.randint(2, 3)):
            r, c = rng.randrange(n), rng.randrange(len(rows[0]))
            v = rng.choice(NONNUM + NONFINITE + BAD_LABELS)
            if c < len(rows[r]):
                rows[r][c] = v
            ds.append(f"r{r + 1}c{c + 1}={v!r}")
        desc = "; ".join(ds)
    return op, desc, render(rows, header), absurd, fname, {}


def gen_csv(rng, quota, cache):
    cases = []

    def add(kind, desc, files, path, absurd=None):
        base = ["train", "--data", path, "--hidden", "4", "--epochs", "1"]
        fname = os.path.basename(path)
        for ref in (False, True):
            cases.append(Case("csv", kind + ("/ref" if ref else "/chip"),
                              desc, base + (["--reference"] if ref else []), files=files,
                              keys=[fname], absurd=absurd))

    fixed = [("empty", "empty file", b""), ("whitespace", "whitespace only", b"  \n\n \t\n"),
             ("newlines", "newlines only", b"\n" * 1000),
             ("header-only", "iris-style header only", b"150,4,setosa,versicolor,virginica\n"),
             ("one-column", "one column", b"1\n2\n3\n4\n5\n"),
             ("just-commas", "commas only", b",,,\n,,,\n"),
             ("nul-file", "NUL bytes only", b"\0" * 512),
             ("utf16", "UTF-16 CSV", render(gen_rows(rng)).decode().encode("utf-16")),
             ("gz-empty", "gzip of nothing", gz(b"")),
             ("gz-of-gz", "gzip of gzip CSV", gz(gz(render(gen_rows(rng)))))]
    for kind, desc, data in fixed:
        add(kind, desc, {"data.csv": data}, os.path.join(D, "data.csv"))
    # file-system oddities
    valid = render(gen_rows(rng))
    odd = [("dir", "a directory named x.csv", {"x.csv": ("dir",)}, "x.csv"),
           ("devzero", "symlink to /dev/zero", {"z.csv": ("link", "/dev/zero")}, "z.csv"),
           ("devnull", "/dev/null", {}, "/dev/null"),
           ("fifo", "a FIFO (no writer)", {"f.csv": ("fifo",)}, "f.csv"),
           ("procfile", "/proc/self/status", {}, "/proc/self/status"),
           ("name-space", "file name with spaces", {"my data.csv": valid}, "my data.csv"),
           ("name-noext", "no extension", {"data": valid}, "data"),
           ("name-unicode", "unicode name", {"données.csv": valid}, "données.csv"),
           ("name-bundled", "file named iris in cwd (bundled name wins?)",
            {"iris": b"1,2,3\n"}, "=iris"),
           ("name-dash", "file named -x.csv, given relative", {"-x.csv": valid}, "=-x.csv")]
    for kind, desc, files, rel in odd:
        add(kind, desc, files, rel[1:] if rel.startswith("=") else
            rel if rel.startswith("/") else os.path.join(D, rel))
    # a CSV gzip bomb (~1.1 GiB of "0,0\n1,1\n")
    add("gz-bomb", "gzip CSV expanding to 1.1 GiB", {"bomb.csv.gz": ("link", cache["csv-bomb"])},
        os.path.join(D, "bomb.csv.gz"))
    while len(cases) < quota:
        kind, desc, data, absurd, fname, _ = csv_mutation(rng)
        add(kind, desc, {fname: data}, os.path.join(D, fname), absurd)
    return cases


# ------------------------------------------------------------------------------------------------
# family 3: MNIST IDX directories
# ------------------------------------------------------------------------------------------------

MN = {p: f"mnist10k-{p}-ubyte.gz" for p in
      ["train-images-idx3", "train-labels-idx1", "test-images-idx3", "test-labels-idx1"]}


def idx_img(n, rows, cols, pix=None, magic=0x803, hdr=None, rng=None):
    h = hdr if hdr is not None else (n, rows, cols)
    if pix is None:
        pix = bytes(rng.randrange(256) for _ in range(n * rows * cols)) if rng else \
            bytes(n * rows * cols)
    return struct.pack(">IIII", magic, *h) + pix


def idx_lab(labels, magic=0x801, hdr=None):
    return struct.pack(">II", magic, len(labels) if hdr is None else hdr) + bytes(labels)


def idx_mutation(rng, cache):
    """(kind, desc, {file: bytes|('link',p)|('dir',)|None}, absurd)"""
    r, c = rng.choice([(28, 28), (28, 28), (8, 8), (4, 4)])
    ntr, nte = rng.randint(20, 60), rng.randint(5, 20)
    raw = {
        "train-images-idx3": idx_img(ntr, r, c, rng=rng),
        "train-labels-idx1": idx_lab([rng.randrange(10) for _ in range(ntr)]),
        "test-images-idx3": idx_img(nte, r, c, rng=rng),
        "test-labels-idx1": idx_lab([rng.randrange(10) for _ in range(nte)]),
    }
    sizes = {"train-images-idx3": (ntr, r, c), "test-images-idx3": (nte, r, c)}
    plain = set()  # files to store uncompressed
    special = {}
    absurd = None
    part = rng.choice(list(raw))
    is_img = part.endswith("idx3")
    op = rng.choices(
        ["missing", "empty", "magic", "trunc-header", "trunc-body", "trailing", "dim-zero",
         "dim-huge", "dim-overflow", "label-range", "plain", "gz-corrupt", "gz-of-gz",
         "gz-multi", "width-mismatch", "count-mismatch", "hdr-count", "one-item",
         "single-class", "transposed", "dir", "real-mix", "devzero"],
        weights=[3, 3, 6, 6, 7, 5, 5, 6, 3, 5, 2, 8, 2, 2, 7, 6, 6, 3, 2, 2, 1, 4, 1])[0]
    data = raw[part]
    if op == "missing":
        special[part] = None
        desc = f"{part} missing"
    elif op == "empty":
        raw[part] = b""
        desc = f"{part} empty (gz of nothing)" if rng.random() < .5 else f"{part} empty"
        if "nothing" not in desc:
            plain.add(part)
    elif op == "magic":
        m = rng.choice([0, 0x801 if is_img else 0x803, 0x804, 0xC03, 0x0803_0000, 0xFFFFFFFF,
                        0x1F8B0800])
        raw[part] = struct.pack(">I", m) + data[4:]
        desc = f"{part} magic 0x{m:08x}"
    elif op == "trunc-header":
        k = rng.randrange(0, 16 if is_img else 8)
        raw[part] = data[:k]
        desc = f"{part} cut to {k} header bytes"
    elif op == "trunc-body":
        hl = 16 if is_img else 8
        k = rng.randrange(hl, len(data))
        raw[part] = data[:k]
        desc = f"{part} cut at byte {k}/{len(data)}"
    elif op == "trailing":
        k = rng.choice([1, 3, 784, 100000])
        raw[part] = data + bytes(k)
        desc = f"{part} + {k} trailing bytes"
    elif op == "dim-zero":
        f = rng.randrange(3 if is_img else 1)
        hdr = list(struct.unpack(">III", data[4:16])) if is_img else [struct.unpack(">I", data[4:8])[0]]
        hdr[f] = 0
        raw[part] = data[:4] + struct.pack(">" + "I" * len(hdr), *hdr) + \
            (b"" if f == 0 else data[(16 if is_img else 8):])
        if f == 0:
            raw[part] = raw[part]  # n = 0 with no body: consistent
        desc = f"{part} header field {f} = 0"
    elif op == "dim-huge":
        v = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1 << 24, 1 << 16, 0x80000000])
        f = rng.randrange(3 if is_img else 1)
        hdr = list(struct.unpack(">III", data[4:16])) if is_img else [struct.unpack(">I", data[4:8])[0]]
        hdr[f] = v
        hl = 16 if is_img else 8
        raw[part] = data[:4] + struct.pack(">" + "I" * len(hdr), *hdr) + data[hl:]
        desc = f"{part} header field {f} = {v}"
    elif op == "dim-overflow":
        part = rng.choice(["train-images-idx3", "test-images-idx3"])
        raw[part] = struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + b"\0" * 64
        desc = f"{part} n = rows = cols = 4294967295"
    elif op == "label-range":
        part = rng.choice(["train-labels-idx1", "test-labels-idx1"])
        labs = bytearray(raw[part][8:])
        v = rng.choice([10, 11, 128, 255])
        labs[rng.randrange(len(labs))] = v
        raw[part] = raw[part][:8] + bytes(labs)
        desc = f"{part} contains label {v}"
    elif op == "plain":
        plain.add(part)
        desc = f"{part} not gzipped (plain IDX under .gz name)"
    elif op == "gz-corrupt":
        g = bytearray(gz(data))
        how = rng.choice(["flip", "truncate", "crc", "isize", "trailing-garbage", "header"])
        if how == "flip":
            p = rng.randrange(10, len(g) - 8)
            g[p] ^= 1 << rng.randrange(8)
        elif how == "truncate":
            g = g[:rng.randrange(2, len(g) - 1)]
        elif how == "crc":
            g[-8] ^= 1
        elif how == "isize":
            g[-1] ^= 0x80
        elif how == "trailing-garbage":
            g += bytes(rng.randrange(256) for _ in range(16))
        else:
            g[2] = 0x09  # unknown compression method
        special[part] = bytes(g)
        desc = f"{part} corrupt gzip ({how})"
    elif op == "gz-of-gz":
        special[part] = gz(gz(data))
        desc = f"{part} gzip of gzip"
    elif op == "gz-multi":
        half = len(data) // 2
        special[part] = gz(data[:half]) + gz(data[half:])
        desc = f"{part} split over two gzip members (valid)"
    elif op == "width-mismatch":
        r2, c2 = rng.choice([(14, 14), (28, 14), (1, 1), (30, 30), (56, 56)])
        part = rng.choice(["train-images-idx3", "test-images-idx3"])
        n = sizes[part][0]
        raw[part] = idx_img(n, r2, c2, rng=rng)
        desc = f"{part} is {r2}x{c2}, the other split {r}x{c}"
        absurd = f"train/test widths differ ({r2}x{c2} vs {r}x{c}) accepted"
    elif op == "count-mismatch":
        pi = rng.choice(["train", "test"])
        lp = f"{pi}-labels-idx1"
        labs = raw[lp][8:]
        labs = labs[:-1] if rng.random() < .5 else labs + b"\1"
        raw[lp] = idx_lab(list(labs))
        desc = f"{lp} holds {len(labs)} labels, images {sizes[pi + '-images-idx3'][0]}"
    elif op == "hdr-count":
        lp = rng.choice(["train-labels-idx1", "test-labels-idx1"])
        labs = raw[lp][8:]
        d = rng.choice([-1, 1, 1000, -len(labs)])
        raw[lp] = idx_lab(list(labs), hdr=len(labs) + d)
        desc = f"{lp} header count {len(labs) + d}, body {len(labs)}"
    elif op == "one-item":
        pi = rng.choice(["train", "test"])
        raw[f"{pi}-images-idx3"] = idx_img(1, r, c, rng=rng)
        raw[f"{pi}-labels-idx1"] = idx_lab([3])
        desc = f"{pi} split holds a single image"
    elif op == "single-class":
        for pi, n in (("train", ntr), ("test", nte)):
            raw[f"{pi}-labels-idx1"] = idx_lab([7] * n)
        desc = "every label is 7"
        absurd = "single-class MNIST accepted"
    elif op == "transposed":
        part = rng.choice(["train-images-idx3", "test-images-idx3"])
        n = sizes[part][0]
        raw[part] = idx_img(n, r * c, 1, rng=rng)
        desc = f"{part} is {r * c}x1, the other split {r}x{c} (same width)"
    elif op == "dir":
        special[part] = ("dir",)
        desc = f"{part} is a directory"
    elif op == "devzero":
        special[part] = ("link", "/dev/zero")
        desc = f"{part} is a symlink to /dev/zero"
    else:  # real-mix: the bundled files for one split, synthetic (mutated?) other
        keep = rng.choice(["train", "test"])
        for p in raw:
            if p.startswith(keep):
                special[p] = ("link", os.path.join(DATA, MN[p]))
        other = "test" if keep == "train" else "train"
        if (r, c) != (28, 28):
            desc = f"bundled {keep} split (28x28) with a synthetic {r}x{c} {other} split"
            absurd = f"bundled 28x28 {keep} with {r}x{c} {other} accepted"
        else:
            desc = f"bundled {keep} split with a synthetic 28x28 {other} split"
    files = {}
    for p in raw:
        if p in special:
            if special[p] is not None:
                files[MN[p]] = special[p]
        else:
            files[MN[p]] = raw[p] if p in plain else gz(raw[p], 1)
    return op, desc, files, absurd


def gen_idx(rng, quota, cache):
    cases = []

    def add(kind, desc, files, absurd=None):
        d = D
        for ref in (False, True):
            cases.append(Case("idx", kind + ("/ref" if ref else "/chip"), desc,
                              ["train", "--data", "mnist", "--hidden", "4", "--epochs", "1"]
                              + (["--reference"] if ref else []),
                              files=files, env={"ACCORD_DATA": d}, keys=list(files) + [d],
                              absurd=absurd))

    real = {MN[p]: ("link", os.path.join(DATA, MN[p])) for p in MN}
    # gzip bombs (built once into the cache)
    add("bomb-images", "train images .gz (1.3 MB) expanding to 1.1 GiB, consistent header "
        "(n = 1500000 28x28)", {**real, MN["train-images-idx3"]: ("link", cache["img-bomb"])})
    add("bomb-trailing", "train images .gz expanding to 1.1 GiB: header n = 1 then zeros",
        {**real, MN["train-images-idx3"]: ("link", cache["trail-bomb"])})
    add("bomb-labels", "test labels .gz expanding to 1.1 GiB, consistent header",
        {**real, MN["test-labels-idx1"]: ("link", cache["lab-bomb"])})
    add("bomb-5g", "train images .gz expanding to 5 GiB (header n = 0)",
        {**real, MN["train-images-idx3"]: ("link", cache["big-bomb"])})
    add("empty-dir", "ACCORD_DATA is an empty directory", {})
    while len(cases) < quota:
        kind, desc, files, absurd = idx_mutation(rng, cache)
        add(kind, desc, files, absurd)
    return cases


def build_cache(cache_dir, need_idx, need_csv):
    os.makedirs(cache_dir, exist_ok=True)
    c = {}
    specs = []
    if need_idx:
        n = 1_500_000
        specs += [("img-bomb", struct.pack(">IIII", 0x803, n, 28, 28), 16 + n * 784, b"\0"),
                  ("trail-bomb", struct.pack(">IIII", 0x803, 1, 28, 28), 16 + n * 784, b"\0"),
                  ("lab-bomb", struct.pack(">II", 0x801, 1_200_000_000), 8 + 1_200_000_000,
                   b"\0"),
                  ("big-bomb", struct.pack(">IIII", 0x803, 0, 28, 28), 5 << 30, b"\0")]
    if need_csv:
        specs.append(("csv-bomb", b"", 1_200_000_000, b"0,0\n1,1\n"))
    for name, prefix, total, unit in specs:
        p = os.path.join(cache_dir, name + ".gz")
        c[name] = p
        if not os.path.exists(p):
            gz_bomb(p + ".part", prefix, total, unit)
            os.rename(p + ".part", p)
    return c


# ------------------------------------------------------------------------------------------------
# family 4: CLI values
# ------------------------------------------------------------------------------------------------

NUM_BAD = ["0", "-1", "1", "4294967296", "18446744073709551616", "1e308", "-1e308", "NaN", "inf",
           "-inf", "", "abc", "1e-320", "1.5", "0x10", " 1", "-0", "9223372036854775807",
           "65536", "1e3", "340282366920938463463374607431768211456", b"\xff"]
LIST_EXTRA = ["65536,65536", "4,", ",4", "4,,4", ",", "4,0", "-1,4", "nan,1", "4294967296,4",
              ",".join(["1"] * 5000), "1 2", "1;2", "inf,1", "0,0,0"]
ENUM_BAD = ["", "foo", "SIGMOID", "sigmoid ", "1", "balance,backprop", b"\xff", "x" * 10000]
SUBCOMMANDS = ["train", "verify", "chip check", "chip show", "map", "modules", "probe",
               "all-to-all"]
BASE = {
    "train": ["train", "--data", "iris", "--hidden", "4", "--epochs", "1"],
    "verify": ["verify", "--nets", "2"],
    "map": ["map", "--data", "iris", "--hidden", "4"],
    "modules": ["modules", "--data", "iris", "--n", "12", "--rates", "0.1", "--seeds", "1",
                "--epochs", "1", "--samples", "20", "--louvain-restarts", "1", "--threads", "1",
                "--out", "out"],
    "probe": ["probe", "all", "--data", "iris", "--hidden", "4", "--n", "12", "--epochs", "1",
              "--samples", "20", "--probe-samples", "5", "--threads", "1", "--bits", "2",
              "--entries", "4", "--steps", "1", "--gains", "1", "--max-steps", "100",
              "--out", "out"],
    "all-to-all": ["all-to-all", "--n", "80", "--epochs", "1", "--samples", "20"],
    "chip check": ["chip", "check", "balance-core"],
    "chip show": ["chip", "show", "balance-core"],
}
LIST_FLAGS = {"--hidden", "--rates", "--seeds", "--bits", "--entries", "--shifts", "--steps",
              "--gains", "--sizes", "--set"}
PATH_IN = {"--data", "--chip"}
PATH_OUT = {"--out", "--plot"}
WORK_FLAGS = {"--epochs", "--nets", "--n", "--samples", "--probe-samples", "--ticks",
              "--max-iter", "--max-steps", "--louvain-restarts", "--hidden", "--sizes", "--rates",
              "--seeds", "--bits", "--entries", "--gains", "--lut-entries", "--threads",
              "--steps", "--shifts", "--batch", "--lut-bits", "--weight-bits"}
HUGE = {"4294967296", "18446744073709551616", "1e308", "9223372036854775807", "65536", "1e3",
        "340282366920938463463374607431768211456", "65536,65536", "4294967296,4"}
FLOAT_FLAGS_POSITIVE = {"--lr", "--a2a-lr", "--init-scale", "--damping", "--tol",
                        "--message-threshold", "--clamp-damping", "--vanish", "--diverge",
                        "--lut-range", "--rates"}
SUSPECT_VALUES = {"NaN", "inf", "-inf", "1e308", "-1e308", "-1", "nan,1", "inf,1", "-1,4"}


def parse_help(binary, sub):
    out = subprocess.run([binary] + sub.split() + ["--help"], capture_output=True, text=True).stdout
    flags, enums, cur = {}, {}, None
    for line in out.splitlines():
        m = re.match(r"^\s+(?:-\w, )?(--[a-z0-9-]+)(?: <([A-Z_=]+)>)?", line)
        if m:
            cur = m.group(1)
            if cur not in ("--help", "--version"):
                flags[cur] = m.group(2)
            continue
        m = re.match(r"^\s+- ([a-z0-9-]+):", line)
        if m and cur:
            enums.setdefault(cur, []).append(m.group(1))
    pos = re.findall(r"[<\[]([A-Z_]+)[>\]]", out.split("Options:")[0].split("Usage:")[-1]) \
        if "Usage:" in out else []
    return flags, enums, [p for p in dict.fromkeys(pos) if p not in ("OPTIONS", "COMMAND")]


def with_flag(base, flag, value):
    argv = list(base)
    if flag in argv:
        i = argv.index(flag)
        argv[i + 1] = value
    else:
        argv += [flag, value]
    return argv


def gen_cli(rng, quota, binary):
    cases = []
    singles = []

    def add(kind, desc, argv, keys, files=None, long_ok=False, absurd=None):
        singles.append(Case("cli", kind, desc, argv, files=files, keys=keys, long_ok=long_ok,
                            absurd=absurd))

    for sub in SUBCOMMANDS:
        flags, enums, pos = parse_help(binary, sub)
        variants = [BASE[sub]]
        if sub == "train":
            variants.append(BASE[sub] + ["--reference"])
        for flag, meta in flags.items():
            for base in variants:
                if base is not variants[0] and flag not in (
                        "--lr", "--epochs", "--batch", "--steps", "--hidden", "--activation",
                        "--loss", "--rule", "--seed", "--split-seed", "--data", "--json"):
                    continue
                b = base
                if sub == "train" and flag in ("--ticks", "--encoding"):
                    b = base + ["--mode", "spiking"] + (["--ticks", "4"] if flag != "--ticks" else [])
                tag = f"{sub}{' (ref)' if base is not variants[0] else ''} {flag}"
                if meta is None:  # boolean flag
                    for extra in ([flag, "--bogus-flag"], [flag, flag], [flag + "=1"],
                                  [flag + "=false"]):
                        add("bool", f"{tag}: {' '.join(extra)}", b + extra, [flag])
                    continue
                if flag in enums:
                    values = ENUM_BAD + [e.upper() for e in enums[flag][:1]]
                elif flag in PATH_IN:
                    values = ["", "/nonexistent/x.toml", "/dev/null", "/dev/zero", "/",
                              "/proc/self/mem", "x" * 5000, b"\xff.toml", "dir.toml",
                              "fifo.toml", "MNIST", "digits.csv", "../x"]
                elif flag in PATH_OUT:
                    values = ["", "/dev/null", "/dev/null/x", "/proc/nope", "file.txt",
                              "x" * 300, "a/" * 200, b"\xff"]
                elif flag == "--set":
                    values = ["", "=", "x", "a=1", "mesh.cols=", "mesh=1", "mesh.cols=1e308",
                              "formats.weight.bits=200", "prices.sop.energy_pj=NaN"]
                else:
                    values = NUM_BAD + (LIST_EXTRA if flag in LIST_FLAGS else [])
                for v in values:
                    files = None
                    if v == "dir.toml":
                        files = {"dir.toml": ("dir",)}
                    elif v == "fifo.toml":
                        files = {"fifo.toml": ("fifo",)}
                    elif v == "file.txt":
                        files = {"file.txt": b"x"}
                    long_ok = (flag in WORK_FLAGS and v in HUGE) or v == "fifo.toml"
                    absurd = None
                    if (flag in FLOAT_FLAGS_POSITIVE and v in SUSPECT_VALUES) or \
                            (v in ("NaN", "inf", "-inf", "nan,1", "inf,1") and flag not in PATH_IN):
                        absurd = f"{flag} {v} accepted"
                    disp = v.decode("latin-1") if isinstance(v, bytes) else v
                    add("value", f"{tag} = {disp[:60]!r}", with_flag(b, flag, v),
                        [flag] + ([v] if flag in PATH_IN | PATH_OUT and isinstance(v, str)
                                  else []), files=files, long_ok=long_ok,
                        absurd=absurd)
        # positional arguments
        for p in pos:
            if sub.startswith("chip"):
                values = ["", "foo", "/dev/null", "/dev/zero", "/", "/proc/self/mem",
                          "/proc/self/status", "x.toml", "a/b", "loihi ", "LOIHI",
                          "../hw_models/loihi", "fifo.toml", "x" * 5000, b"\xff.toml",
                          "dir.toml"]
                base = BASE[sub][:-1]
            else:
                values = ["", "foo", "ALL", "balance,clamp", b"\xff"]
                base = [BASE[sub][0]] + BASE[sub][2:]
            for v in values:
                files = {"fifo.toml": ("fifo",)} if v == "fifo.toml" else (
                    {"dir.toml": ("dir",)} if v == "dir.toml" else None)
                disp = v.decode("latin-1") if isinstance(v, bytes) else v
                add("positional", f"{sub} <{p}> = {disp[:60]!r}", base + [v],
                    [p, "<" + p + ">"] + ([v] if isinstance(v, str) else []), files=files,
                    long_ok=(v == "fifo.toml"))
    # global oddities
    for argv, desc in [([], "no arguments"), (["foo"], "unknown subcommand"),
                       (["--version"], "--version"), (["help", "train"], "help train"),
                       (["train", "--epochs", "1", "--epochs", "2", "--data", "iris",
                         "--hidden", "4"], "duplicated --epochs"),
                       (["train", "--data=iris", "--hidden=4", "--epochs=1"], "--flag=value form"),
                       (["train", "--", "--epochs"], "-- then a flag"),
                       (["train", "--data", "iris", "--hidden", "4", "--epochs", "1", "extra"],
                        "stray positional"),
                       (["chip"], "chip without subcommand"),
                       (["chip", "check"], "chip check without FILE")]:
        add("global", desc, argv, ["--epochs", "chip", "train"])
    if len(singles) > quota:
        idx = sorted(rng.sample(range(len(singles)), quota))
        singles = [singles[i] for i in idx]
    cases = singles
    # fill up with random pairs of bad flags on one subcommand
    subs = ["train", "modules", "probe", "all-to-all", "map"]
    helps = {s: parse_help(binary, s) for s in subs}
    while len(cases) < quota:
        sub = rng.choice(subs)
        flags, enums, _ = helps[sub]
        numeric = [f for f, m in flags.items() if m and f not in enums and f not in PATH_IN
                   and f not in PATH_OUT and f != "--set"]
        argv = list(BASE[sub])
        picks = rng.sample(numeric, 2)
        vals = []
        long_ok = False
        for f in picks:
            v = rng.choice([x for x in NUM_BAD if isinstance(x, str)])
            argv = with_flag(argv, f, v)
            vals.append(f"{f} {v!r}")
            long_ok |= f in WORK_FLAGS and v in HUGE
        cases.append(Case("cli", "pair", f"{sub}: " + ", ".join(vals), argv, keys=picks,
                          long_ok=long_ok))
    return cases


# ------------------------------------------------------------------------------------------------
# running and classifying
# ------------------------------------------------------------------------------------------------

NAN_RE = re.compile(r"(?<![A-Za-z])(nan|[-+]?inf(inity)?)(?![A-Za-z])", re.I)
JSON_NULL_RE = re.compile(r'"(test|train)_(loss|accuracy)[a-z_]*":\s*null')


def materialise(c):
    os.makedirs(c.dir, exist_ok=True)
    for name, content in c.files.items():
        p = os.path.join(c.dir, name)
        if isinstance(content, tuple):
            if content[0] == "dir":
                os.makedirs(p, exist_ok=True)
            elif content[0] == "link":
                os.symlink(content[1], p)
            elif content[0] == "fifo":
                os.mkfifo(p)
        else:
            with open(p, "wb") as f:
                f.write(content)


def run_case(c, binary, as_bytes, fsize, base_env):
    materialise(c)
    env = dict(base_env)
    env.update(c.env)
    cmd = ["prlimit", f"--as={as_bytes}", "--core=0", f"--fsize={fsize}", "--", binary] + c.argv
    so_p, se_p = os.path.join(c.dir, ".adv-stdout"), os.path.join(c.dir, ".adv-stderr")
    t0 = time.monotonic()
    timed_out = False
    with open(so_p, "wb") as so, open(se_p, "wb") as se:
        try:
            p = subprocess.Popen(cmd, cwd=c.dir, env=env, stdout=so, stderr=se,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            return dict(outcome="clean-error", rc=None, sig=None, rss_kb=0, seconds=0,
                        stdout="", stderr=f"harness: exec failed: {e}", named=True,
                        named_by=["exec"], suspicious=None)
        delay = 0.002
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > c.timeout:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, status, ru = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.monotonic() - t0
    rc = p.returncode
    stdout = read_tail(so_p, 1 << 20)
    stderr = read_head_tail(se_p, 8 << 10, 56 << 10)
    rss = ru.ru_maxrss
    sig = -rc if rc < 0 else None
    if timed_out:
        outcome = "timeout"
    elif sig is not None or re.search(r"memory allocation of \d+ bytes failed|"
                                      r"has overflowed its stack|Aborted|SIGSEGV", stderr):
        outcome = "abort"
    elif "panicked" in stderr or rc == 101:
        outcome = "panic"
    elif rss > GB2_KB:
        outcome = "over-2GB"
    elif rc == 0:
        outcome = "ok"
    elif stderr.strip():
        outcome = "clean-error"
    else:
        outcome = "silent-error"
    named_by = []
    if outcome == "clean-error":
        low = stderr
        for k in c.keys:
            if k and isinstance(k, str) and k in low:
                named_by.append(k)
                break
        if re.search(r"\bline\b", low):
            named_by.append("line")
        if c.fam == "cli" and re.search(r"'--[a-z0-9-]+|--[a-z0-9-]+", low) and not named_by:
            pass  # another flag named: not the mutated one
    suspicious = None
    if outcome == "ok":
        if NAN_RE.search(stdout) or JSON_NULL_RE.search(stdout):
            m = NAN_RE.search(stdout) or JSON_NULL_RE.search(stdout)
            line = stdout[max(0, stdout.rfind("\n", 0, m.start()) + 1):stdout.find("\n", m.end())]
            suspicious = f"output contains {m.group(0)!r}: {line.strip()[:160]}"
        elif c.absurd:
            suspicious = c.absurd
    return dict(outcome=outcome, rc=rc, sig=sig, rss_kb=rss, seconds=round(secs, 3),
                stdout=stdout, stderr=stderr, named=bool(named_by), named_by=named_by,
                suspicious=suspicious)


def read_tail(path, limit):
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read().decode("utf-8", "replace")


def read_head_tail(path, head, tail):
    with open(path, "rb") as f:
        data = f.read(head)
        f.seek(0, 2)
        size = f.tell()
        if size > head:
            f.seek(max(head, size - tail))
            data += (b"\n[...]\n" if size > head + tail else b"") + f.read()
    return data.decode("utf-8", "replace")


def cmd_string(c, binary):
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in c.env.items())
    return f"cd {shlex.quote(c.dir)} && " + (env + " " if env else "") + \
        " ".join(q(a) for a in [binary] + c.argv)


def signature(c, r):
    """Root-cause key for grouping non-clean outcomes."""
    o, err = r["outcome"], r["stderr"]

    def norm(s):
        s = re.sub(r"/[^\s:'\"]+", "<path>", s)
        s = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", s)
        return s.strip()[:160]

    if o == "panic":
        m = re.search(r"panicked at ([^\n]+?):\d+:\d+:\n([^\n]*)", err)
        if m:
            return f"panic {m.group(1)}: {norm(m.group(2))}"
        return "panic " + norm(err.strip().splitlines()[-1] if err.strip() else "")
    if o == "abort":
        m = re.search(r"memory allocation of \d+ bytes failed", err)
        what = "alloc-failure" if m else ("stack-overflow" if "overflowed its stack" in err
                                          else f"signal {r['sig']}")
        return f"abort {what} [{c.fam}:{c.kind.split('/')[0]} {c.argv[0]}]"
    if o in ("timeout", "over-2GB"):
        return f"{o} [{c.fam}:{c.kind.split('/')[0]}] {c.desc.split(' = ')[0][:70]}" + \
            (" (long work requested)" if c.long_ok and o == "timeout" else "")
    if o == "silent-error":
        return f"silent-error [{c.fam}:{c.kind}]"
    if o == "clean-error":
        first = next((l for l in err.splitlines() if l.strip()), "")
        return "unnamed " + norm(first)
    return f"suspicious [{c.fam}:{c.kind.split('/')[0]}] " + norm(r["suspicious"] or "")[:80]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=6000, help="total cases (default 6000)")
    ap.add_argument("--quick", action="store_true", help="~300-case subset")
    ap.add_argument("--binary", default="/tmp/accord-adv")
    ap.add_argument("--report", default="/tmp/adversarial-report.json")
    ap.add_argument("--workdir", default="/tmp/adversarial-work")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--long-timeout", type=float, default=8.0,
                    help="timeout of cases that ask for legitimately long work (huge --epochs …)")
    ap.add_argument("--mem-cap-gb", type=float, default=4.0,
                    help="address-space cap per case (prlimit --as)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--keep-all", action="store_true", help="keep the dirs of clean cases too")
    ap.add_argument("--dry-run", action="store_true", help="only count the generated cases")
    args = ap.parse_args()
    if args.quick:
        args.cases = 300
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary}: not executable (cp target/release/accord {binary})")
    fams = [f for f in args.families.split(",") if f]
    work = os.path.abspath(args.workdir)
    cache_dir = work + "-cache"
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    t_gen = time.monotonic()
    cache = build_cache(cache_dir, "idx" in fams, "csv" in fams)

    total_share = sum(SHARES[f] for f in fams)
    cases = []
    for f in fams:
        quota = round(args.cases * SHARES[f] / total_share)
        rng = random.Random(f"{args.seed}-{f}")
        if f == "chip":
            fc = gen_chip(rng, quota)
        elif f == "csv":
            fc = gen_csv(rng, quota, cache)
        elif f == "idx":
            fc = gen_idx(rng, quota, cache)
        else:
            fc = gen_cli(rng, quota, binary)
        cases += fc[:quota] if f != "cli" else fc
    for i, c in enumerate(cases):
        c.cid = f"{c.fam}-{i:05d}"
        c.dir = os.path.join(work, c.cid)
        # generators write paths against the placeholder D: point them at the case dir
        c.argv = [a.replace(D, c.dir) if isinstance(a, str) else a for a in c.argv]
        c.env = {k: v.replace(D, c.dir) for k, v in c.env.items()}
        c.keys = [k.replace(D, c.dir) for k in c.keys if isinstance(k, str)]
        c.timeout = min(args.timeout, args.long_timeout) if c.long_ok else args.timeout
    if args.dry_run:
        kinds = {}
        for c in cases:
            k = (c.fam, c.kind.split("/")[0])
            kinds[k] = kinds.get(k, 0) + 1
        for (f, k), n in sorted(kinds.items()):
            print(f"{f:5} {k:28} {n}")
        print(len(cases), "cases")
        return
    print(f"{len(cases)} cases generated in {time.monotonic() - t_gen:.1f} s "
          f"(seed {args.seed}); running {args.jobs} at a time", flush=True)

    base_env = {k: v for k, v in os.environ.items()
                if k not in ("ACCORD_DATA", "ACCORD_HW_MODELS", "RUST_BACKTRACE")}
    as_bytes = int(args.mem_cap_gb * (1 << 30))
    fsize = 512 << 20
    results = [None] * len(cases)
    lock = threading.Lock()
    done = {"n": 0}
    t0 = time.monotonic()

    def job(i):
        c = cases[i]
        r = run_case(c, binary, as_bytes, fsize, base_env)
        clean = (r["outcome"] == "ok" and not r["suspicious"]) or \
            (r["outcome"] == "clean-error" and r["named"])
        if clean and not args.keep_all:
            shutil.rmtree(c.dir, ignore_errors=True)
        results[i] = r
        with lock:
            done["n"] += 1
            if done["n"] % 250 == 0:
                print(f"  {done['n']}/{len(cases)} done, {time.monotonic() - t0:.0f} s",
                      flush=True)

    with ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(job, range(len(cases))))
    elapsed = time.monotonic() - t0

    # summary
    table = {f: {o: 0 for o in OUTCOMES + ["unnamed", "suspicious"]} for f in fams}
    report, groups = [], {}
    for c, r in zip(cases, results):
        t = table[c.fam]
        t[r["outcome"]] += 1
        bad = r["outcome"] not in ("ok", "clean-error")
        if r["outcome"] == "clean-error" and not r["named"]:
            t["unnamed"] += 1
            bad = True
        if r["suspicious"]:
            t["suspicious"] += 1
            bad = True
        if not bad:
            continue
        sig = signature(c, r)
        entry = dict(id=c.cid, family=c.fam, kind=c.kind, input=c.desc,
                     command=cmd_string(c, binary), outcome=r["outcome"], rc=r["rc"],
                     signal=r["sig"], max_rss_mb=round(r["rss_kb"] / 1024, 1),
                     seconds=r["seconds"], long_work_requested=c.long_ok,
                     suspicious=r["suspicious"], root_cause=sig,
                     stderr_tail=r["stderr"][-1500:])
        report.append(entry)
        g = groups.setdefault(sig, {"count": 0, "example": None})
        g["count"] += 1
        if g["example"] is None or len(entry["command"]) < len(g["example"]["command"]):
            g["example"] = entry
    cols = OUTCOMES + ["unnamed", "suspicious"]
    print(f"\n{len(cases)} cases in {elapsed:.0f} s (unnamed ⊂ clean-error; suspicious ⊂ ok)")
    print(f"{'family':8}" + "".join(f"{o:>13}" for o in ["cases"] + cols))
    tot = {o: 0 for o in cols}
    for f in fams:
        n = sum(table[f][o] for o in OUTCOMES)
        print(f"{f:8}{n:>13}" + "".join(f"{table[f][o]:>13}" for o in cols))
        for o in cols:
            tot[o] += table[f][o]
    print(f"{'total':8}{len(cases):>13}" + "".join(f"{tot[o]:>13}" for o in cols))
    print(f"\n{len(groups)} distinct root causes (count, then the shortest example):")
    for sig, g in sorted(groups.items(), key=lambda kv: (kv[0].split()[0], -kv[1]["count"])):
        e = g["example"]
        tail = next((l for l in reversed(e["stderr_tail"].splitlines()) if l.strip()), "")
        print(f"[{g['count']:4}] {sig}\n       {e['command'][:400]}\n       stderr: {tail[:240]}")
    with open(args.report, "w") as f:
        json.dump(dict(seed=args.seed, cases=len(cases), seconds=round(elapsed),
                       binary=binary, summary=table,
                       root_causes={k: dict(count=v["count"], example=v["example"]["id"])
                                    for k, v in groups.items()},
                       failures=report), f, indent=1)
    print(f"\nreport: {args.report} ({len(report)} non-clean cases); inputs kept under {work}")


if __name__ == "__main__":
    main()
