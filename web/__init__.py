"""The web side: Flask blueprints, one per resource, that adapt HTTP to the core.

``modelservice.modelservice(params)`` builds the app from these; each view reaches the app's
collaborators through ``services()`` (flaskr's ``get_db`` pattern), never through a global.
"""
