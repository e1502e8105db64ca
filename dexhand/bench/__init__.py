"""Benchmarks that print figures (`dexhand bench ...`): speed and quality targets live here, not in tests."""
