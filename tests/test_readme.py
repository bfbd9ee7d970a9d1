"""The README's usage example runs as written."""

import re

from conftest import REPO


def test_readme_usage_example_runs(capsys):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "intermediate ['accuracy', 'attention_loss', 'embedding_loss', 'hidden_loss', 'loss', 'prediction_loss'" in out
    assert "prediction ['accuracy', 'loss', 'prediction_loss'" in out
