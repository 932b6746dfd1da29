from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.schemas import DeviceReport, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready"}},
    summary="Bundle loaded and history store reachable",
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    store_ok = state.store is not None and await state.store.probe()
    loaded = state.holder.loaded
    device = state.holder.current.device if loaded else None
    readiness = Readiness(
        ready=loaded and store_ok,
        model_version=state.holder.current.version if loaded else None,
        history_store="ok" if store_ok else "unavailable",
        refine="available" if state.recommender.refiner is not None else "unavailable",
        device=None
        if device is None
        else DeviceReport(
            name=device.name,
            encoder=device.encoder,
            index=device.index,
            providers=list(device.providers),
            index_type=device.index_type,
        ),
    )
    return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)
