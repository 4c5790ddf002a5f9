"""MEGA-Bench: planning (being written)."""
