"""Run pytest and exit with its status, skipping interpreter teardown.

The Temporal SDK's native runtime can crash at interpreter exit after everything has
finished (sdk-python #300, `Fatal Python error: PyGILState_Release`). That crash must
not turn a green run red, so once pytest has returned we flush and leave with its code.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))
