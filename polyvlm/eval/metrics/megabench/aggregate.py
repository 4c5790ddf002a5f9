"""MEGA-Bench: aggregate (being written)."""
