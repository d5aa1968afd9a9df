"""intake's adapters layer."""
