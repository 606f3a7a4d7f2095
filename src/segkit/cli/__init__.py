"""segkit.cli: the shell around the tasks -- console entry points, launch and failure reporting,
hints, the pre-flight, the config resolvers, the Optuna trials callback, ``compare --fill`` and the
download commands. Importing the package registers the config resolvers the entry configs use
(``unique_dir``, see ``segkit.cli.run_folders``; ``workers`` and ``cpu_precision``, see
``segkit.cli.configs``), before Hydra resolves them. Light: no torch is imported here."""

from segkit.cli.configs import register_resolvers as _register_config_resolvers
from segkit.cli.run_folders import register as _register_resolvers

_register_resolvers()
_register_config_resolvers()
