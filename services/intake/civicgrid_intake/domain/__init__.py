"""intake's domain layer."""
