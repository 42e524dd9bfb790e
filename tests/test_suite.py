"""The test suite itself: two runs side by side share no file, and nothing lands outside pytest's
temporary folder (the system's temporary folder is shared by every run on the machine)."""

import os
import re
from pathlib import Path

from conftest import ROOT

FIXED_TEMPORARY = re.compile(r"""["']/tmp/|tempfile\.(?:mkdtemp|mkstemp|gettempdir|NamedTemporaryFile|TemporaryDirectory)""")


def test_the_cache_and_the_question_log_live_under_this_runs_temporary_folder(tmp_path_factory):
    base = tmp_path_factory.getbasetemp().resolve()
    for variable in ("FAQBOT_CACHE", "FAQBOT_LOG_DIR"):
        assert Path(os.environ[variable]).resolve().is_relative_to(base), variable


def test_no_test_names_a_file_in_the_system_temporary_folder():
    offenders = [f"{path.name}:{number}"
                 for path in sorted((ROOT / "tests").glob("*.py")) if path.name != Path(__file__).name
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if FIXED_TEMPORARY.search(line)]
    assert not offenders
