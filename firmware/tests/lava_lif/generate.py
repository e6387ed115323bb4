#!/usr/bin/env python3
"""Golden vectors for `accord_firmware::soma::cuba_lif_step`, produced by Lava's own code.

This script runs the current-based LIF neuron of Lava 0.10 (`PyLifModelBitAcc`, the model that is
bit-accurate to Loihi) and writes what it computes, step by step, to `vectors.txt` next to this
file. The Rust integration test `firmware/tests/lava_lif.rs` replays every case through
`cuba_lif_step` and requires identical `u`, `v` and spike at every step.

Nothing of Lava is copied here. The wheel is a zip of Python sources; this script reads from it,
at run time, `lava/proc/lif/models.py` (the model) and the few framework modules the model's
ports and types need (`lava/magma/core/model/py/ports.py`, `.../py/type.py`,
`.../model/interfaces.py`, `lava/magma/core/resources.py`,
`lava/magma/compiler/channels/interfaces.py`, `lava/magma/runtime/mgmt_token_enums.py`), and
executes them. The rest of the framework (process classes, decorators, the runtime's
`PyLoihiProcessModel`, CSP channels) is replaced by small stubs: the wheel does not import on
Python 3.11 (it pins Python 3.10 and old dependencies), and none of those pieces takes part in the
arithmetic. Each step then does what Lava's runtime does in the spiking phase: it calls the
model's own `run_spk()`, which receives `a_in` through Lava's real `PyInPortVectorDense.recv()`,
scales bias and threshold, runs `subthr_dynamics`, `spiking_activation` and `reset_voltage`, and
sends the spikes through Lava's real `PyOutPortVectorDense.send()`.

How the model is wired, as Lava's compiler and builder would do it:

* Vars are built as in `lava/magma/compiler/builders/py_builder.py` (`build`, "Initialize
  Vars"): a Var declared `LavaPyType(np.ndarray, d)` becomes `np.ndarray(shape, d)` filled with
  the initial value (`u`, `v`: int32; `bias_mant`, `bias_exp`: int16); one declared
  `LavaPyType(int, ...)` keeps the Python value given to the process (`du`, `dv`, `vth`).
* The input port is `PyInPortVectorDense` with the model's declared d_type (int16). Its channel
  carries the d_type of the *sending* port (`channel_builder.py`: `src_port_initializer.d_type`);
  the vectors use int32, the d_type of `PyDenseModelBitAcc.a_out`
  (`lava/proc/dense/models.py`), the bit-accurate synapse that feeds a bit-accurate LIF. So
  `recv()` returns `zeros(int16) + int32 data`, an int32 array, and `a_in << 6` is computed
  in int32 (an int16 sender would make Lava wrap `a_in << 6` at 16 bits).

Re-running (needs numpy; Lava itself need not be installed):

    pip download lava-nc==0.10.0 --no-deps --ignore-requires-python -d /tmp/lava
    python3 firmware/tests/lava_lif/generate.py /tmp/lava/lava_nc-0.10.0-py3-none-any.whl

(`--ignore-requires-python` because the wheel declares Python <3.11; only its sources are
read.) The wheel may also be given as the directory that holds it, as an unpacked wheel
directory, or with the environment variable `LAVA_WHEEL`. The output is deterministic (fixed
seed) and independent of the numpy version (checked with numpy 1.26 and 2.x): rerunning the
script on the wheel reproduces `vectors.txt` byte for byte (from an unpacked directory only the
`# Source:` header line differs).

Output format (`vectors.txt`, plain text, `#` starts a comment line):

    case <name> <du> <dv> <vth> <bias_mant> <bias_exp> <u0> <v0>
    <a_in> <u> <v> <spike>        one line per step: the input, then the state after the step
    ...

A case runs from the initial state `u0`, `v0` (Lava's default is 0, 0; a few cases start
elsewhere, as `LIF(u=..., v=...)` allows) with the parameters on its `case` line.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import os
import random
import sys
import types
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "vectors.txt"
SEED = 20240917

# Modules executed from the wheel (real Lava code).
REAL = [
    "lava.magma.compiler.channels.interfaces",
    "lava.magma.runtime.mgmt_token_enums",
    "lava.magma.core.model.interfaces",
    "lava.magma.core.resources",
    "lava.magma.core.model.py.ports",
    "lava.magma.core.model.py.type",
    "lava.proc.lif.models",
]


# --------------------------------------------------------------------------------------------
# Loading Lava's sources from the wheel
# --------------------------------------------------------------------------------------------


class WheelSource:
    """Reads `lava/...` source files from a wheel (zip) or an unpacked wheel directory."""

    def __init__(self, path: Path):
        if path.is_dir() and (path / "lava").is_dir():
            self.zip = None
            self.root = path
            self.label = str(path)
            self.sha256 = "(unpacked directory)"
            return
        if path.is_dir():
            wheels = sorted(path.glob("lava_nc-*.whl"))
            if not wheels:
                sys.exit(f"no lava_nc-*.whl in {path}")
            path = wheels[-1]
        self.zip = zipfile.ZipFile(path)
        self.root = None
        self.label = path.name
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def read(self, rel: str) -> str:
        if self.zip is not None:
            return self.zip.read(rel).decode("utf-8")
        return (self.root / rel).read_text(encoding="utf-8")

    def version(self) -> str:
        names = self.zip.namelist() if self.zip is not None else [
            str(p.relative_to(self.root)) for p in self.root.glob("*.dist-info/METADATA")
        ]
        for n in names:
            if n.endswith(".dist-info/METADATA"):
                for line in self.read(n).splitlines():
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
        return "unknown"


def _stub(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def _identity_decorator(*_args, **_kwargs):
    return lambda cls: cls


class _PyLoihiProcessModelStub:
    """Stands in for `lava.magma.core.model.py.model.PyLoihiProcessModel`: the runtime part
    (phases, management channels) is not used; `AbstractPyLifModelFixed.run_spk` does not call
    its base class."""

    def __init__(self, proc_params=None, loglevel=None):
        self.proc_params = proc_params if proc_params is not None else {}
        self.var_id_to_var_map = {}


def _stubs() -> dict[str, types.ModuleType]:
    empty = lambda n: type(n, (), {})  # noqa: E731
    return {
        "lava.magma.compiler.channels.pypychannel": _stub(
            "lava.magma.compiler.channels.pypychannel",
            CspSendPort=empty("CspSendPort"),
            CspRecvPort=empty("CspRecvPort"),
        ),
        "lava.magma.core.model.model": _stub(
            "lava.magma.core.model.model", AbstractProcessModel=empty("AbstractProcessModel")
        ),
        "lava.magma.core.model.py.model": _stub(
            "lava.magma.core.model.py.model", PyLoihiProcessModel=_PyLoihiProcessModelStub
        ),
        "lava.magma.core.model.py.neuron": _stub(
            "lava.magma.core.model.py.neuron",
            LearningNeuronModelFloat=empty("LearningNeuronModelFloat"),
            LearningNeuronModelFixed=empty("LearningNeuronModelFixed"),
        ),
        "lava.magma.core.sync.protocols.loihi_protocol": _stub(
            "lava.magma.core.sync.protocols.loihi_protocol", LoihiProtocol=empty("LoihiProtocol")
        ),
        "lava.magma.core.decorator": _stub(
            "lava.magma.core.decorator",
            implements=_identity_decorator,
            requires=_identity_decorator,
            tag=_identity_decorator,
        ),
        "lava.proc.lif.process": _stub(
            "lava.proc.lif.process",
            **{n: empty(n) for n in ["LIF", "LIFReset", "TernaryLIF", "LearningLIF", "LIFRefractory"]},
        ),
    }


class _WheelFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `lava.*` imports: real modules from the wheel, stubs, or empty packages."""

    def __init__(self, src: WheelSource):
        self.src = src
        self.stubs = _stubs()

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "lava" or fullname.startswith("lava."):
            is_pkg = fullname not in REAL and fullname not in self.stubs
            return importlib.util.spec_from_loader(fullname, self, is_package=is_pkg)
        return None

    def create_module(self, spec):
        return self.stubs.get(spec.name)

    def exec_module(self, module):
        name = module.__name__
        if name in REAL:
            rel = name.replace(".", "/") + ".py"
            code = compile(self.src.read(rel), f"{self.src.label}!{rel}", "exec")
            exec(code, module.__dict__)
        elif name not in self.stubs:
            module.__path__ = []  # an empty namespace package


