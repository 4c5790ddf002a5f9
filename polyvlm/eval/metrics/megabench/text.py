"""MEGA-Bench: text (being written)."""
