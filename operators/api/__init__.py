"""Pure logic of the operator API (``levibot api``): key scopes and tiers, API key tokens and their slow hash,
request filters and pagination cursors, audit entries for API calls, control commands built from API requests.

No web framework, no database, no Kafka here: ``flows/api/`` wires these into FastAPI, ``connectors/postgres/api.py``
runs the queries. Guide: ``docs/api.md``.
"""
