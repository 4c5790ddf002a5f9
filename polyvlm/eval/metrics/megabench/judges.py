"""MEGA-Bench: judges (being written)."""
