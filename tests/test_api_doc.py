"""The API page's example runs as written (taken from docs/api.md) and reaches its promise."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def test_train_a_vgae_on_my_data_example(capsys):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert "model(data.x, split.mp_edge_index)" in block  # the PyG-style call, not a SparseGraph
    scope: dict = {}
    exec(compile(block, str(DOC), "exec"), scope)
    assert scope["metrics"]["test_auc"] >= 0.90, scope["metrics"]
    assert "test AUC" in capsys.readouterr().out
