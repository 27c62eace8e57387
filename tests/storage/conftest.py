from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chdb_dir(session_tmp: Path) -> Path:
    """The one chDB data directory of this test process: chDB allows only one per process.

    Tests keep apart by using their own ``database=`` inside it.
    """
    path = session_tmp / "chdb"
    path.mkdir(exist_ok=True)
    return path.resolve()
