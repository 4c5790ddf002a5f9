"""MEGA-Bench: program (being written)."""
