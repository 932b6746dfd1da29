"""Async client of an OpenAI-compatible chat API (vLLM), over one pooled HTTP client."""

from __future__ import annotations

import math
from typing import Any

import httpx


class LLMError(Exception):
    """The server could not be reached, answered an error status or an unreadable body."""


class LLMClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_connections: int = 16,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post("chat/completions", json={"model": self.model, **body})
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM request failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise LLMError(f"LLM answered {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()
            data["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"LLM answer is not a chat completion: {response.text[:200]}") from exc
        return data

    async def score(
        self, messages: list[dict[str, str]], labels: list[str], top_logprobs: int
    ) -> dict[str, float]:
        """Log-probability of each label as the first answer token (labels absent are left out).

        Tokens are matched after stripping spaces (" A" and "A" are both label A, probabilities
        added up), so that tokenizers that glue a space to the letter are read the same way.
        """
        data = await self._chat(
            {
                "messages": messages,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": top_logprobs,
            }
        )
        try:
            first = data["choices"][0]["logprobs"]["content"][0]
            entries = first.get("top_logprobs") or [first]
            pairs = [(str(e["token"]).strip(), float(e["logprob"])) for e in entries]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LLMError(f"LLM answer has no log-probabilities: {str(data)[:200]}") from exc
        wanted = set(labels)
        found: dict[str, float] = {}
        for token, logprob in pairs:
            if token in wanted and math.isfinite(logprob):
                found[token] = (
                    logprob
                    if token not in found
                    else math.log(math.exp(found[token]) + math.exp(logprob))
                )
        return found

    async def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """How many tokens the server counts for `messages` (a one-token call's usage)."""
        data = await self._chat({"messages": messages, "max_tokens": 1, "temperature": 0.0})
        try:
            return int(data["usage"]["prompt_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LLMError(f"LLM answer has no usage figures: {str(data)[:200]}") from exc

    async def ready(self) -> bool:
        try:
            response = await self._http.get("models", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._http.aclose()
