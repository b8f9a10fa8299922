"""Package versions recorded in run directories and export metadata."""

from __future__ import annotations

import importlib.metadata
import platform

PACKAGES = ("tensorflow", "keras", "keras-hub", "tensorflow-datasets", "numpy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages seqtasks depends on, plus Python and the backend."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    import keras

    found["keras_backend"] = keras.backend.backend()
    return found
