"""LIBERO offline: set-up with no prompt and no download, and recording datasets from the simulator."""
