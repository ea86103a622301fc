"""The README's benchmark tables are rendered from the result files they name, never typed: each
``<!-- rendered by docs/X.py from bench/results/Y.json -->`` line is followed by exactly what that
script renders from that file."""

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- rendered by (docs/\w+\.py) from (bench/results/[\w.-]+\.json) -->\n")


def _render(script: str, results: str) -> str:
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tables(json.loads((ROOT / results).read_text()))


def test_readme_tables_are_the_rendered_result_files():
    readme = (ROOT / "README.md").read_text()
    markers = list(MARKER.finditer(readme))
    scripts = {m[1] for m in markers}
    assert scripts == {"docs/attention_tables.py", "docs/dit_tables.py"}, scripts
    for m in markers:
        rendered = _render(m[1], m[2])
        assert readme[m.end():].startswith(rendered + "\n"), (
            f"the table after '{m[0].strip()}' is not what {m[1]} renders from {m[2]}: render it again")
