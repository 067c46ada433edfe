"""Offline stand-in for ansible-test's get-pip bootstrap script.

ansible-test builds a venv per sanity test and bootstraps pip in it by downloading
get-pip-<version>.py, which this machine cannot reach. It runs the cached file as a module with
pip's install arguments; this stand-in bootstraps pip from the interpreter's own ``ensurepip``,
then installs the requested versions through the configured package index.
"""

import ensurepip
import os
import subprocess
import sys


def main() -> None:
    ensurepip.bootstrap(upgrade=False)
    os.environ.pop("PIP_CONFIG_FILE", None)  # ensurepip sets it to /dev/null; pip needs the machine's config
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))


if __name__ == "__main__":
    main()
