"""`hwscore train --weights`: weights that do not fit the network stop before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from hwmodels.cli import main


def test_weights_that_do_not_fit_exit_2_naming_the_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mlp.safetensors"
    save_file(
        {
            "0.weight": np.zeros((16, 784), np.float32),
            "0.bias": np.zeros(16, np.float32),
            "2.weight": np.zeros((10, 16), np.float32),
        },
        str(path),
    )
    code = main(["train", "--weights", str(path), "--hidden", "16", "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert "missing tensor 'layers.1.bias'" in error and "shape [10]" in error
    assert main(["train", "--weights", str(tmp_path / "none.pt"), "--quiet"]) == 2
    assert "No such file" in capsys.readouterr().err
