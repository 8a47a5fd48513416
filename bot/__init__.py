"""Pinwall's platform-free core."""
