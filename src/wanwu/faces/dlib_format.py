"""Read dlib's face descriptor network (``dlib_face_recognition_resnet_model_v1.dat``) without dlib.

dlib serializes a network (``dlib/dnn/core.h``) from the loss layer inwards: each wrapper writes
its version, then the network under it, then (for a computing layer) its own details and
training state. So the headers come outside-in and the layers' details inside-out, which is the
order they compute in. ``read_network`` walks that recursion for the exact layer list of the
python binding's ``anet_type`` (``tools/python/src/face_recognition.cpp``) and returns the layers
in computing order; a file that does not parse that way is refused with ``DlibFormatError``.

The primitives (``dlib/serialize.h``, ``dlib/float_details.h``, ``dlib/cuda/tensor.h``):
- integers: a control byte (low 4 bits: how many bytes follow; 0x80: negative), then the
  magnitude's bytes, least significant first;
- float scalars: two such integers, mantissa and exponent (value = mantissa * 2**exponent);
- bool: the character '1' or '0'; string: its length (an integer), then its bytes;
- tensor: version 2, num_samples, k, nr, nc, then the values as little-endian float32;
  an alias tensor (a view's shape): version 1 and the four sizes, no values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    """The file is not the dlib network we expect (truncated, another network, another format)."""


# -- the primitives --------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibFormatError(f"the file ends inside {what} (at byte {self.pos} of {len(self.data)})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self, what: str = "an integer") -> int:
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} for {what} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def real(self, what: str = "a float") -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:  # dlib's pre-2016 ASCII floats
            raise DlibFormatError(f"{what} is in dlib's old text format, which this reader does not read")
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent >= 32000:  # is_inf, is_ninf, is_nan
            raise DlibFormatError(f"{what} is not finite")
        return float(np.ldexp(float(mantissa), exponent))

    def boolean(self, what: str = "a bool") -> bool:
        ch = self._take(1, what)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {ch!r} for {what} at byte {self.pos - 1}")
        return ch == b"1"

    def string(self, what: str = "a name") -> str:
        n = self.integer(what)
        if n > 256:
            raise DlibFormatError(f"a {n}-byte string for {what}: not a dlib network")
        return self._take(n, what).decode("latin-1")

    def version(self, expected: set[int], what: str) -> int:
        v = self.integer(f"{what}'s version")
        if v not in expected:
            raise DlibFormatError(f"{what} has version {v}, expected one of {sorted(expected)}")
        return v

    def name(self, expected: tuple[str, ...], what: str) -> str:
        v = self.string(f"{what}'s name")
        if v not in expected:
            raise DlibFormatError(f"expected {what} ({' or '.join(expected)}), found {v!r} at byte {self.pos}")
        return v

    def tensor(self, what: str) -> np.ndarray:
        self.version({2}, f"{what} tensor")
        shape = tuple(self.integer(f"{what}'s size") for _ in range(4))
        if min(shape) < 0:
            raise DlibFormatError(f"{what} has a negative size {shape}")
        count = int(np.prod(shape))
        values = np.frombuffer(self._take(4 * count, what), dtype="<f4")
        return values.reshape(shape).astype(np.float32)

    def alias(self, what: str) -> tuple[int, ...]:
        self.version({1}, f"{what} alias tensor")
        return tuple(self.integer(f"{what}'s size") for _ in range(4))


# -- the layers ------------------------------------------------------------------------------


@dataclass
class Layer:
    """One step of the forward pass. ``kind``: input, con, affine, relu, max_pool, avg_pool,
    fc, tag, skip, add_prev, loss; ``tag`` the id of tag/skip/add_prev layers."""

    kind: str
    tag: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    ints: dict[str, int] = field(default_factory=dict)


def _con(r: _Reader, n: int, size: int, stride: int) -> Layer:
    version = r.name(("con_4", "con_5", "con_6"), f"con<{n},{size},{size},{stride},{stride}>")
    params = r.tensor("con params")
    num_filters = r.integer()
    got = [r.integer() for _ in range(6)]  # nr, nc, stride_y, stride_x, padding_y, padding_x
    pad = 0 if stride != 1 else size // 2  # dlib's default padding for con_
    if num_filters != n or got != [size, size, stride, stride, pad, pad]:
        raise DlibFormatError(
            f"con layer {num_filters} filters {got}, expected {n} filters {[size] * 2 + [stride] * 2 + [pad] * 2}"
        )
    filters = r.alias("con filters")
    biases = r.alias("con biases")
    for what in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        r.real(f"con {what} multiplier")
    use_bias = r.boolean("con use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.boolean("con use_relu")
    if filters[0] != n or filters[2:] != (size, size):
        raise DlibFormatError(f"con filters {filters}, expected ({n}, k, {size}, {size})")
    weight_count = int(np.prod(filters))
    bias_count = n if use_bias else 0
    if params.size != weight_count + bias_count or (use_bias and int(np.prod(biases)) != n):
        raise DlibFormatError(f"con params hold {params.size} values, expected {weight_count} + {bias_count}")
    flat = params.reshape(-1)
    layer = Layer("con", arrays={"weight": flat[:weight_count].reshape(filters)}, ints={"stride": stride, "pad": pad})
    layer.arrays["bias"] = flat[weight_count:] if use_bias else np.zeros(n, np.float32)
    return layer


def _affine(r: _Reader, n: int) -> Layer:
    version = r.name(("affine_", "affine_2"), "affine")
    params = r.tensor("affine params")
    gamma, beta = r.alias("affine gamma"), r.alias("affine beta")
    mode = r.integer("affine mode")
    disabled = r.boolean("affine disabled") if version == "affine_2" else False
    if gamma != (1, n, 1, 1) or beta != gamma or mode != 0 or params.size != 2 * n:  # mode 0: CONV_MODE
        raise DlibFormatError(
            f"affine gamma {gamma} beta {beta} mode {mode} with {params.size} values, expected {n} channels"
        )
    flat = params.reshape(-1)
    if disabled:
        return Layer("affine", arrays={"gamma": np.ones(n, np.float32), "beta": np.zeros(n, np.float32)})
    return Layer("affine", arrays={"gamma": flat[:n], "beta": flat[n:]})


def _relu(r: _Reader) -> Layer:
    version = r.name(("relu_", "relu_2"), "relu")
    if version == "relu_2" and r.boolean("relu disabled"):
        raise DlibFormatError("a disabled relu: not the network we expect")
    return Layer("relu")


def _pool(r: _Reader, kind: str, size: int, stride: int) -> Layer:
    r.name((f"{kind}2",), f"{kind}<{size},{size},{stride},{stride}>")
    got = [r.integer() for _ in range(6)]
    pad = 0 if stride != 1 else size // 2
    if got != [size, size, stride, stride, pad, pad]:
        raise DlibFormatError(f"{kind} {got}, expected {[size] * 2 + [stride] * 2 + [pad] * 2}")
    return Layer(kind.rstrip("_"), ints={"size": size, "stride": stride})


def _fc_no_bias(r: _Reader, n: int) -> Layer:
    version = r.name(("fc_2", "fc_3"), "fc_no_bias")
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor("fc params")
    weights, _ = r.alias("fc weights"), r.alias("fc biases")
    bias_mode = r.integer("fc bias mode")
    for what in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        r.real(f"fc {what} multiplier")
    if version == "fc_3":
        r.boolean("fc use_bias")
    if outputs != n or bias_mode != 1 or weights[:2] != (inputs, n) or params.size != inputs * n:  # 1: FC_NO_BIAS
        raise DlibFormatError(
            f"fc {inputs}->{outputs} (bias mode {bias_mode}, {params.size} values), expected ->{n} without bias"
        )
    return Layer("fc", arrays={"weight": params.reshape(inputs, n)})  # dlib: out = x @ weight


# -- the network: anet_type, outermost first ---------------------------------------------------


def _block(n: int, stride: int) -> list[tuple]:
    """block<N,affine,stride,SUB> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUB>>>>>"""
    return [("affine", n), ("con", n, 3, 1), ("relu",), ("affine", n), ("con", n, 3, stride)]


def _ares(n: int) -> list[tuple]:
    """relu<add_prev1<block<N,affine,1,tag1<SUB>>>>"""
    return [("relu",), ("add_prev", 1), *_block(n, 1), ("tag", 1)]


def _ares_down(n: int) -> list[tuple]:
    """relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>"""
    return [("relu",), ("add_prev", 2), ("avg_pool_", 2, 2), ("skip", 1), ("tag", 2), *_block(n, 2), ("tag", 1)]


def anet_type() -> list[tuple]:
    """The python binding's network, outermost layer first (face_recognition.cpp's anet_type)."""
    levels = [_ares_down(256)]  # alevel0
    levels += [_ares(256), _ares(256), _ares_down(256)]  # alevel1
    levels += [_ares(128), _ares(128), _ares_down(128)]  # alevel2
    levels += [_ares(64), _ares(64), _ares(64), _ares_down(64)]  # alevel3
    levels += [_ares(32), _ares(32), _ares(32)]  # alevel4
    stem = [("max_pool_", 3, 2), ("relu",), ("affine", 32), ("con", 32, 7, 2), ("input", 150)]
    return [("loss",), ("fc", 128), ("avg_pool_", 0, 1), *[x for lv in levels for x in lv], *stem]


@dataclass
class Network:
    """The layers in computing order (input first) and the input's per-channel means (R, G, B)."""

    layers: list[Layer]
    means: tuple[float, float, float]
    size: int


