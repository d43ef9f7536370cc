"""``python -m api.cli ...`` runs the ``pmatch`` command line."""

from api.cli.main import app

app()
