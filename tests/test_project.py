"""The project's own promises: CI runs the README's test command; the embedded book ships with the package."""
import re

from conftest import ROOT


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```\n(pip install[^\n]*)\n```", readme)
    assert len(commands) == 2, commands  # one installs and trains, one installs and tests
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_and_setup_cfg_name_the_same_python_and_it_is_this_one():
    import sys

    setup = (ROOT / "setup.cfg").read_text()
    version = re.search(r"python_requires = >=(3\.\d+)", setup).group(1)
    assert f"Python {version}+" in (ROOT / "README.md").read_text()
    assert sys.version_info >= tuple(map(int, version.split(".")))  # the suite runs on a supported Python
    assert version == "3.11"  # tfseq.config imports tomllib, new in 3.11


def test_embedded_book_is_package_data():
    setup = (ROOT / "setup.cfg").read_text()
    assert "books/*.txt" in setup and (ROOT / "tfseq" / "data" / "books" / "1268-0.txt").is_file()
