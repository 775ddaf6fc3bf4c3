"""Open a media file with PyAV the same way everywhere, across PyAV versions.

The lock gives PyAV 18 on Python 3.11 and PyAV 19 on 3.12. PyAV 18 decodes container metadata
strictly unless told `metadata_errors="ignore"` (a badly encoded title must not fail a video);
PyAV 19 removed that argument and always tolerates such metadata.
"""

from __future__ import annotations

_metadata_errors_supported = True  # learnt on the first call of a process


def open_input(path: str):
    global _metadata_errors_supported
    import av

    if _metadata_errors_supported:
        try:
            return av.open(path, metadata_errors="ignore")
        except TypeError as exc:
            if "metadata_errors" not in str(exc):
                raise
            _metadata_errors_supported = False
    return av.open(path)
