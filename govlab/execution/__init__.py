"""Execution past one machine: the same bound policy run by Daft, natively or on Ray.

``GOVLAB_EXECUTION=daft`` makes the governed search read the pinned table version with
Daft and compute the same page as the in-process engines (``daft.page``); a governed
export (``export``) writes everything a principal may see, masked, to Parquet, with the
masks as Daft batch UDFs on the workers. ``objectstore`` locates tables on S3 (gs, az)
and publishes a local table version there; ``sources`` pins versions for Daft.

Nothing here is imported by the in-process path: Daft and Ray load only when used.
"""
