"""The HTTP face of tickguard: the Starlette app, its routes and handlers, the browser feed and the
dashboard. The only package of `service` that knows Starlette; it maps the domain's values and
errors to HTTP once (`errors.py`)."""
