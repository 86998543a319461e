"""The web side: Flask blueprints, one per resource (the pages' under ``pages/``), that parse a
request, call the core (``predictionservice``: prediction, datasets, models) and render; no
blueprint module imports another (tests/test_layout.py).

``modelservice.modelservice(params)`` builds the app from these; each view reaches the app's
collaborators through ``services()`` (flaskr's ``get_db`` pattern), never through a global.
"""
