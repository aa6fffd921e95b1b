"""``GraphBuilder``: a few layers (conv with folded batch norm, ReLU/ReLU6, pooling, linear)
written as ONNX nodes with the ``onnx`` helper API, their weights taken from a NumPy state_dict.

Every parameter is fetched by key with the shape the architecture expects; missing keys, wrong
shapes and keys the graph never used are collected and reported together, in the same words as
the torch reference (``models.weights.fit_error``). Batch norm is folded into the preceding
convolution in float64 (``w * gamma / sqrt(var + eps)``), then stored as float32."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# IR 8 is the oldest that carries opset 18; onnxruntime >= 1.14 reads it
IR_VERSION = 8
OPSET = 18
_OPTIONAL_KEYS = ("num_batches_tracked",)  # BatchNorm's step counter: not used at inference


@dataclass(frozen=True)
class Built:
    """What an architecture builder added: the feature map (name, (C, h, w)) and the logits."""

    features: str
    features_shape: tuple[int, int, int]
    logits: str


def conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output size of a symmetric-padded convolution or pooling along one dim."""
    return (size + 2 * pad - kernel) // stride + 1


class StateDictMismatch(Exception):
    """The state_dict does not fit the architecture: keys missing, unexpected or misshapen."""

    def __init__(self, missing: list[str], unexpected: list[str], wrong: list[tuple[str, tuple, tuple]]):
        super().__init__("state_dict does not fit the architecture")
        self.missing, self.unexpected, self.wrong = missing, unexpected, wrong


class GraphBuilder:
    def __init__(self, state_dict: dict[str, np.ndarray]):
        self.state_dict = state_dict
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.used: set[str] = set()
        self.missing: list[str] = []
        self.wrong: list[tuple[str, tuple, tuple]] = []
        self._count = 0
        self._relu6_bounds: tuple[str, str] | None = None

    # -- parameters ------------------------------------------------------------------------
    def param(self, key: str, shape: Sequence[int]) -> np.ndarray:
        """The state_dict entry ``key`` with ``shape`` (zeros, and noted, when absent or
        misshapen, so that every problem is reported at once)."""
        shape = tuple(shape)
        self.used.add(key)
        value = self.state_dict.get(key)
        if value is None:
            self.missing.append(key)
            return np.zeros(shape)
        if tuple(value.shape) != shape:
            self.wrong.append((key, tuple(value.shape), shape))
            return np.zeros(shape)
        return value

    def const(self, hint: str, value: np.ndarray, dtype=np.float32) -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def check(self) -> None:
        unexpected = [k for k in self.state_dict if k not in self.used and k.rsplit(".", 1)[-1] not in _OPTIONAL_KEYS]
        if self.missing or unexpected or self.wrong:
            raise StateDictMismatch(self.missing, unexpected, self.wrong)

    # -- nodes -----------------------------------------------------------------------------
    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}:{self._count}"

    def node(self, op: str, inputs: Sequence[str], hint: str | None = None, output: str | None = None, **attrs) -> str:
        out = output or self._name(hint or op)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def conv(
        self,
        x: str,
        prefix: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        pads: Sequence[int] = (0, 0, 0, 0),
        groups: int = 1,
        bias: bool = False,
        bn: str | None = None,
        bn_eps: float = 1e-5,
    ) -> str:
        """Conv2d ``prefix.weight`` (+ ``prefix.bias``), with batch norm ``bn`` folded in.
        ``pads`` are ONNX's (top, left, bottom, right)."""
        w = self.param(f"{prefix}.weight", (cout, cin // groups, kernel, kernel))
        b = self.param(f"{prefix}.bias", (cout,)) if bias else np.zeros(cout)
        if bn is not None:  # folded in float64: the float32 result then matches conv + BN in torch
            gamma, beta = self.param(f"{bn}.weight", (cout,)), self.param(f"{bn}.bias", (cout,))
            mean, var = self.param(f"{bn}.running_mean", (cout,)), self.param(f"{bn}.running_var", (cout,))
            scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + bn_eps)
            w = w.astype(np.float64) * scale[:, None, None, None]
            b = (b.astype(np.float64) - mean) * scale + beta
        return self.node(
            "Conv",
            [x, self.const(f"{prefix}.weight", w), self.const(f"{prefix}.bias", b)],
            hint=prefix,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=list(pads),
            group=groups,
        )

    def relu(self, x: str, output: str | None = None) -> str:
        return self.node("Relu", [x], output=output)

    def relu6(self, x: str, output: str | None = None) -> str:
        if self._relu6_bounds is None:
            self._relu6_bounds = (self.const("zero", np.array(0.0)), self.const("six", np.array(6.0)))
        return self.node("Clip", [x, *self._relu6_bounds], hint="relu6", output=output)

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def max_pool(self, x: str, kernel: int, stride: int, pad: int = 0) -> str:
        return self.node("MaxPool", [x], kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)

    def avg_pool(self, x: str, kernel: int) -> str:
        return self.node("AveragePool", [x], kernel_shape=[kernel, kernel], strides=[kernel, kernel])

    def global_avg_pool(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x])

    def flatten(self, x: str) -> str:
        return self.node("Flatten", [x], axis=1)

    def linear(self, x: str, prefix: str, fin: int, fout: int, output: str | None = None) -> str:
        w, b = self.param(f"{prefix}.weight", (fout, fin)), self.param(f"{prefix}.bias", (fout,))
        return self.node(
            "Gemm",
            [x, self.const(f"{prefix}.weight", w), self.const(f"{prefix}.bias", b)],
            hint=prefix,
            output=output,
            transB=1,
        )

    # -- the model -------------------------------------------------------------------------
    def model(
        self,
        name: str,
        input_name: str,
        input_size: int,
        outputs: Sequence[tuple[str, Sequence]],
        doc: str = "",
    ) -> onnx.ModelProto:
        """The finished model: a float32 NCHW input with a dynamic batch, the named outputs
        (name, shape with "batch" first). Raises ``StateDictMismatch`` before building."""
        self.check()
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n, shape in outputs],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="wanwu.graph", doc_string=doc
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model
