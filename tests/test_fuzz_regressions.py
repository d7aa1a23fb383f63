"""Every input that once tripped a sanitizer or crashed the GGUF loader (found by tools/fuzz.sh, kept in
tests/data/fuzz_regressions/) is now handled: `reject-*.gguf` files are refused with one clean
pyrnn.FormatError; `run-*.gguf` files are well-formed models with hostile values (NaN/inf weights,
which the loader does not scan for: that would read the whole file) that must load and run without
undefined behaviour. tools/ci_reliability.sh runs this file under ASan + UBSan, where a regression aborts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyrnn

FOLDER = Path(__file__).parent / "data" / "fuzz_regressions"
REJECT = sorted(FOLDER.glob("reject-*.gguf"))
RUN = sorted(FOLDER.glob("run-*.gguf"))


def test_every_regression_file_is_classified() -> None:
    """Each file in the folder is a reject-* or run-* case (none silently ignored)."""
    assert sorted(FOLDER.glob("*.gguf")) == sorted(REJECT + RUN)
    assert REJECT or RUN


def test_rejected_inputs_are_format_errors() -> None:
    """Each reject-* file (once a crash) is refused by pyrnn.load with FormatError naming a field."""
    for path in REJECT:
        with pytest.raises(pyrnn.FormatError, match="expected"):
            pyrnn.load(path)


@pytest.mark.parametrize("path", RUN, ids=[p.name for p in RUN])
def test_hostile_values_run_and_propagate(path: Path) -> None:
    """A model with non-finite weights runs token 0 and yields float32 logits of the right shape
    (NaN where the bad weights reach: garbage in is not hidden as finite garbage out)."""
    model = pyrnn.load(path)
    logits = model.forward([0], model.new_state())
    assert logits.shape == (model.n_vocab,) and logits.dtype == np.float32
    assert not np.isfinite(logits).all()
