"""Lightning callback for ``bench_cli.py``: writes the wall-clock time of the first training step's
start to ``$SEGKIT_FIRST_STEP_FILE`` (the benchmark then stops the run)."""

from __future__ import annotations

import os
import time

import pytorch_lightning as pl


class FirstStep(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        path = os.environ.get("SEGKIT_FIRST_STEP_FILE")
        if path and not os.path.exists(path):
            with open(path, "w") as f:
                f.write(repr(time.time()))
