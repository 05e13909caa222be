"""Recorded ticks replayed through the stop engine, per rule variant, with a report (README: Record and replay)."""
from __future__ import annotations
