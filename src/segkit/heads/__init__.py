"""segkit.heads."""
