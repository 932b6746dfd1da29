"""`HeadBodyProtocol`: one write per plain response, and no response held back.

A real uvicorn server on 127.0.0.1 runs the protocol; the test subclass only records what
reaches the real transport, which still carries every byte."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from serving.http_protocol import HeadBodyProtocol

STREAM_PAUSE_S = 0.5
writes: list[bytes] = []


class _Recording:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class RecordingProtocol(HeadBodyProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


async def _plain(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"got": (await request.body()).decode()})


async def _stream(request: Request) -> StreamingResponse:
    async def chunks():
        await asyncio.sleep(STREAM_PAUSE_S)
        yield b"late"

    return StreamingResponse(chunks(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/plain", _plain, methods=["GET", "HEAD"]),
        Route("/echo", _echo, methods=["POST"]),
        Route("/stream", _stream),
    ]
)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=free, log_level="warning", http=RecordingProtocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket, head_only: bool = False) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    if head_only:
        return head, body
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_a_plain_response_is_one_write_on_a_kept_alive_connection(port: int) -> None:
    with _connect(port) as sock:
        for _ in range(3):
            writes.clear()
            sock.sendall(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
            head, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200")
            assert body == b'{"ok":true}'
            assert writes == [head + b"\r\n\r\n" + body]


def test_a_head_request_gets_its_head_without_a_body_write(port: int) -> None:
    with _connect(port) as sock:
        writes.clear()
        sock.sendall(b"HEAD /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        head, rest = _read_response(sock, head_only=True)
        assert head.startswith(b"HTTP/1.1 200")
        assert rest == b""
        assert len(writes) == 1


def test_100_continue_goes_out_before_the_client_sends_its_body(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(b"hello")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b'{"got":"hello"}'


def test_a_streaming_head_is_not_held_until_the_first_chunk(port: int) -> None:
    with _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _ = _read_response(sock, head_only=True)
        assert head.startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < STREAM_PAUSE_S
        rest = b""
        while b"0\r\n\r\n" not in rest:
            rest += sock.recv(65536)
        assert b"late" in rest