def load_lava(src: WheelSource):
    for k in [k for k in sys.modules if k == "lava" or k.startswith("lava.")]:
        del sys.modules[k]
    sys.meta_path.insert(0, _WheelFinder(src))
    import lava.magma.core.model.py.ports as ports  # noqa: E402
    import lava.proc.lif.models as models  # noqa: E402

    return models, ports


# --------------------------------------------------------------------------------------------
# Driving the model as Lava's builder and runtime do
# --------------------------------------------------------------------------------------------

SRC_DTYPE = np.int32  # d_type of PyDenseModelBitAcc.a_out, the channel's d_type


class _FeedPort:
    """A CSP receive port: what the channel from the sending OutPort delivers each step."""

    def __init__(self):
        self.data = None

    def recv(self):
        return self.data


class _SinkPort:
    def __init__(self):
        self.data = None

    def send(self, data):
        self.data = np.array(data, copy=True)


class Neuron:
    """One `PyLifModelBitAcc` instance of shape (1,), built like Lava's PyProcessBuilder."""

    def __init__(self, models, ports, du, dv, vth, bias_mant, bias_exp, u0=0, v0=0):
        cls = models.PyLifModelBitAcc
        pm = cls({})
        shape = (1,)
        self.feed, self.sink = _FeedPort(), _SinkPort()
        lt = cls.a_in
        pm.a_in = lt.cls([self.feed], pm, shape, lt.d_type, ports.IdentityTransformer())
        lt = cls.s_out
        pm.s_out = lt.cls([self.sink], pm, shape, lt.d_type)
        values = dict(u=u0, v=v0, du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)
        for name, value in values.items():
            lt = getattr(cls, name)
            # py_builder.py, PyProcessBuilder.build, "Initialize Vars".
            if issubclass(lt.cls, np.ndarray):
                var = lt.cls(shape, lt.d_type)
                var[:] = value
            elif issubclass(lt.cls, (int, float, str)):
                var = value
            else:
                raise NotImplementedError(name)
            setattr(pm, name, var)
        self.pm = pm

    def step(self, a_in: int):
        self.feed.data = np.array([a_in], dtype=SRC_DTYPE)
        self.pm.run_spk()
        spike = self.sink.data
        assert spike.shape == (1,) and spike.dtype == np.bool_, spike
        return int(self.pm.u[0]), int(self.pm.v[0]), int(bool(spike[0]))


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

