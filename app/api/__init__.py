"""HTTP API: FastAPI routers, one module per concern under `routes/`."""
