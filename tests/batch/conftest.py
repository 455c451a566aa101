"""The batch tests' collection: 20 files in a small tree, 2 of them bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobbatch import make_collection


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_collection(tmp_path_factory.mktemp("collection"))
