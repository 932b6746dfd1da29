"""Online: the FastAPI recommendation service (never imports torch)."""
