"""segkit.training."""
