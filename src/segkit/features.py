"""``FeatureInfo``: what a backbone publishes of each feature it returns, and what a head is sized from.

It is the one type ``backbones/`` and ``heads/`` share (they do not import each other), in timm's
vocabulary: the feature's channels (``num_chs``), its stride w.r.t. the input (``reduction``: the
*actual* stride, so a backbone dilated to output stride 8 reports 8 where it would report 32
undilated), the module it is taken from, and its ``nominal`` stride (the stride it has undilated,
which the dilation planner knows). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeatureInfo:
    """One returned feature: channels, actual stride (input size / feature size), the module it is
    read from, and its nominal (undilated) stride; ``nominal=None`` means "not dilated", the
    actual stride."""

    num_chs: int
    reduction: int
    module: str = ""
    nominal: int = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.nominal is None:
            object.__setattr__(self, "nominal", self.reduction)
        if self.reduction > self.nominal:
            raise ValueError(
                f"feature {self.module!r}: actual stride {self.reduction} exceeds its nominal "
                f"stride {self.nominal} (dilation only lowers a stride)"
            )


__all__ = ["FeatureInfo"]
