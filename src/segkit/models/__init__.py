"""segkit.models."""
