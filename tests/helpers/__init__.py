"""What several tests share: tiny models and configs, fake backbones, data trees written on the fly.

Imported as ``helpers.<module>`` (``tests/`` is on pytest's ``pythonpath``, pyproject.toml): one
package instead of helper modules beside the tests that found them by their folder's place on
``sys.path``.
"""
