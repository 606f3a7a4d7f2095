"""segkit.tasks: the eight tasks (``train``, ``evaluate``, ``predict``, ``export``, ``analyze``,
``compare``, ``inspect_data``, ``explore``), each a plain function ``<task>(cfg) -> dict`` that
``segkit.cli.launch.run_task`` imports inside the job, and ``checkpoints``: the one prelude they
share to open a checkpoint for inference. No task imports another (``tests/test_architecture.py``)."""
