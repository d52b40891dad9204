"""Execution backends other than the in-process one (``run.backend``); imported lazily by ``run``.

``dask_backend`` runs the same stages partition by partition on a Dask cluster and needs the
``[dask]`` extra (``pip install -e ".[dask]"``).
"""
