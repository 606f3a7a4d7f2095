"""segkit.progress: a bar with rate and time left on a terminal, one final line in a log."""

from __future__ import annotations

import io

from rich.console import Console

from segkit.progress import progress


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=120, color_system=None), out


def test_a_terminal_gets_a_bar_with_done_rate_and_eta():
    console, out = _console(True)
    with progress("evaluating", 4, console=console) as advance:
        for _ in range(4):
            advance(1)
    text = out.getvalue()
    assert "evaluating" in text and "4/4" in text and "img/s" in text and "eta" in text


def test_bytes_show_sizes_and_speed_and_a_resume_starts_part_way():
    console, out = _console(True)
    with progress("downloading x.zip", 2048, unit="B", console=console, completed=1024) as advance:
        advance(1024)
    text = out.getvalue()
    assert "downloading x.zip" in text and "2.0/2.0 kB" in text


def test_a_log_gets_one_final_line_not_bar_frames():
    console, out = _console(False)
    with progress("evaluating", 3, console=console) as advance:
        for _ in range(3):
            advance(1)
            assert out.getvalue() == ""  # nothing while the work runs
    (line,) = out.getvalue().splitlines()
    assert line.startswith("evaluating: 3/3 img in ") and "img/s" in line


def test_a_log_gets_its_line_also_when_the_work_fails_part_way():
    console, out = _console(False)
    try:
        with progress("downloading x.zip", 100, unit="B", console=console, completed=10) as adv:
            adv(20)
            raise ConnectionError("cut")
    except ConnectionError:
        pass
    assert out.getvalue().startswith("downloading x.zip: 30/100 B in ")


def test_track_passes_items_through_and_counts_what_each_holds(monkeypatch):
    from segkit import progress as module

    seen = {}

    class Recorder:
        def __init__(self):
            self.done = 0

    def fake_progress(description, total, *, unit="img", console=None, completed=0):
        from contextlib import contextmanager

        @contextmanager
        def cm():
            rec = Recorder()
            seen["rec"], seen["total"], seen["description"] = rec, total, description

            def advance(n=1):
                rec.done += n

            yield advance

        return cm()

    monkeypatch.setattr(module, "progress", fake_progress)
    batches = [{"id": ["a", "b"]}, {"id": ["c"]}]
    out = list(module.track(batches, "evaluating val", 3, count=lambda b: len(b["id"])))
    assert out == batches and seen["rec"].done == 3 and seen["total"] == 3
    seen.clear()
    assert list(module.track(batches, "x", 3, enabled=False)) == batches and not seen
