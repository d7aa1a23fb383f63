"""Every input that once crashed the GGUF loader (found by tools/fuzz.sh, kept in
tests/data/fuzz_regressions/) is now refused with one clean pyrnn.FormatError."""

from __future__ import annotations

from pathlib import Path

import pytest

import pyrnn
from pyrnn import _core

REGRESSIONS = sorted((Path(__file__).parent / "data" / "fuzz_regressions").glob("*.gguf"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_fuzz_regression_is_a_format_error(path: Path) -> None:
    """The file that crashed is refused by pyrnn.load with FormatError naming a field."""
    with pytest.raises(_core.FormatError, match="expected"):
        pyrnn.load(path)
