"""Check every sample of a dataset's train and val splits, print split sizes and class pixel
frequencies, write a mask-overlay grid in the dataset's colours (and optionally JSON).
Works on every dataset (the data group's dataset object, segkit.data).

Usage: python scripts/inspect_data.py data=synthetic inspect.json=out.json
       python scripts/inspect_data.py data=folder data.root=my_data
"""

from segkit.cli.entry import (
    inspect_data,
)  # = segkit-inspect; light: the task is imported in the job

if __name__ == "__main__":
    inspect_data()
