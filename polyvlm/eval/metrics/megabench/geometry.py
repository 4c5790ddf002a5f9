"""MEGA-Bench: geometry (being written)."""
