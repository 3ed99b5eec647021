"""`/api/products`: the product catalogue (list prices in USD). Every signed-in user reads it;
only an admin changes it (prices and names are everyone's: 403 for other roles)."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryText, SessionDep
from app.api.responses import errors, links
from crm import repository
from crm.errors import Forbidden
from crm.schemas import Page, ProductCreate, ProductOut, ProductUpdate

router = APIRouter(prefix="/products", tags=["products"], responses=errors(422, 503))


@router.get("", response_model=Page[ProductOut])
async def list_products(
    session: SessionDep, series: QueryText = None, limit: Limit = 50, offset: Offset = 0
) -> Page[ProductOut]:
    """Products ordered by name."""
    return await session.run_sync(
        lambda s: repository.list_products(s, series=series, limit=limit, offset=offset)
    )


@router.get("/{product_id}", response_model=ProductOut, responses=errors(404))
async def get_product(session: SessionDep, product_id: PathId) -> ProductOut:
    return await session.run_sync(repository.get_product, product_id)


@router.post(
    "",
    response_model=ProductOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"links": links("product_id", "GET /products/{product_id}", "PATCH /products/{product_id}")},
        **errors(400, 409),
    },
)
async def create_product(session: SessionDep, caller: CallerDep, body: ProductCreate) -> ProductOut:
    """409 if the name is taken (any case); 403 unless the caller is an admin."""
    _admin_only(caller.role)
    return await session.run_sync(repository.create_product, body)


@router.patch("/{product_id}", response_model=ProductOut, responses=errors(400, 404, 409))
async def update_product(
    session: SessionDep, caller: CallerDep, product_id: PathId, body: ProductUpdate
) -> ProductOut:
    """Change only the fields sent; 403 unless the caller is an admin."""
    _admin_only(caller.role)
    return await session.run_sync(repository.update_product, product_id, body)


def _admin_only(role: str) -> None:
    if role != "admin":
        raise Forbidden("only an admin changes the product catalogue")
