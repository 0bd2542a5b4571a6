"""The one exception type the CLI turns into a single readable line."""


class DfkdError(Exception):
    """Bad input or a failed precondition, with a message that names the problem and what was expected.

    The ``dfkd`` command prints ``error: <message>`` and exits with status 2 instead of a traceback.
    """
