"""The ``newsletter`` command line: one module of thin commands per stage.

Commands parse arguments, call the stages' plain functions and print; errors are shown
in one place, ``core.main()``. May import every stage and ``web`` (``newsletter web``
serves it); nothing imports the command line.
"""

from newsletter.cli.core import main

__all__ = ["main"]
