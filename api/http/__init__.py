"""The HTTP service: ``api.http.app.create_app`` builds the FastAPI application, ``api.http.server.serve`` runs it."""
