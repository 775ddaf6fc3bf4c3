"""`haic`, the platform's command line: one module per command group, one parser style
(argparse sub-commands, each with help and a description), one error handler (haic_cli.main).

The commands drive the same Dagster instance and definitions the UI shows; nothing here runs
inside a step.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("haic-curation")
except PackageNotFoundError:  # a checkout run without installing it
    __version__ = "0+unknown"
