"""MEGA-Bench: strings (being written)."""
