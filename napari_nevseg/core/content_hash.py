"""The identity of a model file by its content, not its name or date.

A batch run records which model made its masks; a copied or renamed file is the same model,
a file retrained in place is not. (``ModelSession`` may take this over as a property; until
then it is a plain function of the file.)
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]


def file_sha256(path: str | os.PathLike[str], block_size: int = 1 << 20) -> str:
    """The SHA-256 of the file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()
