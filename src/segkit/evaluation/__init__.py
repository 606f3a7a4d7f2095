"""segkit.evaluation."""
