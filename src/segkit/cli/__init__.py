"""segkit.tasks: the Hydra-facing tasks. Importing the package registers the config resolvers the
entry configs use (``unique_dir``, see ``segkit.tasks.run_folders``; ``workers``, see
``segkit.tasks.configs``), before Hydra resolves them."""

from segkit.tasks.configs import register_resolvers as _register_config_resolvers
from segkit.tasks.run_folders import register as _register_resolvers

_register_resolvers()
_register_config_resolvers()
