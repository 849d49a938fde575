"""The deployment API: REST endpoints, SQLite state, a bearer token and a live dashboard.

`app` builds the aiohttp application (routes in `routes`, OpenAPI from `openapi`), `deployments`
owns one LocalRuntime per deployment inside one asyncio loop, `store` keeps deployments, their
decisions and time series in SQLite, `auth` the token, `sampler` the dashboard's series.
"""
