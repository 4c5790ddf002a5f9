"""MEGA-Bench: latex (being written)."""
