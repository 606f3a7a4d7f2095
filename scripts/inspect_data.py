"""Print split sizes and class pixel frequencies, write a mask-overlay grid (and optionally JSON).

Usage: python scripts/inspect_data.py data=synthetic inspect.json=out.json
"""

from segkit.tasks.entry import (
    inspect_data,
)  # = segkit-inspect; light: the task is imported in the job

if __name__ == "__main__":
    inspect_data()
