"""The notebook edge: what a trainee or an operator touches in Jupyter.

``client`` (the typed HTTP client, errors in words, and a launcher for a local ``govlab
serve`` that ``serve_child`` ties to the process that started it), ``widgets`` (the
eight-stage stepper, on the client only), ``views`` (the HTML the stepper and the
notebooks show, no ipywidgets), ``compare`` (choosing roles and a record to compare),
``plots`` (matplotlib charts for the notebooks), ``records`` (what a seed run records:
versions, commit, policy, schema, size, row checksum), ``voila`` (the stepper as a web
app) and ``demo`` (``govlab demo``).
"""
