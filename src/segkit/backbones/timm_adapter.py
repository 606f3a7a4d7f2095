"""Any timm model with ``features_only`` support as a segkit backbone.

``timm.create_model(model_name, features_only=True, output_stride=os, out_indices=...)`` does the
stride-to-dilation work itself; the feature contract comes from timm's ``feature_info`` (its
``reduction`` is already the actual stride when dilated). By default the features at stride >= 4 are
returned (stride-2 features are dropped; heads look for 4, 8, 16, 32).

Each feature's nominal stride (``FeatureInfo.nominal``) is the ``reduction`` timm reports for the
model built without ``output_stride`` (once, on the meta device: no weights, no arithmetic).

``set_output_stride`` cannot rewrite timm's modules generically, so it rebuilds the timm model at the
new output stride and copies the state dict over (dilation never changes a parameter's shape). The
parameters are therefore *new tensor objects* afterwards: build the optimizer after changing the
output stride (evaluate-time changes, the intended use, are unaffected).

``input_mean`` / ``input_std`` are the model's ``pretrained_cfg`` ones (what timm's
``resolve_data_config`` reads; e.g. 0.5 / 0.5 for many ViTs), ImageNet's where it has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride
from segkit.backbones.weights import HF_CACHE, download_error


class TimmBackbone(Backbone):
    """Wrapper around ``timm.create_model(..., features_only=True)``. Input (B, 3, H, W).

    ``weights``: None, ``"timm"`` / ``"timm:<model>"`` (timm's pretrained download) or
    a local file holding that timm model's state dict (loaded by timm, classifier keys dropped).
    """

    #: timm's dilated convs are plain ``nn.Conv2d``: no space-to-batch for them.
    atrous_impls = ("dilation",)

    def __init__(
        self,
        *,
        model_name: str,
        output_stride: int = 16,
        weights: str | None = None,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.out_indices = None if out_indices is None else tuple(out_indices)
        self.pretrained, self.weights_file = _weights_source(weights, model_name)
        self.body = self._create(check_output_stride(output_stride))
        self._nominal = self._nominal_reductions()
        self._update_feature_info()
        cfg = getattr(self.body, "pretrained_cfg", None) or {}
        if len(cfg.get("mean") or ()) == 3 and len(cfg.get("std") or ()) == 3:
            self.input_mean = tuple(float(v) for v in cfg["mean"])  # type: ignore[assignment]
            self.input_std = tuple(float(v) for v in cfg["std"])  # type: ignore[assignment]

    def _nominal_reductions(self) -> list[int]:
        """timm's reductions of the undilated model (built without weights on the meta device,
        or on the CPU for a model whose construction reads tensor values)."""
        try:
            with torch.device("meta"):
                body = self._create(None, load_weights=False)
        except (ValueError, RuntimeError, NotImplementedError):
            body = self._create(None, load_weights=False)
        return list(body.feature_info.reduction())

    def _create(self, output_stride: int | None, *, load_weights: bool = True) -> nn.Module:
        """The timm model at ``output_stride`` (None: timm's default); ``load_weights=False``
        skips the pretrained download / weights file (the caller has the weights)."""
        import timm

        if self.model_name not in timm.list_models():
            # list_models() holds the architectures; tagged names ("resnet18.a1_in1k") are fine too.
            base = self.model_name.split(".")[0]
            if base not in timm.list_models():
                raise ValueError(
                    f"timm has no model {self.model_name!r}; see timm.list_models() "
                    "(e.g. model_name=resnet18)"
                )
        kwargs: dict = {"features_only": True}
        if output_stride is not None:
            kwargs["output_stride"] = output_stride
        if self.out_indices is not None:
            kwargs["out_indices"] = self.out_indices
        weights_file = self.weights_file if load_weights else None
        pretrained = load_weights and (self.pretrained or weights_file is not None)
        if weights_file is not None:
            if not Path(weights_file).is_file():
                raise FileNotFoundError(
                    f"weights file {weights_file!r} not found; pass a timm state dict file "
                    "or weights=None"
                )
            # timm's own loader filters the classifier and adapts the keys to features_only.
            kwargs["pretrained_cfg_overlay"] = {"file": weights_file}
        try:
            return timm.create_model(self.model_name, pretrained=pretrained, **kwargs)
        except OSError as err:  # not cached and no connection (huggingface_hub errors are OSErrors)
            if weights_file is not None or not pretrained:
                raise
            raise download_error(f"timm:{self.model_name}", HF_CACHE, err) from err
        except (RuntimeError, TypeError, AssertionError) as err:
            source = ""
            if weights_file is not None:
                source = f", weights from {weights_file!r}"
            elif pretrained:
                source = ", timm's pretrained weights"
            raise ValueError(
                f"timm model {self.model_name!r} cannot be built (features_only=True, "
                f"output_stride={output_stride}{source}): {err}"
            ) from err

    def _update_feature_info(self) -> None:
        info = self.body.feature_info
        all_info = list(zip(info.channels(), info.reduction(), info.module_name(), strict=True))
        # Without explicit out_indices, drop timm's stride-2 features: heads want 4, 8, 16, 32.
        keep = range(len(all_info))
        if self.out_indices is None:
            keep = [i for i, (_, r, _) in enumerate(all_info) if r >= 4]
        self._keep = list(keep)
        self.feature_info = [FeatureInfo(*all_info[i], self._nominal[i]) for i in self._keep]

    def set_output_stride(self, output_stride: int) -> None:
        """Rebuild at ``output_stride`` and copy the weights (see module docstring)."""
        check_output_stride(output_stride)
        state = self.body.state_dict()
        training = self.training
        device = next(self.body.parameters()).device
        body = self._create(output_stride, load_weights=False)  # the weights come from `state`
        body.load_state_dict(state, strict=True)
        self.body = body.to(device).train(training)
        self._update_feature_info()

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> features as in ``feature_info``."""
        feats = self.body(x)
        return [feats[i] for i in self._keep]


def _weights_source(weights: str | None, model_name: str) -> tuple[bool, str | None]:
    """``(pretrained, weights_file)`` from the ``weights`` argument (see ``TimmBackbone``)."""
    if weights is None:
        return False, None
    if weights == "timm" or weights.startswith("timm:"):
        tag = weights.partition(":")[2]
        if tag and tag != model_name:
            raise ValueError(
                f"weights={weights!r} names a different model than model_name={model_name!r}; "
                f"use weights='timm' or set model_name={tag!r}"
            )
        return True, None
    return False, weights


#: The builder ``configs/backbone/timm.yaml`` targets (the class: its signature is the schema).
timm_backbone = TimmBackbone
