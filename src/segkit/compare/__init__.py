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

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "groups": ("DesignGroup", "find_group", "group_by_seed"),
        "records": ("Record", "RunFolder", "build_records", "builder_name", "find_run_folders"),
        "stats": ("Bootstrap", "ImageConfusion", "Interval", "Summary", "miou", "verdict"),
    },
)
