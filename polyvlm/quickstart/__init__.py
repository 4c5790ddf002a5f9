"""The built-in quick start: synthetic multilingual scenes, a tiny model trained in stages, a report."""
