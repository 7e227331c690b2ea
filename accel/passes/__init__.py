"""accel's own Relax passes, one per file, named after the pass."""
