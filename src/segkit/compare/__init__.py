"""segkit.compare: run folders -> comparison rows over seeds, their uncertainty, tables and plots.

``records`` reads run folders (train / evaluate / analyze) and joins them per trained network;
``groups`` makes one row per design from the runs that differ only in ``seed``; ``stats`` holds the
mean ± std and the paired two-level bootstrap of mIoU differences; ``table`` and ``plots`` render
them. Nothing here imports torch: comparing finished runs needs only their files.

Names are imported on first use (PEP 562): ``scripts/compare.py`` checks its folders with
``segkit.compare.records`` (yaml only) before anything else is imported.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DesignGroup": "groups",
    "find_group": "groups",
    "group_by_seed": "groups",
    "Record": "records",
    "RunFolder": "records",
    "build_records": "records",
    "builder_name": "records",
    "find_run_folders": "records",
    "Bootstrap": "stats",
    "ImageConfusion": "stats",
    "Interval": "stats",
    "Summary": "stats",
    "miou": "stats",
    "verdict": "stats",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
