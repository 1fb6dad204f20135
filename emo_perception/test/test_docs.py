"""The documents stay true: docs/ros_api.md is what the code renders, the README stays a ten-minute page
that links every docs page, and no link in the README or docs/ points at a file or section that is gone."""
import pathlib
import re

from emo_perception.nodes import ros_api_doc

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_BYTES = 10_240
LINK = re.compile(r"\]\(([^)\s]+)\)")            # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _pages():
    return [README, *sorted(DOCS.glob("*.md")), ROOT / "CHANGELOG.md"]


def _links(path: pathlib.Path):
    """Relative link targets of a markdown file, outside code blocks (web addresses left out)."""
    text = FENCE.sub("", path.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: pathlib.Path) -> set:
    text = FENCE.sub("", path.read_text())
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_ros_api_page_is_rendered_from_the_node_classes_and_configs():
    assert (DOCS / "ros_api.md").read_text() == ros_api_doc.render(), \
        f"docs/ros_api.md is stale: run `{ros_api_doc.REGENERATE}` from the repository root"


def test_readme_is_a_ten_minute_page():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; at most {README_MAX_BYTES}: move detail to docs/"


def test_readme_links_every_docs_page_and_each_exists():
    linked = {t.split("#")[0] for t in _links(README) if t.startswith("docs/") and ".md" in t}
    missing = sorted(t for t in linked if not (ROOT / t).is_file())
    assert not missing, f"README.md links docs pages that do not exist: {missing}"
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert not pages - linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def test_every_relative_link_in_readme_and_docs_points_at_an_existing_file_and_heading():
    broken = []
    for page in _pages():
        for target in _links(page):
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
