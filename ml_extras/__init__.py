"""Auxiliary learning modules from dexhand's research lineage: small, tested reproductions.

Each module runs as ``python -m ml_extras.<module> --quick`` (<= 2 minutes on 2 cores) or in full
mode, prints its table and writes a JSON. Shared plumbing lives in :mod:`ml_extras.common`.
"""