U_MAX = 2**23  # u stays in (-2^23, 2^23] after Lava's wrap
V_MAX = 2**23 - 1  # v is clipped to [-(2^23 - 1), 2^23 - 1]
I16 = (-(2**15), 2**15 - 1)


class Case:
    def __init__(self, name, du, dv, vth, bias_mant, bias_exp, inputs, u0=0, v0=0):
        self.name = name
        self.params = (du, dv, vth, bias_mant, bias_exp)
        self.u0, self.v0 = u0, v0
        self.inputs = [int(a) for a in inputs]


def run_case(models, ports, case: Case):
    n = Neuron(models, ports, *case.params, u0=case.u0, v0=case.v0)
    rows = []
    for a in case.inputs:
        u, v, s = n.step(a)
        # The domain in which the vectors are meaningful: Lava's single ±2^24 correction
        # brought u back into 24 bits and its int32 arithmetic did not overflow.
        assert -U_MAX < u <= U_MAX, (case.name, a, u)
        assert -V_MAX <= v <= V_MAX, (case.name, a, v)
        rows.append((a, u, v, s))
    return rows


def state_after(models, ports, params, u0, v0, a):
    return Neuron(models, ports, *params, u0=u0, v0=v0).step(a)


def edge_cases(models, ports):
    cs = []
    # Threshold: v exactly at vth << 6 does not spike, one LSB above does (strict `>`).
    # du = 4095: u = a_in << 6 each step (current decays fully); dv = 0: v never decays.
    cs.append(Case("threshold_equal", 4095, 0, 10, 0, 0,
                   [10, 0, 0, 1, 0, 5, 5, 0, 9, 1, 1, 0, -3, 13, 0]))
    cs.append(Case("threshold_equal_by_bias", 4095, 0, 5, 5, 6, [0, 0, 0, 1, 0, -5, 0, 0]))
    cs.append(Case("threshold_max_vth", 4095, 0, 131071, 0, 0,
                   [32767, 32767, 32767, 32767, 3, 0, 1, 0, -32768, -32768]))
    # vth = 0: any positive v spikes, v = 0 does not.
    cs.append(Case("vth_zero", 4095, 0, 0, 0, 0, [0, 1, -1, 1, 1, 0, -7, 7, 7, 0]))
    cs.append(Case("vth_zero_bias_pos", 0, 0, 0, 1, 0, [0, 0, 0, -1, 0, 0, 0]))
    cs.append(Case("vth_zero_bias_floor_neg_exp", 4095, 0, 0, 1, -1, [0, 0, 1, 0, 0]))
    # Bias: negative exponents shift right (floor), large ones left.
    cs.append(Case("bias_neg_mant_neg_exp", 4095, 0, 100, -1, -1, [0] * 6))
    cs.append(Case("bias_neg_exp_13", 2048, 1024, 50, -4096, -13, [0, 0, 0, 5, 0, 0]))
    cs.append(Case("bias_neg_exp_20", 2048, 1024, 50, -4095, -20, [0, 0, 0]))
    cs.append(Case("bias_pos_mant_neg_exp_13", 2048, 1024, 50, 4095, -13, [0, 0, 0]))
    cs.append(Case("bias_odd_neg_exp", 4095, 0, 1000, -4095, -3, [0] * 12))
    cs.append(Case("bias_max_exp7", 4095, 10, 131071, 4095, 7, [0] * 20))
    cs.append(Case("bias_min_exp7", 4095, 10, 131071, -4096, 7, [0] * 20))
    cs.append(Case("bias_exp12", 4095, 0, 131071, 4095, 12, [0, 0, -32768, 0]))
    # Decay extremes. du = 0 still decays u by 1/4096 (ds_offset = 1); du = 4095 resets it.
    # dv = 0 keeps v; dv = 4095 keeps 1/4096 of it.
    cs.append(Case("du0_dv0", 0, 0, 131071, 0, 0, [4096] + [0] * 14 + [-4096] + [0] * 6))
    cs.append(Case("du0_dv0_small", 0, 0, 20, 0, 0, [1] + [0] * 10 + [-1] + [0] * 5))
    cs.append(Case("du4095_dv4095", 4095, 4095, 100, 0, 0, [3000, 0, -3000, 0, 32767, 0]))
    cs.append(Case("du0_dv4095", 0, 4095, 200, 0, 0, [200] + [0] * 6 + [-200, 0, 0]))
    cs.append(Case("du4095_dv0", 4095, 0, 300, 0, 0, [100, 100, -50, 250, 0, -1000, 0]))
    cs.append(Case("decay_sign_toward_zero", 2047, 2047, 131071, 0, 0,
                   [-1, -1, 0, 0, 0, 1, 0, 0, -3, 0, 0, 0]))
    # Saturation of v at +(2^23 - 1) (vth = 2^17 would put the threshold at 2^23, above any v,
    # so no spike resets it; vth = 131071 spikes on the clipped value) and at -(2^23 - 1).
    cs.append(Case("v_clip_pos_no_spike", 4095, 0, 131072, 0, 0, [32767] * 6 + [-32768, 0]))
    cs.append(Case("v_clip_pos_spike", 4095, 0, 131071, 0, 0, [32767] * 6))
    cs.append(Case("v_clip_neg", 4095, 0, 131071, 0, 0, [-32768] * 6 + [32767, 0]))
    cs.append(Case("v_clip_neg_bias", 0, 0, 1000, -4096, 7, [-32768] * 8))
    cs.append(Case("v_clip_by_bias", 4095, 0, 131072, 4095, 7, [0] * 20))
    # u wraps at ±2^23: accumulate a large constant input with a slow current decay.
    cs.append(Case("u_wrap_pos", 0, 4095, 131071, 0, 0, [32767] * 8))
    cs.append(Case("u_wrap_neg", 0, 4095, 131071, 0, 0, [-32768] * 8))
    cs.append(Case("u_wrap_dv0", 0, 0, 131071, 0, 0, [32767] * 6 + [-32768] * 10))
    # Exact boundaries: u = 2^23 stays, u = -2^23 becomes +2^23, 2^23 + 64 wraps to
    # -2^23 + 64. From u0 = 2^23 with du = 0: decayed 2^23 - 2^11, + (32 << 6) = 2^23.
    cs.append(Case("u_boundary_pos_exact", 0, 4095, 131071, 0, 0, [32, 32, 33, 0], u0=U_MAX))
    cs.append(Case("u_boundary_pos_over", 0, 4095, 131072, 0, 0, [33, 0, 0], u0=U_MAX))
    cs.append(Case("u_boundary_from_min", 0, 4095, 131071, 0, 0, [-32768, -32768, 0],
                   u0=-U_MAX + 1, v0=-V_MAX))
    cs.append(Case("v_boundary_initial", 2000, 0, 131071, 0, 0, [0, 1, -1, 0],
                   u0=0, v0=V_MAX))
    # Input beyond the port's 16-bit precision (Lava's int32 path still computes it; the
    # single ±2^24 correction suffices for |a_in| <= 2^18).
    cs.append(Case("u_exact_2p23_wide", 4095, 4095, 131072, 0, 0,
                   [2**17, -(2**17), 2**17 + 1, -(2**17) - 1, 2**18, -(2**18), 2**18 - 1,
                    -(2**18) + 1, 0]))
    # u lands exactly on -2^23 with a 16-bit input: search initial currents near the bottom
    # (using Lava's own step to get the decayed current) for one where it can.
    params = (0, 4095, 131071, 0, 0)
    for u0 in range(-U_MAX + 1, -U_MAX + 1 + 64 * 4096):
        decayed = state_after(models, ports, params, u0, 0, 0)[0]
        if (-U_MAX - decayed) % 64 == 0 and I16[0] <= (-U_MAX - decayed) // 64 <= I16[1]:
            a = (-U_MAX - decayed) // 64
            cs.append(Case("u_exactly_minus_2p23", *params, [a, 0, 0], u0=u0))
            break
    else:
        raise AssertionError("no initial current reaches -2^23 exactly")
    return cs


