"""segkit.tasks: the Hydra-facing tasks. Importing the package registers the config resolvers the
entry configs use (``unique_dir``, see ``segkit.tasks.run_folders``), before Hydra resolves them."""

from segkit.tasks.run_folders import register as _register_resolvers

_register_resolvers()
