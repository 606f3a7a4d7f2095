from segkit.nn.conv import ConvBNAct, SeparableConv2d, same_padding

__all__ = ["ConvBNAct", "SeparableConv2d", "same_padding"]
