"""Scoring students against their teacher (``dfkd eval``): the task's metrics, agreement and kappa with the
teacher, size and CPU latency. The main job that uses it, ``dfkd compare``, is :mod:`dfkd.compare`."""
