"""Small utilities: atomic writes, patch-and-restore, the console scripts' error handling."""
