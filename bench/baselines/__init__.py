"""Baseline servers for bench/compare.py (ceilings and alternatives, not product code)."""
