"""Test-only support code (nothing here is installed in production)."""
