"""``OnnxDescriptor``: dlib's 128-d face descriptor network run by ONNX Runtime.

dlib-bin is built without BLAS: its ``compute_face_descriptor`` costs ~110-180 ms of CPU per
face; the same network (~0.36 GMAC) costs a few ms in ONNX Runtime. The weights are read from
dlib's own file (``dlib_format``), rebuilt as an ONNX graph layer by layer, and cached under the
cache dir like the classifier's graphs (key: the weight file's SHA-256 and ``GRAPH_VERSION``).

What dlib does, and the graph does alike (dlib/dnn/input.h, layers.h, cuda/cpu_dlib.cpp):
- input: the 150x150 RGB chip, (pixel - channel mean) / 256, channels R, G, B;
- con: padding size // 2 when the stride is 1, none otherwise; output 1 + (n + 2p - k) // s;
- affine (a frozen batch norm): per-channel scale and shift, folded here into the convolution
  before it (in float64);
- max_pool 3x3/2 and avg_pool 2x2/2 without padding; avg_pool_everything: the mean of the map;
- add_prev: the two tensors added over the larger of each size, the smaller zero-padded (more
  channels after a downsampling level; 3x3 against 4x4 at the 256-channel level);
- fc_no_bias: ``x @ W`` with W stored (inputs, outputs); loss_metric returns it as it is.
Descriptors match dlib's to ~1e-6 (tests/faces/test_descriptor.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from ..engines.onnx_cache import cached
from ..models.weights import sha256_file
from ..paths import cache_dir
from .dlib_format import DlibFormatError, Network, read_network_file
from .session import THREADS, cpu_session

log = logging.getLogger("wanwu.faces")

GRAPH_VERSION = 1  # bump when build_graph changes the graph: cached files are rebuilt
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
DESCRIPTOR_SIZE = 128


def build_graph(net: Network) -> bytes:
    """The ONNX model (serialized) computing ``net``: ``chips`` (N, 3, S, S) float32 pixel
    values 0-255 in RGB order -> ``descriptors`` (N, 128)."""
    from ..graph.builder import GraphBuilder, conv_out

    g = GraphBuilder({})
    x = g.node("Sub", [INPUT_NAME, g.const("means", np.array(net.means).reshape(1, 3, 1, 1))])
    x = g.node("Mul", [x, g.const("scale", np.array(1 / 256))])
    shape = (3, net.size, net.size)
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = net.layers
    i = 1  # layers[0] is the input
    while i < len(layers):
        layer = layers[i]
        kind, a = layer.kind, layer.arrays
        if kind == "con":
            w, b = a["weight"].astype(np.float64), a["bias"].astype(np.float64)
            if w.shape[1] != shape[0]:
                raise DlibFormatError(f"layer {i}: a convolution over {w.shape[1]} channels gets {shape[0]}")
            if i + 1 < len(layers) and layers[i + 1].kind == "affine":  # fold the frozen batch norm
                gamma, beta = layers[i + 1].arrays["gamma"].astype(np.float64), layers[i + 1].arrays["beta"]
                w, b = w * gamma[:, None, None, None], b * gamma + beta
                i += 1
            k, s, p = w.shape[2], layer.ints["stride"], layer.ints["pad"]
            x = g.node(
                "Conv",
                [x, g.const("con.weight", w), g.const("con.bias", b)],
                hint="con",
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[p] * 4,
            )
            shape = (w.shape[0], conv_out(shape[1], k, s, p), conv_out(shape[2], k, s, p))
        elif kind == "affine":
            c = shape[0]
            x = g.node("Mul", [x, g.const("gamma", a["gamma"].reshape(1, c, 1, 1))])
            x = g.node("Add", [x, g.const("beta", a["beta"].reshape(1, c, 1, 1))])
        elif kind == "relu":
            x = g.relu(x)
        elif kind == "max_pool":
            k, s = layer.ints["size"], layer.ints["stride"]
            x = g.max_pool(x, k, s)
            shape = (shape[0], conv_out(shape[1], k, s, 0), conv_out(shape[2], k, s, 0))
        elif kind == "avg_pool" and layer.ints["size"] == 0:  # avg_pool_everything
            x = g.global_avg_pool(x)
            shape = (shape[0], 1, 1)
        elif kind == "avg_pool":
            k, s = layer.ints["size"], layer.ints["stride"]
            x = g.node("AveragePool", [x], kernel_shape=[k, k], strides=[s, s])
            shape = (shape[0], conv_out(shape[1], k, s, 0), conv_out(shape[2], k, s, 0))
        elif kind == "tag":
            tags[layer.tag] = (x, shape)
        elif kind == "skip":
            x, shape = tags[layer.tag]
        elif kind == "add_prev":
            other, other_shape = tags[layer.tag]
            out = (max(shape[0], other_shape[0]), max(shape[1], other_shape[1]), max(shape[2], other_shape[2]))
            x = g.add(_pad_to(g, x, shape, out), _pad_to(g, other, other_shape, out))
            shape = out
        elif kind == "fc":
            w = a["weight"]
            if w.shape[0] != shape[0] * shape[1] * shape[2]:
                raise DlibFormatError(f"the last layer takes {w.shape[0]} inputs, gets {shape}")
            x = g.node("MatMul", [g.flatten(x), g.const("fc.weight", w)], output=OUTPUT_NAME)
            shape = (w.shape[1], 1, 1)
        else:
            raise DlibFormatError(f"layer {i}: cannot build a {kind!r} layer")
        i += 1
    if x != OUTPUT_NAME or shape[0] != DESCRIPTOR_SIZE:
        raise DlibFormatError(f"the network ends in {shape}, not a {DESCRIPTOR_SIZE}-d descriptor")
    model = g.model(
        "dlib_face_recognition_resnet_model_v1",
        INPUT_NAME,
        net.size,
        [(OUTPUT_NAME, ["batch", DESCRIPTOR_SIZE])],
        doc="dlib's face descriptor ResNet (anet_type), rebuilt by wanwu.faces.descriptor",
    )
    return model.SerializeToString()


def _pad_to(g, x: str, shape: Sequence[int], out: Sequence[int]) -> str:
    """``x`` (N, *shape) zero-padded at the end of each axis to (N, *out)."""
    extra = [o - s for s, o in zip(shape, out)]
    if not any(extra):
        return x
    pads = g.const("pads", np.array([0, 0, 0, 0, 0, *extra]), dtype=np.int64)
    return g.node("Pad", [x, pads], mode="constant")


def cache_path(weights: Path) -> Path:
    return cache_dir() / "onnx" / f"dlib-face-descriptor-{sha256_file(weights)[:16]}-fp32-g{GRAPH_VERSION}.onnx"


def load_or_build(weights: Path) -> bytes:
    """The ONNX model for dlib's weight file ``weights``, from the cache or built (~1 s)."""
    path = cache_path(weights)

    def build() -> bytes:
        log.info("building the ONNX graph of the face descriptor (once; cached at %s)", path)
        return build_graph(read_network_file(weights))

    return cached(path, build)


class OnnxDescriptor:
    """``describe(chips)``: (N, 150, 150, 3) uint8 RGB chips as ``dlib.get_face_chip`` makes
    them -> (N, 128) float32, the numbers dlib's ``compute_face_descriptor`` gives."""

    def __init__(self, weights: Path, threads: int = THREADS):
        self.session = cpu_session(load_or_build(weights), threads)

    def describe(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        batch = np.ascontiguousarray(np.asarray(chips, dtype=np.float32).transpose(0, 3, 1, 2))
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]  # runs may overlap: ORT allows it
