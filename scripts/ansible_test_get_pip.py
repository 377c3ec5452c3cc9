"""Offline stand-in for the get-pip.py that ``ansible-test`` downloads.

``ansible-test`` bootstraps pip into each virtual environment it creates by running
``get-pip.py`` fetched from a host this project's machines cannot reach.  It looks for a
cached copy at ``~/.ansible/test/cache/get_pip_<version>.py`` first; ``scripts/setup.sh``
copies this file there.  Like the real script, it takes ``pip install`` arguments
(``pip==X.Y --no-setuptools --no-wheel ...``): it bootstraps pip with the interpreter's own
``ensurepip`` and then lets that pip install the requested versions from the package index.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py options that are not ``pip install`` options.
_GET_PIP_ONLY_OPTIONS = frozenset({"--no-setuptools", "--no-wheel"})


def main() -> int:
    """Bootstrap pip, then install the requested packages; return the exit status."""
    install_args = [arg for arg in sys.argv[1:] if arg not in _GET_PIP_ONLY_OPTIONS]
    bootstrap = subprocess.run(
        [sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=False
    )
    if bootstrap.returncode != 0:
        return bootstrap.returncode
    install = subprocess.run([sys.executable, "-m", "pip", "install", *install_args], check=False)
    return install.returncode


if __name__ == "__main__":
    sys.exit(main())
