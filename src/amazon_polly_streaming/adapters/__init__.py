"""Optional framework adapters (extras)."""
