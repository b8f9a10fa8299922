"""Package versions recorded in run directories and export metadata, and the CPU's name
that benchmarks and test timings record."""

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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (ratios and timings differ between Intel and
    AMD), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0] if names else platform.processor()
    except OSError:
        return platform.processor()
