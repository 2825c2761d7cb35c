"""``levibot api``: the operator API (FastAPI on uvicorn). ``app.create_app`` builds it; ``context`` holds its
services; ``security`` authenticates, authorises and meters every route; ``middleware`` limits request sizes.
Guide: ``docs/api.md``."""
