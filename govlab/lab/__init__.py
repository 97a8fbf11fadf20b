"""The notebook edge: what a trainee or an operator touches in Jupyter.

``client`` (the typed HTTP client and a launcher for a local ``govlab serve``),
``widgets`` (the eight-stage stepper, on the client only), ``voila`` (the stepper as a
web app), ``notebook`` (the set-up cell the training notebooks share) and ``demo``
(``govlab demo``).
"""
