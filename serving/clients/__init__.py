"""I/O at the edges: the history store (Redis) and the embedded redis-server."""
