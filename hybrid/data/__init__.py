"""The files shipped with the package: the sample corpus, dictionaries and stop words."""

from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    return Path(str(resources.files(__name__) / name))
