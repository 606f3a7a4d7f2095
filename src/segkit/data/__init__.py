"""segkit.data."""
