"""
The suite runs on the Salt release of the lock file its virtualenv was built from
(scripts/setup.sh: .venv from requirements.lock, Salt 3008; .venv-3006 from
requirements-3006.lock, Salt 3006), so `./run test --salt 3006` really tests 3006.
"""

import pathlib
import sys

import pytest
import salt.version

STAMPS = {".requirements.lock": 3008, ".requirements-3006.lock": 3006}


def test_the_salt_release_is_the_one_the_venv_was_built_for():
    prefix = pathlib.Path(sys.prefix)
    built = [(prefix / stamp, major) for stamp, major in STAMPS.items()
             if (prefix / stamp).exists()]
    if not built:
        pytest.skip(f"{prefix} was not built by scripts/setup.sh")
    (stamp, major), = built
    pinned = [line.split("==", 1)[1].strip() for line in stamp.read_text().splitlines()
              if line.lower().startswith("salt==")]
    assert salt.version.__saltstack_version__.major == major
    assert pinned == [salt.version.__version__]
