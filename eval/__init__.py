"""Scoring students against their teacher (``dfkd eval``) and the main job, ``dfkd compare``.

The top library layer: importing it imports every generator package (:mod:`dfkd.augment`,
:mod:`dfkd.zeroshot`), so their generators and training strategies are registered for ``compare`` and the CLI.
"""

from .. import augment, zeroshot  # noqa: F401  (registers the generators and the adversarial strategy)
