"""The ``pmatch`` command line (``api.cli.main.app``); ``python -m api.cli`` runs it too."""

from api.cli.main import app

__all__ = ["app"]
