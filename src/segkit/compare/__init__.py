"""segkit.compare: run folders -> comparison rows over seeds, their uncertainty, tables and plots.

``records`` reads run folders (train / evaluate / analyze) and joins them per trained network;
``groups`` makes one row per design from the runs that differ only in ``seed``; ``stats`` holds the
mean ± std and the paired two-level bootstrap of mIoU differences; ``table`` and ``plots`` render
them. Nothing here imports torch: comparing finished runs needs only their files.
"""

from segkit.compare.groups import DesignGroup, find_group, group_by_seed
from segkit.compare.records import Record, RunFolder, build_records, find_run_folders
from segkit.compare.stats import Bootstrap, ImageConfusion, Interval, Summary, miou, verdict

__all__ = [
    "Bootstrap",
    "DesignGroup",
    "ImageConfusion",
    "Interval",
    "Record",
    "RunFolder",
    "Summary",
    "build_records",
    "find_group",
    "find_run_folders",
    "group_by_seed",
    "miou",
    "verdict",
]
