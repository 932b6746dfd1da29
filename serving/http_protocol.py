"""uvicorn's HTTP/1.1 protocol (httptools), writing each response's head and body in one send.

uvicorn writes a response's status line and headers as soon as the app starts the response,
and the body in a second write. On loopback each write is a trip through the TCP stack that
wakes the client, ~0.01 ms of a ~0.4 ms round trip; one write carries the whole response here.
Everything else is uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn's `http` option (`--http` on its command line) for this protocol.
HTTP_PROTOCOL = "serving.http_protocol:HeadBodyProtocol"

_STATUS_LINE = b"HTTP/1.1 "
_INFORMATIONAL = _STATUS_LINE + b"1"  # a 1xx ("100 Continue") must go out at once
_HEAD_END = b"\r\n\r\n"


class _HeadHoldingTransport:
    """A transport that holds a response head until the write that follows it (the body), the
    connection's close, or the end of the event loop's current step, whichever comes first:
    a streaming response's head is never held while the app waits for its first chunk."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data = self._head + data
            self._head = None
        elif (
            data.startswith(_STATUS_LINE)
            and data.endswith(_HEAD_END)
            and not data.startswith(_INFORMATIONAL)
        ):  # a final response's head, alone
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    # uvicorn's per-request calls, spelled out: reaching them through __getattr__ would first
    # raise (and format) an AttributeError on every call.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class HeadBodyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `_HeadHoldingTransport` (uvicorn `http=` option)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHoldingTransport(transport, self.loop))  # type: ignore[arg-type]