def random_inputs(rng: random.Random, mode: str, n: int):
    if mode == "small":
        return [rng.randint(-64, 64) for _ in range(n)]
    if mode == "positive":
        return [rng.randint(0, 512) for _ in range(n)]
    if mode == "medium":
        return [rng.randint(-(2**12), 2**12) for _ in range(n)]
    if mode == "int16":
        return [rng.randint(*I16) for _ in range(n)]
    if mode == "int16_extremes":
        return [rng.choice([I16[0], I16[1], 0, rng.randint(*I16)]) for _ in range(n)]
    if mode == "wide":  # beyond the 16-bit port precision, within Lava's consistent range
        return [rng.randint(-(2**18), 2**18) for _ in range(n)]
    if mode == "sparse":
        return [rng.randint(*I16) if rng.random() < 0.15 else 0 for _ in range(n)]
    if mode == "constant":
        a = rng.randint(-(2**10), 2**11)
        return [a] * n
    raise ValueError(mode)


MODES = ["small", "positive", "medium", "int16", "int16_extremes", "wide", "sparse", "constant"]


def random_cases(rng: random.Random, count: int):
    cs = []
    for i in range(count):
        def decay():
            r = rng.random()
            if r < 0.1:
                return 0
            if r < 0.2:
                return 4095
            if r < 0.45:
                return rng.randint(0, 256)
            return rng.randint(0, 4095)

        du, dv = decay(), decay()
        vth = 0 if rng.random() < 0.05 else min(2**17 - 1, int(2 ** rng.uniform(0, 17.0)))
        if rng.random() < 0.3:
            bias_mant, bias_exp = 0, 0
        else:
            bias_mant, bias_exp = rng.randint(-4096, 4095), rng.randint(-8, 7)
        mode = MODES[i % len(MODES)]
        n = rng.randint(12, 48)
        u0 = v0 = 0
        if rng.random() < 0.15:
            u0 = rng.randint(-U_MAX + 1, U_MAX)
            v0 = rng.randint(-V_MAX, V_MAX)
        cs.append(Case(f"random_{i:03}_{mode}", du, dv, vth, bias_mant, bias_exp,
                       random_inputs(rng, mode, n), u0=u0, v0=v0))
    return cs


