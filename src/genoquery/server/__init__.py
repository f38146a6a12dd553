"""The local query server: a versioned JSON API and a GA4GH Beacon v2 over one store.

``genoquery serve STORE`` runs :func:`genoquery.server.app.create_app` on uvicorn. Access
tiers, API tokens, disclosure control, query budgets and the audit log are described in
``docs/architecture.md`` (section "Server").
"""
