"""Start-up: what each process of a pool loads, and when. Each check runs in a fresh
interpreter, since what a module imports or a process has loaded is per process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hybrid.embed.use import UseEmbedder, load_weights
from hybrid.errors import EnvironmentFault


def _python(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_parent_of_a_worker_pool_imports_neither_the_index_nor_the_llm_client():
    """`tag-file --workers N`'s own process reads and writes the files: scikit-learn, FAISS
    and the LLM's HTTP client are its workers' (or, with the LLM on, imported then)."""
    _python("import sys\n"
            "import hybrid.cli.base, hybrid.cli.tag, hybrid.batch.tag_file\n"
            "heavy = [m for m in ('sklearn', 'faiss', 'httpx', 'hybrid.llm.refine', "
            "'hybrid.learn.model') if m in sys.modules]\n"
            "assert not heavy, heavy\n")


def test_the_tag_file_command_imports_the_tagging_code_only_when_it_runs():
    """So that it can start the fork server (scikit-learn's imports, in a process of its
    own) before it imports anything heavy itself."""
    _python("import sys\n"
            "import hybrid.cli.tag\n"
            "assert 'hybrid.batch.tag_file' not in sys.modules\n")


def test_the_run_command_starts_the_fork_server_before_it_imports_the_nightly_job(
        sample_model_dir):
    """`hybrid run --workers N` as `tag-file`: the fork server's imports run beside the
    command's own (the nightly job, pymongo), which wait until it has started."""
    _python("import sys\n"
            "import hybrid.cli.run\n"
            "import hybrid.batch.processes as processes\n"
            "assert 'hybrid.batch.nightly' not in sys.modules\n"
            "class Started(Exception):\n"
            "    pass\n"
            "def start(model_dir):\n"
            "    assert 'hybrid.batch.nightly' not in sys.modules, 'imported before'\n"
            "    raise Started\n"
            "processes.start_fork_server = start\n"
            "from hybrid.cli.base import main\n"
            "try:\n"
            f"    main(['run', '--model', {str(sample_model_dir)!r}, '--workers', '2'], "
            "standalone_mode=False)\n"
            "except Started:\n"
            "    pass\n"
            "else:\n"
            "    raise AssertionError('the fork server was never started')\n")


def test_the_nightly_jobs_own_process_imports_neither_the_models_code_nor_the_llm_client():
    """With the LLM off, `hybrid run --workers N`'s process scans and writes: scikit-learn,
    numpy and the LLM's HTTP client are its workers' (0.3 CPU-seconds less before the
    first batch is handed out)."""
    _python("import sys\n"
            "import hybrid.cli.base, hybrid.cli.run, hybrid.batch.nightly\n"
            "heavy = [m for m in ('sklearn', 'numpy', 'httpx', 'hybrid.llm.refine', "
            "'hybrid.learn.model') if m in sys.modules]\n"
            "assert not heavy, heavy\n")


def test_weights_that_cannot_load_are_left_to_the_first_embed_to_report(monkeypatch):
    def broken() -> None:
        raise EnvironmentFault("no weights")

    monkeypatch.setattr("hybrid.embed.use._model", broken)
    load_weights()  # the fork server's preload does not fail...
    with pytest.raises(EnvironmentFault, match="no weights"):
        UseEmbedder().embed(["文本"])  # ...a worker's first article does, where that is handled


def test_a_process_builds_one_jieba_dictionary_fewer_and_no_segmenter_sees_anothers_words():
    """rjieba's import builds a dictionary nothing calls: the first segmenter takes it."""
    _python("import rjieba\n"
            "from hybrid.ingest.segment import Segmenter\n"
            "first, second = Segmenter(vocabulary=['甲乙丙丁戊']), Segmenter()\n"
            "assert first.jieba is rjieba._DEFAULT_JIEBA\n"
            "assert second.jieba is not first.jieba\n"
            "assert first.jieba.has_word('甲乙丙丁戊')\n"
            "assert not second.jieba.has_word('甲乙丙丁戊')\n"
            "assert first.words('甲乙丙丁戊的配置') == Segmenter(vocabulary=['甲乙丙丁戊'])"
            ".words('甲乙丙丁戊的配置')\n")


def test_the_fork_server_loads_the_default_embedders_weights_once_for_every_worker(
        sample_model_dir, tmp_path):
    (tmp_path / "probe.py").write_text("def loaded():\n"
                                       "    from hybrid.embed.use import _model\n"
                                       "    return _model.cache_info().currsize\n")
    _python("import sys\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "from concurrent.futures import ProcessPoolExecutor\n"
            "from probe import loaded\n"
            "from hybrid.batch.processes import fork_server, start_fork_server\n"
            f"start_fork_server({str(sample_model_dir)!r})\n"
            "with ProcessPoolExecutor(2, mp_context=fork_server('use-multilingual')) as pool:\n"
            "    counts = [pool.submit(loaded).result() for _ in range(4)]\n"
            "assert counts == [1, 1, 1, 1], counts\n"
            "assert loaded() == 0  # the server's, not this process's\n")


def test_serve_imports_its_web_stack_before_it_waits_for_the_fork_server(sample_model_dir):
    """A worker is forked only once the fork server's imports are done: the front process
    imports uvicorn and the app meanwhile, not after that wait."""
    _python("import sys\n"
            "import hybrid.serve.workers as workers\n"
            "from hybrid.config import Config\n"
            "from hybrid.serve.server import serve\n"
            "class Launched(Exception):\n"
            "    pass\n"
            "def launch(generation, *args):\n"
            "    generation.discard()\n"
            "    assert {'uvicorn', 'hybrid.serve.app'} <= set(sys.modules), 'not imported yet'\n"
            "    raise Launched\n"
            "workers.launch = launch\n"
            "try:\n"
            f"    serve(Config(serve_port=0), {str(sample_model_dir)!r}, None, None, None, None, "
            "print)\n"
            "except Launched:\n"
            "    pass\n"
            "else:\n"
            "    raise AssertionError('the workers were never launched')\n")
