"""The explorer's page: ``Explorer`` (the page's state and its actions, user errors turned into
its status line) and ``build_ui`` (the Gradio page on it). The work is done by
``segkit.explore.session`` (no UI); this module turns it into pictures (``segkit.explore.drawing``)
and a page. The ``explore`` task (``segkit.tasks.explore``) serves it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from segkit.checks import VALID_OUTPUT_STRIDES
from segkit.evaluation.overlay import legend_image, overlay
from segkit.explore.drawing import draw_logit_grid, draw_rf_box, heatmap_rgb
from segkit.explore.session import (
    Design,
    DesignView,
    Picture,
    Session,
    ValSplit,
    click,
    fit_image,
    read_upload,
    switch_output_stride,
    view_design,
)
from segkit.explore.view import comparison_picture, facts_markdown

log = logging.getLogger(__name__)

INSTALL_HINT = "the explorer needs the app extra: pip install -e '.[app]' (installs gradio)"
#: Pictures are shown at least this large (longer side, px): a smaller image is enlarged by the
#: largest whole factor that fits, nearest neighbour, so each image pixel is an exact f x f block
#: and a click maps back to its pixel without rounding.
SHOWN_SIDE = 512


def shown_scale(height: int, width: int) -> int:
    """The whole factor a ``height x width`` picture is enlarged by on the page (1: as it is)."""
    return max(1, SHOWN_SIDE // max(height, width, 1))


def enlarge(picture: np.ndarray | None, factor: int) -> np.ndarray | None:
    """``picture`` (H, W[, C]) with each pixel repeated ``factor`` times in both directions."""
    if picture is None or factor == 1:
        return picture
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def require_gradio() -> Any:
    """``import gradio``, or ValueError with the one line saying what to install."""
    if importlib.util.find_spec("gradio") is None:
        raise ValueError(INSTALL_HINT)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no telemetry
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
    import gradio

    return gradio


class Explorer:
    """The page's state and its actions. Every action returns ``outputs()``: the input picture,
    the ground truth, the status line, then per design (prediction, ERF, facts); a user error
    becomes the status line, never an exception."""

    def __init__(self, session: Session, *, val: ValSplit | None, max_side: int, out_dir: Path):
        self.session, self.val, self.max_side, self.out_dir = session, val, max_side, out_dir
        self.status = ""
        self.lock = threading.Lock()
        self.exports = 0

    # actions -------------------------------------------------------------------------------
    def pick_validation(self, image_id: str | None) -> list[Any]:
        return self._act(lambda: self._set_picture(self._val_picture(image_id)))

    def upload(self, path: str | None) -> list[Any]:
        return self._act(
            lambda: self._set_picture(read_upload(path, self.max_side)) if path else None
        )

    def click(self, row: int, col: int) -> list[Any]:
        """Click image pixel (``row``, ``col``) of the current picture."""
        return self._act(lambda: self._click((int(row), int(col))))

    def click_shown(self, row: int, col: int) -> list[Any]:
        """Click at (``row``, ``col``) of the picture as shown (enlarged by :meth:`scale`)."""
        factor = self.scale()
        return self.click(int(row) // factor, int(col) // factor)

    def scale(self) -> int:
        """The factor the current picture is shown enlarged by (1 without a picture)."""
        picture = self.session.picture
        return 1 if picture is None else shown_scale(*picture.image.shape[:2])

    def set_output_stride(self, index: int, output_stride: int) -> list[Any]:
        return self._act(lambda: self._restride(index, int(output_stride)))

    def export(self) -> str | None:
        """Write the current comparison as a PNG; its path (None, with a status line, if empty)."""
        with self.lock:
            if self.session.picture is None:
                self.status = "nothing to export yet: pick or upload an image first"
                return None
            self.exports += 1
            path = self.out_dir / f"comparison_{self.exports:03d}.png"
            comparison_picture(self.session, self._panels()).save(path)
            self.status = f"exported {path}"
            return str(path)

    # internals -----------------------------------------------------------------------------
    def _act(self, work: Callable[[], Any]) -> list[Any]:
        with self.lock:
            self.status = ""
            try:
                work()
            except (ValueError, FileNotFoundError) as err:
                self.status = f"**error:** {err}"
            return self.outputs()

    def _val_picture(self, image_id: str | None) -> Picture:
        if self.val is None:
            raise ValueError("no validation images (see the notices above): upload an image")
        if not image_id:
            raise ValueError("choose a validation image")
        return fit_image(self.val.picture(image_id), self.max_side)

    def _set_picture(self, picture: Picture) -> None:
        s = self.session
        s.views = [view_design(d, picture) for d in s.designs]
        s.picture, s.pixel = picture, None
        self.status = (
            picture.notice
            or f"{picture.name}: {picture.image.shape[1]} x {picture.image.shape[0]} px; click a pixel"
        )

    def _click(self, pixel: tuple[int, int]) -> None:
        s = self.session
        if s.picture is None:
            raise ValueError("pick or upload an image first, then click a pixel")
        for view in s.views:
            click(view, pixel)
        s.pixel = pixel
        self.status = f"pixel (row {pixel[0]}, col {pixel[1]})"

    def _restride(self, index: int, output_stride: int) -> None:
        s = self.session
        design = s.designs[index]
        if design.output_stride == output_stride:
            return
        switch_output_stride(design, output_stride)
        if s.picture is not None:
            s.views[index] = view_design(design, s.picture)
            if s.pixel is not None:
                click(s.views[index], s.pixel)
        self.status = f"{design.name}: now at output stride {output_stride}"

    def _panels(self) -> list[tuple[np.ndarray | None, np.ndarray | None, str]]:
        s = self.session
        out = []
        for i, design in enumerate(s.designs):
            view = s.views[i] if i < len(s.views) else None
            out.append((*self._pictures(design, view), facts_markdown(design, view, s.pixel)))
        return out

    def _pictures(
        self, design: Design, view: DesignView | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        picture = self.session.picture
        if view is None or picture is None:
            return None, None
        pred = draw_logit_grid(overlay(picture.image, view.prediction, design.classes), view.grid)
        if view.pixel_rf is not None:
            pred = draw_rf_box(pred, view.pixel_rf)
        erf = heatmap_rgb(view.erf, picture.image) if view.erf is not None else None
        return pred, erf

    def outputs(self) -> list[Any]:
        picture = self.session.picture
        image = gt = None
        if picture is not None:
            image = picture.image
            gt = (
                overlay(picture.image, picture.mask, self.session.designs[0].classes, void=True)
                if picture.mask is not None and self.session.designs
                else None
            )
        status = self.status or "pick a validation image or upload one"
        factor = self.scale()
        panels = [
            (enlarge(pred, factor), enlarge(erf, factor), facts)
            for pred, erf, facts in self._panels()
        ]
        shown = [enlarge(image, factor), enlarge(gt, factor), status]
        return [*shown, *[x for panel in panels for x in panel]]

    def legend(self) -> np.ndarray | None:
        """The class legend (names and colours of the checkpoints' class set)."""
        if not self.session.designs:
            return None
        classes = self.session.designs[0].classes
        return np.asarray(legend_image(range(len(classes.names)), classes))

    def notices_markdown(self) -> str:
        notes = list(self.session.notices)
        return "\n".join(f"- {n}" for n in notes) if notes else ""


def build_ui(app: Explorer, gr: Any) -> Any:
    """The Gradio page of ``app`` (``gr`` = the gradio module)."""
    designs = app.session.designs
    ids = app.val.ids if app.val is not None else []
    with gr.Blocks(title="segkit explorer") as demo:
        gr.Markdown(
            "## segkit design explorer\nPick an image, then **click a pixel** (on the image or on "
            "any prediction): each design shows its class there, the theoretical receptive field "
            "of that output pixel (yellow box; the white mesh is the logit grid) and its effective "
            "receptive field (gradient of that pixel's logit, log scale; cyan r50, white r90)."
        )
        gr.Markdown(app.notices_markdown(), elem_id="notices")
        with gr.Row():
            val = gr.Dropdown(
                choices=ids, label="Validation image", elem_id="val-image", value=None
            )
            upload = gr.UploadButton("Upload an image", elem_id="upload")
            export = gr.Button("Export PNG", elem_id="export")
            exported = gr.File(
                label="Exported comparison", elem_id="export-file", interactive=False
            )
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            image = gr.Image(
                label="Image (click a pixel)",
                type="numpy",
                format="png",
                interactive=False,
                elem_id="input-image",
            )
            gt = gr.Image(
                label="Ground truth",
                type="numpy",
                format="png",
                interactive=False,
                elem_id="ground-truth",
            )
            gr.Image(
                value=app.legend(),
                label="Classes",
                show_label=False,  # the label badge would cover the first class
                buttons=[],  # and so would the corner buttons
                type="numpy",
                format="png",
                interactive=False,
                elem_id="legend",
                scale=0,
            )
        panels, radios = [], []
        for i, design in enumerate(designs):
            with gr.Row(equal_height=False):
                pred = gr.Image(
                    label=f"{design.name}: prediction",
                    type="numpy",
                    format="png",
                    interactive=False,
                    elem_id=f"pred-{i}",
                )
                erf = gr.Image(
                    label=f"{design.name}: ERF of the pixel",
                    type="numpy",
                    format="png",
                    interactive=False,
                    elem_id=f"erf-{i}",
                )
                with gr.Column():
                    radio = gr.Radio(
                        list(VALID_OUTPUT_STRIDES),
                        value=design.output_stride,
                        label="output stride",
                        elem_id=f"os-{i}",
                    )
                    facts = gr.Markdown(elem_id=f"facts-{i}")
            panels += [pred, erf, facts]
            radios.append(radio)
        outputs = [image, gt, status, *panels]

        def on_select(evt: Any) -> list[Any]:
            col, row = evt.index  # Gradio gives (x, y) in pixels of the picture as shown
            return app.click_shown(row, col)

        # Gradio injects the click by this annotation (a real class: not a postponed string)
        on_select.__annotations__ = {"evt": gr.SelectData, "return": list}

        val.change(app.pick_validation, inputs=val, outputs=outputs)
        upload.upload(app.upload, inputs=upload, outputs=outputs)
        for target in [image, *panels[0::3]]:
            target.select(on_select, outputs=outputs)
        for i, radio in enumerate(radios):
            radio.change(
                lambda os_, i=i: app.set_output_stride(i, os_), inputs=radio, outputs=outputs
            )
        export.click(lambda: (app.export(), *app.outputs()), outputs=[exported, *outputs])
        demo.load(app.outputs, outputs=outputs)
    return demo


__all__ = ["INSTALL_HINT", "Explorer", "build_ui", "require_gradio"]
