"""The service: the parts that need Redis or HTTP.

``api`` (FastAPI routes; every decision asked of ``govlab.policy.access``),
``identity`` (signed bearer tokens), ``cache`` (the Redis page cache), ``jobs`` (RQ seed
jobs and their progress records), ``audit`` (the trail, per dataset) and
``redis_server`` (an embedded Redis when ``REDIS_URL`` is unset). Nothing here is
imported by the core (policy, masks, engines, search); the lab reaches the service
only over HTTP (``govlab.lab.client``).
"""
