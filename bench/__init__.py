"""Benchmarks: each compares a riskreg command with a plain baseline measured side by side."""
