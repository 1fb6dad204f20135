"""docs/robustness.md's bad-input table is the list in bad_input_cases.py, and every case is sent through ROS
by a test."""
import importlib
import pathlib

from bad_input_cases import CASES, table

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEST_DIR = pathlib.Path(__file__).resolve().parent


def test_robustness_page_bad_input_table_is_rendered_from_the_cases():
    page = (ROOT / "docs" / "robustness.md").read_text()
    start, end = "<!-- bad-input-table -->\n", "\n<!-- /bad-input-table -->"
    assert start in page and end in page
    assert page.split(start, 1)[1].split(end, 1)[0] == table(), \
        "docs/robustness.md's table is stale: paste bad_input_cases.table() between the markers"


def test_every_bad_input_case_is_covered_by_a_test():
    covered = set()
    for path in TEST_DIR.glob("test_*.py"):
        module = importlib.import_module(path.stem)
        for name in dir(module):
            covered.update(getattr(getattr(module, name), "bad_input_cases", ()))
    assert covered == set(CASES), f"not covered: {set(CASES) - covered}"
