"""Closed-form maximum-likelihood fits."""
from __future__ import annotations

__all__: list[str] = []
