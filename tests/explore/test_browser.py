"""End to end in a real browser: ``scripts/explore.py`` on two tiny trained checkpoints, driven by
headless Chromium (the system's, through Playwright: nothing is downloaded).

Pick a validation image, click a pixel: each design's prediction (with its RF box), ERF panel and
facts appear; a second pixel gives another ERF. A screenshot is kept as a test artifact
(``logs/test_artifacts/explorer.png``; ``SEGKIT_EXPLORER_SCREENSHOT`` names another path).
CI installs Chromium (``.ci/run``); there the test fails rather than skips without it.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BOX = (255, 255, 0)  # segkit.explore.drawing.BOX_COLOUR


def chromium() -> str:
    path = os.environ.get("SEGKIT_CHROMIUM") or shutil.which("chromium")
    if not path:
        from helpers.explore import need

        need("chromium", "apt-get install chromium", present=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(ckpts: list[Path], root: Path, port: int) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable, str(ROOT / "scripts" / "explore.py"),
        f"ckpt_path=[{','.join(str(c) for c in ckpts)}]", f"paths.root_dir={root}",
        f"explore.port={port}", "explore.num_val_images=3", "explore.device=cpu",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=root
    )
    seen = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if line.startswith("segkit explorer: http://"):
            return proc, line.split()[2]
    proc.kill()
    raise AssertionError("the explorer did not start:\n" + "".join(seen[-40:]))


def click_image(page, selector: str, fx: float, fy: float) -> None:
    """Click the picture shown by ``selector`` (an img drawn with object-fit: contain) at the
    fractions ``fx``, ``fy`` of its own width and height."""
    img = page.locator(selector)
    size = img.evaluate("e => [e.naturalWidth, e.naturalHeight, e.clientWidth, e.clientHeight]")
    nat_w, nat_h, box_w, box_h = size
    scale = min(box_w / nat_w, box_h / nat_h)
    left, top = (box_w - nat_w * scale) / 2, (box_h - nat_h * scale) / 2
    img.click(position={"x": left + fx * nat_w * scale, "y": top + fy * nat_h * scale})


def wait_visible(page, selector: str, shot: Path) -> None:
    """Wait for ``selector``; on a timeout fail with the page's status line and a screenshot."""
    try:
        page.locator(selector).wait_for(timeout=90_000)
    except Exception as err:  # noqa: BLE001 - playwright's TimeoutError
        page.screenshot(path=str(shot.with_name("explorer_failed.png")), full_page=True)
        status = page.locator("#status").inner_text()
        raise AssertionError(
            f"{selector} did not appear ({err}); status line: {status!r}"
        ) from None


def png_at(page, selector: str) -> np.ndarray:
    src = page.locator(selector).get_attribute("src")
    body = page.request.get(src).body() if not src.startswith("data:") else None
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


@pytest.mark.slow
def test_pick_click_compare_in_chromium(trained, explore_root):
    from helpers.explore import need

    need("gradio", "pip install -e '.[app]'")
    need("playwright", "pip install -e '.[browser]'")
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    shot = Path(
        os.environ.get(
            "SEGKIT_EXPLORER_SCREENSHOT", ROOT / "logs" / "test_artifacts" / "explorer.png"
        )
    )
    shot.parent.mkdir(parents=True, exist_ok=True)
    ckpts = [trained["fcn"], trained["deeplabv3plus"]]
    proc, url = start_app(ckpts, explore_root, free_port())
    assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.locator("#val-image input").click()
            page.get_by_role("option").first.click()
            for i in range(2):
                wait_visible(page, f"#pred-{i} img", shot)
            before = png_at(page, "#pred-0 img")
            assert not (before == BOX).all(-1).any()  # no box before a click
            click_image(page, "#input-image img", 0.3, 0.3)
            for i in range(2):
                wait_visible(page, f"#erf-{i} img", shot)
                page.wait_for_function(
                    f"document.querySelector('#facts-{i}').innerText.includes('ERF r50')",
                    timeout=60_000,
                )
            first = [png_at(page, f"#erf-{i} img") for i in range(2)]
            for i in range(2):
                facts = page.locator(f"#facts-{i}").inner_text()
                assert "pixel (row" in facts and "RF " in facts
                assert (png_at(page, f"#pred-{i} img") == BOX).all(-1).any()  # the RF box
            page.screenshot(path=str(shot), full_page=True)
            old = [page.locator(f"#erf-{i} img").get_attribute("src") for i in range(2)]
            click_image(page, "#input-image img", 0.85, 0.8)
            for i in range(2):
                page.wait_for_function(
                    f"(document.querySelector('#erf-{i} img') || {{}}).src !== {old[i]!r}",
                    timeout=60_000,
                )
            second = [png_at(page, f"#erf-{i} img") for i in range(2)]
            for a, b in zip(first, second, strict=True):
                assert a.shape == b.shape and not np.array_equal(a, b)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
