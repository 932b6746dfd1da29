"""The one-client run's blocking HTTP client, against real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from serving.bench import BlockingConnection


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def _serve_in_pieces(listener: socket.socket, pieces: list[bytes], requests: int) -> None:
    conn, _ = listener.accept()
    with conn:
        for _ in range(requests):
            conn.recv(65536)
            for piece in pieces:
                conn.sendall(piece)
                time.sleep(0.01)  # separate segments: the client must reassemble them


def test_a_response_split_across_segments_is_read_whole(listener: socket.socket) -> None:
    pieces = [b"HTTP/1.1 200 OK\r\ncontent-le", b'ngth: 11\r\n\r\n{"ok":', b"true}"]
    server = threading.Thread(target=_serve_in_pieces, args=(listener, pieces, 2), daemon=True)
    server.start()
    conn = BlockingConnection("127.0.0.1", listener.getsockname()[1])
    for _ in range(2):  # the same kept-alive connection
        assert conn.post("/recommend", b"{}") == (200, b'{"ok":true}')
    conn.close()
    server.join(5)


def test_a_silent_server_ends_the_request_with_an_error(listener: socket.socket) -> None:
    conn = BlockingConnection("127.0.0.1", listener.getsockname()[1])
    conn.TIMEOUT_S = 1
    with pytest.raises(OSError):
        conn.request("GET", "/healthz")
    conn.close()


def test_a_server_closing_mid_response_is_an_error(listener: socket.socket) -> None:
    def half_answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{")
        conn.close()

    threading.Thread(target=half_answer, daemon=True).start()
    conn = BlockingConnection("127.0.0.1", listener.getsockname()[1])
    with pytest.raises(ConnectionError):
        conn.request("GET", "/healthz")
    conn.close()
