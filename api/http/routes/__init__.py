"""The service's endpoints, one module per resource, each with its routers."""
