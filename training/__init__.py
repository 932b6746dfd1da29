"""Offline: data, models, training and evaluation (needs the `train` extra)."""
