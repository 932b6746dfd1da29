"""The CLI's terminal output: one console, and messages printed as they are."""

from __future__ import annotations

from rich.console import Console

console = Console()


def say(message: str) -> None:
    """Print one message without wrapping it: commands and paths paste as printed."""
    console.print(message, soft_wrap=True, highlight=False)
