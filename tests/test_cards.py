"""Every notebook carries its card (rendered from eyegen_lib/suite/cards.py), and eyegen run stops a
notebook that runs past its time, saying where it stopped."""
import time

import nbformat
import pytest

from eyegen_lib.suite.cards import CARDS, MIN_TIMEOUT_S, TIMEOUT_FACTOR, card_markdown, timeout_for
from eyegen_lib.suite.runner import NotebookTimeout, list_notebooks, run_notebook


@pytest.mark.parametrize("notebook", list_notebooks(), ids=lambda p: p.stem)
def test_each_notebook_opens_with_its_card(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    cards = [c for c in cells if "card" in c.get("metadata", {}).get("tags", [])]
    assert len(cards) == 1 and cells.index(cards[0]) == 1, "one card cell, right under the title"
    assert cards[0].source == card_markdown(notebook.stem), "stale card: run `eyegen notebooks cards`"


def test_time_limits_follow_the_measured_times_with_margin():
    assert timeout_for("06_gaze_gan", "cpu") == max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * CARDS["06_gaze_gan"].seconds["cpu"]["zoo"])
    assert timeout_for("01_dataset", "cpu") == MIN_TIMEOUT_S, "never below the floor"
    assert timeout_for("06_gaze_gan", "paper") is None, "no limit where the notebook was never timed"


def test_a_notebook_past_its_time_is_stopped_and_says_so(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(120)")],
                                  metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    nbformat.write(nb, tmp_path / "99_sleepy.ipynb")
    started = time.monotonic()
    with pytest.raises(NotebookTimeout, match="ran past its 8 s"):
        run_notebook(tmp_path / "99_sleepy.ipynb", "smoke", tmp_path / "out", timeout=8)
    assert time.monotonic() - started < 90, "stopped at its deadline, not after the cell"
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "99_sleepy.ipynb", as_version=4)
    assert executed.cells[-1].metadata["papermill"]["duration"] < 60, "the copy shows the cell it stopped in"


def test_the_readme_table_is_rendered_from_the_cards():
    from eyegen_lib.core.paths import project_root
    from eyegen_lib.suite.cards import README_END, README_START, cards_table

    text = (project_root() / "README.md").read_text()
    assert text.split(README_START, 1)[1].split(README_END, 1)[0].strip() == cards_table().strip(), \
        "stale README table: run `eyegen notebooks cards`"
