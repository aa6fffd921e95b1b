"""What the numbers were measured on: CPU model, cores, ISA flags, memory, package versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from ..install import DISTRIBUTION

# ISA extensions that decide which kernels the engines can use (fp32 AVX-512, int8 VNNI/AMX, bf16).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
PACKAGES = (DISTRIBUTION, "torch", "onnxruntime", "onnx", "openvino", "numpy", "pillow", "matplotlib")


def _proc_cpuinfo() -> tuple[str | None, set[str], str | None]:
    """(model name, flags, "family F model M stepping S") of the first CPU in /proc/cpuinfo."""
    model: str | None = None
    flags: set[str] = set()
    ids: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key in ("cpu family", "model", "stepping") and key not in ids:
                    ids[key] = value.strip()
                elif not line.strip() and model:
                    break  # first processor only
    except OSError:
        pass
    ident = " ".join(f"{k.replace('cpu ', '')} {v}" for k, v in ids.items()) or None
    return model, flags, ident


def cpu_info() -> dict:
    model, flags, ident = _proc_cpuinfo()
    try:  # py-cpuinfo (the `bench` extra) knows more CPUs and other OSes
        import cpuinfo

        info = cpuinfo.get_cpu_info()
        model = info.get("brand_raw") or model
        flags = flags or set(info.get("flags", []))
    except Exception:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "model": model or platform.processor() or "unknown",
        "id": ident,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
    }


def memory_total_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        try:
            return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            return None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def load_average() -> float | None:
    """1-minute load average: how much else the machine was doing (None where unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine_info() -> dict:
    return {
        "cpu": cpu_info(),
        "memory_gb": memory_total_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": package_versions(),
    }
