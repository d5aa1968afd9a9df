"""intake's application layer."""
