"""GSF Bench."""
