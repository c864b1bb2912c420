"""The traffic plane: trial model, frame and rate arithmetic, generator drivers, search."""
