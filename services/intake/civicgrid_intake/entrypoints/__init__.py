"""intake's entrypoints layer."""
