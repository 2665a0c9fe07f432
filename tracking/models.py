"""Vendor positions (latest + history) and their public approximation. Built by the live-map work."""
