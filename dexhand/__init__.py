"""dexhand package."""
