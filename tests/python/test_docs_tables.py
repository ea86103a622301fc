"""The README's benchmark tables are rendered from the result files they name, never typed: each
``<!-- rendered by docs/X.py from bench/results/Y.json -->`` line is followed by exactly what that
script renders from that file."""

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- rendered by (docs/\w+\.py) from (bench/results/[\w.-]+\.json) -->\n")


def _script(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(script: str, results: str) -> str:
    return _script(script).tables(json.loads((ROOT / results).read_text()))


def test_the_attention_table_has_quantized_columns_exactly_when_the_run_had_them():
    result = json.loads((ROOT / "bench/results/attention_sm90_runs_NVIDIA_H200_2026-12-01.json").read_text())
    render = _script("docs/attention_tables.py").tables
    assert "fp8" not in render(result)
    result["results"][1].update(fp8_ms=50.0, fp8_speedup_vs_lvsa=1.278, fp8_max_err_vs_fp64=1.5e-2)
    lines = render(result).splitlines()
    assert lines[2].endswith("| LVSA fp8 scores ms | x LVSA | fp8 max error vs float64 |")
    assert lines[5].endswith("| 50.0 | 1.28 | 1.5e-02 |")  # the row that had them
    assert lines[4].endswith("|  |  |  |")
    # int8 scores get their own three columns after fp8's, in a run that had both.
    result["results"][1].update(int8_ms=49.0, int8_speedup_vs_lvsa=1.304, int8_max_err_vs_fp64=6e-3)
    lines = render(result).splitlines()
    assert lines[2].endswith("| fp8 max error vs float64 | LVSA int8 scores ms | x LVSA | int8 max error vs float64 |")
    assert lines[5].endswith("| 50.0 | 1.28 | 1.5e-02 | 49.0 | 1.30 | 6.0e-03 |")


def test_readme_tables_are_the_rendered_result_files():
    readme = (ROOT / "README.md").read_text()
    markers = list(MARKER.finditer(readme))
    scripts = {m[1] for m in markers}
    assert scripts == {"docs/attention_tables.py", "docs/dit_tables.py"}, scripts
    for m in markers:
        rendered = _render(m[1], m[2])
        assert readme[m.end():].startswith(rendered + "\n"), (
            f"the table after '{m[0].strip()}' is not what {m[1]} renders from {m[2]}: render it again")


def test_the_bound_is_taken_against_dense_on_valid_tokens_where_it_ran():
    render = _script("docs/dit_tables.py").bound_table
    profile = dict(kinds_ms=dict(attention=750.0, gemm=250.0), total_ms=1000.0)
    rows = [dict(frames=193, latent_frames=49, density=0.5, method=m, mode="eager", forward_ms=ms, **extra)
            for m, ms, extra in (("diffusers", 4000.0, dict(profile=profile)),
                                 ("dense-valid-cudnn", 1000.0, dict(profile=profile)),
                                 ("lvsa-cuda", 500.0, {}))]
    lines = render(dict(rows=rows)).splitlines()
    assert "over dense-valid-cudnn:eager" in lines[0]
    # a = 0.75, density 0.5: 1 / (0.25 + 0.375) = 1.6x; 1000 / 500 ms = 2x, 125 % of it
    assert lines[-1] == "| 193 | 0.75 | 0.50 | 1.60x | 2.00x (125% of the bound) |"
    assert render(dict(rows=rows[2:])) == ""  # no profiled dense baseline: no bound
