"""The operator's live dashboard: pure history and views (model), the aiohttp edge (server)."""
