"""Checkpoint writes are atomic: a process SIGKILLed in the middle of a save leaves the previous file
intact under the checkpoint's name (or no file), no partial file under that name, and nothing in
$TMPDIR. The save goes through the Trainer's own CheckpointIO, as every training checkpoint does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from segkit.training.atomic_io import TEMP_SUFFIX

ROOT = Path(__file__).resolve().parents[2]

#: The child builds the train task's Trainer and saves through its checkpoint IO, stalling at the
#: point named by argv[2] so that the parent can SIGKILL it there: "write" (half of the bytes of
#: the new checkpoint are in the file being written) or "rename" (the file is complete, the rename
#: that publishes it has not happened).
CHILD = textwrap.dedent(
    """
    import io, os, shutil, sys, time
    import torch
    from hydra import compose, initialize_config_dir
    from segkit.tasks.train import build_trainer

    target, stall_at, config_dir, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose("train", overrides=[
            "trainer=cpu", f"paths.root_dir={out}", f"paths.output_dir={out}", "logger=none"
        ])
    checkpoint_io = build_trainer(cfg).strategy.checkpoint_io

    def stall():
        print("STALLED", flush=True)
        time.sleep(120)

    real_save = torch.save
    def half_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        if stall_at == "write" and not isinstance(f, io.BytesIO):
            f.write(data[: len(data) // 2]); f.flush(); os.fsync(f.fileno())
            stall()
        f.write(data)
    torch.save = half_save
    if stall_at == "rename":
        for module, name in ((os, "replace"), (os, "rename"), (shutil, "move")):
            setattr(module, name, lambda *a, **k: stall())
    if stall_at == "write":  # Lightning's default writes the bytes through fsspec's file object
        import fsspec.implementations.local as local
        real_write = local.LocalFileOpener.write
        def half_write(self, data):
            real_write(self, data[: len(data) // 2]); self.flush(); stall()
        local.LocalFileOpener.write = half_write
    checkpoint_io.save_checkpoint({"state_dict": {"model.w": torch.full((250_000,), 2.0)}}, target)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("stall_at", ["write", "rename"])
def test_kill_during_a_save_leaves_the_old_checkpoint_and_no_orphan(
    tmp_path: Path, stall_at: str
) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    target = folder / "last.ckpt"
    torch.save({"state_dict": {"model.w": torch.ones(3)}}, target)  # the previous checkpoint
    tmpdir = tmp_path / "tmpdir"  # the child's $TMPDIR: must stay empty
    tmpdir.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(script), str(target), stall_at, str(ROOT / "configs"), str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "STALLED", proc.stderr.read()[-3000:]  # type: ignore[union-attr]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # The name still holds the complete previous checkpoint.
    old = torch.load(target, weights_only=True)
    assert torch.equal(old["state_dict"]["model.w"], torch.ones(3))
    # (torch may create its own cache folders there, e.g. torchinductor_<user>/)
    orphans = [p for p in tmpdir.iterdir() if p.is_file()]
    assert not orphans, f"orphaned partial checkpoint in $TMPDIR: {orphans}"
    # What the kill left is only the hidden temporary file of the interrupted save.
    leftovers = sorted(p.name for p in folder.iterdir() if p.name != "last.ckpt")
    assert all(n.startswith(".last.ckpt.") and n.endswith(TEMP_SUFFIX) for n in leftovers)


def test_atomic_save_replaces_whole_files_and_cleans_up_on_error(tmp_path: Path) -> None:
    from segkit.training.atomic_io import atomic_torch_save

    path = tmp_path / "a" / "x.ckpt"
    atomic_torch_save({"v": torch.ones(2)}, path)
    atomic_torch_save({"v": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.zeros(2))

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"v": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.zeros(2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.ckpt"]  # temp file removed