def main(argv):
    arg = argv[1] if len(argv) > 1 else os.environ.get("LAVA_WHEEL")
    if not arg:
        sys.exit("usage: generate.py <lava_nc-0.10.0 wheel, its directory, or an unpacked wheel>\n"
                 "  (or set LAVA_WHEEL). Get the wheel with:\n"
                 "  pip download lava-nc==0.10.0 --no-deps --ignore-requires-python -d /tmp/lava")
    src = WheelSource(Path(arg))
    version = src.version()
    if version != "0.10.0":
        print(f"warning: the vectors are specified against lava-nc 0.10.0, got {version}",
              file=sys.stderr)
    models, ports = load_lava(src)
    rng = random.Random(SEED)
    cases = edge_cases(models, ports) + random_cases(rng, 120)

    lines = [
        "# Golden vectors: Lava's PyLifModelBitAcc (lava/proc/lif/models.py), run step by step.",
        "# Generated by firmware/tests/lava_lif/generate.py (see its docstring to re-run).",
        f"# Source: {src.label} (lava-nc {version}, sha256 {src.sha256})",
        "# Input channel d_type: int32 (PyDenseModelBitAcc.a_out).",
        "# case <name> <du> <dv> <vth> <bias_mant> <bias_exp> <u0> <v0>",
        "# <a_in> <u> <v> <spike>   (state after the step)",
    ]
    steps = spikes = clips = 0
    for c in cases:
        rows = run_case(models, ports, c)
        lines.append("case " + " ".join(str(x) for x in (c.name, *c.params, c.u0, c.v0)))
        for a, u, v, s in rows:
            lines.append(f"{a} {u} {v} {s}")
        steps += len(rows)
        spikes += sum(r[3] for r in rows)
        clips += sum(abs(r[2]) == V_MAX for r in rows)
    text = "\n".join(lines) + "\n"
    OUT.write_text(text)
    print(f"{OUT}: {len(cases)} cases, {steps} steps, {spikes} spikes, "
          f"{clips} steps ending at |v| = 2^23 - 1, {len(text)} bytes (numpy {np.__version__})")


if __name__ == "__main__":
    main(sys.argv)
