"""Offline to online: ONNX export, FAISS index and the bundle format (bundle.py is torch-free)."""
