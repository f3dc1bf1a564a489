"""gsf.provenance: the commit a checkpoint and its MLflow run record, ``-dirty`` when tracked files changed."""

import subprocess

import pytest

from gsf.provenance import code_version, git_commit


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_commit_gets_dirty_when_a_tracked_file_changes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert git_commit(repo) == head == code_version(repo)
    (repo / "untracked.txt").write_text("new\n")  # untracked files do not count
    assert git_commit(repo) == head
    (repo / "a.txt").write_text("two\n")
    assert git_commit(repo) == head + "-dirty" == code_version(repo)


def test_results_written_by_the_suite_do_not_make_the_code_dirty(tmp_path):
    """gsf demo rewrites the committed results/demo: the next sweep still runs the committed code."""
    repo = tmp_path / "repo"
    (repo / "results" / "demo").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "results" / "demo" / "table.md").write_text("old\n")
    (repo / "code.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    (repo / "results" / "demo" / "table.md").write_text("new\n")
    assert git_commit(repo) == head
    (repo / "code.py").write_text("x = 2\n")
    assert git_commit(repo) == head + "-dirty"


def test_outside_a_checkout_there_is_no_commit_and_the_version_names_the_package(tmp_path):
    import gsf

    if subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True).returncode == 0:
        pytest.skip("the temporary folder lies inside a git checkout")
    assert git_commit(tmp_path) is None
    assert code_version(tmp_path) == f"gsf-bench {gsf.__version__}"


def test_a_package_folder_inside_another_repository_is_not_that_repositorys_code(tmp_path):
    """An installed copy under some repository's .venv: the enclosing repository's commit is not its version."""
    import gsf

    repo = tmp_path / "repo"
    site = repo / ".venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "first")
    assert git_commit(repo) is not None
    assert git_commit(site) is None
    assert code_version(site) == f"gsf-bench {gsf.__version__}"
