"""segkit.tasks."""
