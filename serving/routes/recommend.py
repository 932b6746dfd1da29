"""POST /recommend: the request model in, the use case's answer out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import RecommenderDep
from serving.errors import RECEIVED_AT
from serving.schemas import ErrorResponse, RecommendRequest, RecommendResponse

router = APIRouter(tags=["recommend"])


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    summary="Top-k items for a user and/or a history, within a latency budget",
    description="Encodes the user's stored history (Redis) and the request's `history`, "
    "retrieves candidates, drops seen and excluded items and, when asked and in budget, lets "
    "the LLM re-rank ranks 6..N. A stage that cannot finish in the budget is skipped and named "
    "in `degraded`.",
)
async def recommend(
    body: RecommendRequest, request: Request, recommender: RecommenderDep
) -> Response:
    # The budget counts from when the server got the request (stamped by BodyTooLarge), so
    # reading and validating the body are part of it.
    answer = await recommender.recommend(body, received_at=request.scope.get(RECEIVED_AT))
    # The use case built and validated the model already: serialise it once, in pydantic-core,
    # instead of FastAPI validating it a second time on the way out.
    return Response(answer.model_dump_json(), media_type="application/json")
