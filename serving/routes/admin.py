from __future__ import annotations

from fastapi import APIRouter

from models_export.bundle import BundleError
from serving.deps import ApiKey, HolderDep
from serving.errors import ServiceError
from serving.schemas import ErrorResponse, ReloadResult

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[ApiKey])


@router.post(
    "/reload",
    response_model=ReloadResult,
    responses={401: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    summary="Load the bundle INTENTREC_BUNDLE_DIR points at now and switch to it",
)
async def reload_bundle(holder: HolderDep) -> ReloadResult:
    try:
        old, new = await holder.reload()
    except (BundleError, RuntimeError, OSError, ValueError) as exc:
        raise ServiceError(409, "bundle_invalid", f"kept the served bundle: {exc}") from exc
    previous = old.version if old is not None else ""
    return ReloadResult(
        model_version=new.version,
        previous_version=previous,
        bundle_dir=str(new.root),
        changed=previous != new.version,
    )
