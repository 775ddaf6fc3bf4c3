"""Shared fixtures. The real test media is found in exactly one place: `media_dir`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's checkout sits beside ../shared; HAIC_TEST_MEDIA / HAIC_TEST_MODELS override.
SHARED_MEDIA = Path(os.environ.get("HAIC_TEST_MEDIA", REPO_ROOT.parent / "shared" / "media"))
SHARED_MODELS = Path(os.environ.get("HAIC_TEST_MODELS", REPO_ROOT.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Root of the real test media (videos/, images/, manifest.json)."""
    if not (SHARED_MEDIA / "videos").is_dir():
        pytest.fail(f"real test media not found at {SHARED_MEDIA}; set HAIC_TEST_MEDIA")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def video(media_dir: Path):
    """video('sam2_juggle_1p.mp4') -> absolute path of a real test clip."""

    def _video(name: str) -> Path:
        path = media_dir / "videos" / name
        assert path.is_file(), f"missing test video {path}"
        return path

    return _video


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """Model files for the production pose path (yolox_nano.onnx, rtmpose_t_random.onnx)."""
    if not SHARED_MODELS.is_dir():
        pytest.fail(f"model files not found at {SHARED_MODELS}; set HAIC_TEST_MODELS")
    return SHARED_MODELS


def pytest_collection_modifyitems(config, items):
    """pytest-timeout's limit of every test (its own marker's, else the suite's `timeout`) times
    HAIC_TEST_TIME_SCALE (tests/timing.py)."""
    from tests.timing import TIME_SCALE

    if TIME_SCALE == 1:
        return
    default = config.getvalue("timeout") or config.getini("timeout")
    for item in items:
        marker = item.get_closest_marker("timeout")
        kwargs = dict(marker.kwargs) if marker is not None else {}
        base = (marker.args[0] if marker is not None and marker.args else kwargs.pop("timeout", None)) or default
        if base:
            item.add_marker(pytest.mark.timeout(float(base) * TIME_SCALE, **kwargs), append=False)
