"""MEGA-Bench: numeric (being written)."""