def _details(r: _Reader, spec: tuple) -> Layer:
    kind = spec[0]
    if kind == "con":
        return _con(r, spec[1], spec[2], spec[3])
    if kind == "affine":
        return _affine(r, spec[1])
    if kind == "relu":
        return _relu(r)
    if kind in ("max_pool_", "avg_pool_"):
        return _pool(r, kind, spec[1], spec[2])
    if kind == "fc":
        return _fc_no_bias(r, spec[1])
    if kind == "add_prev":
        r.name(("add_prev_",), "add_prev")
        return Layer("add_prev", tag=spec[1])
    raise AssertionError(kind)


def _read(r: _Reader, specs: list[tuple], i: int, out: list[Layer], means: list[float]) -> None:
    spec = specs[i]
    kind = spec[0]
    if kind == "loss":
        r.version({1}, "the loss layer")
        if r.name(("loss_metric_", "loss_metric_2"), "loss_metric") == "loss_metric_2":
            r.real("loss margin"), r.real("loss distance threshold")
        _read(r, specs, i + 1, out, means)
        return
    if kind in ("tag", "skip"):
        r.version({1}, f"{kind}{spec[1]}")
        _read(r, specs, i + 1, out, means)
        out.append(Layer(kind, tag=spec[1]))
        return
    # a computing layer (add_layer): version, what is under it, its details, training state
    on_input = specs[i + 1][0] == "input"
    version = r.version({2, 3} if on_input else {1, 2}, f"layer {kind}")
    if on_input:
        r.name(("input_rgb_image_sized",), "input_rgb_image_sized")
        means.extend(r.real("input mean") for _ in range(3))
        size = specs[i + 1][1]
        if [r.integer(), r.integer()] != [size, size]:
            raise DlibFormatError(f"the input is not {size}x{size}")
        out.append(Layer("input"))
    else:
        _read(r, specs, i + 1, out, means)
    out.append(_details(r, spec))
    for what in ("setup called", "gradient stale", "output disabled"):
        r.boolean(f"{kind} {what}")
    r.tensor("x_grad"), r.tensor("cached output")
    if on_input:
        r.tensor("grad_final")
        if version == 3:
            r.integer("sample expansion factor")
    elif version == 2:
        r.tensor("params_grad")


def read_network(data: bytes, source: str = "the descriptor weights") -> Network:
    """Parse dlib's serialized ``anet_type``. Raises ``DlibFormatError`` saying what and where."""
    r = _Reader(data)
    layers: list[Layer] = []
    means: list[float] = []
    try:
        _read(r, anet_type(), 0, layers, means)
    except DlibFormatError as exc:
        raise DlibFormatError(f"{source} is not dlib's face descriptor network: {exc}") from None
    if r.pos != len(data):
        raise DlibFormatError(f"{source}: {len(data) - r.pos} bytes left after the network")
    return Network(layers, (means[0], means[1], means[2]), anet_type()[-1][1])


def read_network_file(path: Path) -> Network:
    return read_network(path.read_bytes(), str(path))
