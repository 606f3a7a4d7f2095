"""segkit.analysis."""
