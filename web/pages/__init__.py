"""The web pages under /ui/, one blueprint per resource: ``home`` (the redirect, the token form,
the pages' static files and template helpers), ``models``, ``jobs``, ``training``, ``datasets``,
``keys`` (an admin key's: make, list and revoke keys), ``registry`` (the named models: versions,
aliases moved by an admin key's form, history), ``monitor`` (a named model's quality and drift).

Server-rendered with Jinja (autoescaped, templates in web/templates/ui), working without
JavaScript; ``static/ui.js`` only moves progress bars while a job runs. Every page calls the
core the API calls (``services().predictions``, ``.datasets``, ``.stored_models``, the stores),
never a second implementation; a page's error shows the API's status and message
(``common.page_blueprint``). The guard asks for the token and checks each form's CSRF token
(web/guard.py). No page module imports another blueprint module (tests/test_layout.py).
"""

from web.pages import datasets, home, jobs, keys, models, monitor, registry, training

BLUEPRINTS = (home.bp, models.bp, jobs.bp, training.bp, datasets.bp, keys.bp, registry.bp, monitor.bp)
