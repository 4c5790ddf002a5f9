"""MEGA-Bench: geo (being written)."""
