"""Sign-in providers."""
