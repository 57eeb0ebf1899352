"""Plain `pytest graders/` uses the graders' plugin through this file; `kata` loads the plugin itself
and ignores every conftest.py."""

from graders.plugin import *  # noqa: F401,F403
