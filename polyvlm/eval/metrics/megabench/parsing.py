"""MEGA-Bench: parsing (being written)."""
