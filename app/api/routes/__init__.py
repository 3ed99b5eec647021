"""Route modules; each exposes `router = APIRouter(...)`, included by `app.main.create_app`."""
