from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.errors import RECEIVED_AT
from serving.recommend import Recommender
from serving.schemas import ErrorResponse, RecommendRequest, RecommendResponse

router = APIRouter(tags=["recommend"])


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    summary="Top-k items for a user and/or a history, within a latency budget",
)
async def recommend(request: Request, body: RecommendRequest) -> Response:
    # The hot path: the recommender is read off app.state directly, not through a dependency
    # that FastAPI would resolve again on every request.
    recommender: Recommender = request.app.state.recommender
    result = await recommender.recommend(body, received_at=request.scope.get(RECEIVED_AT))
    # Serialised here once: the model was built by our own code, re-validating it costs latency.
    return Response(result.model_dump_json(), media_type="application/json")
