"""MEGA-Bench: constrained (being written)."""
