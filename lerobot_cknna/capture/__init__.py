"""Capture feat A from a LeRobot policy: the hook table (where each type computes it) and the hooks that read it."""
