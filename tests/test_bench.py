"""`kata bench`: the tables, and what a learner's unfinished, wrong or endless code gets instead of rows."""

import importlib.util
import shutil
import textwrap
import time

import pytest

from graders import bench, cli, curriculum

REFERENCE = curriculum.ROOT / "reference"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run each bench in a fresh folder: with matplotlib installed, it writes its plot there."""
    monkeypatch.chdir(tmp_path)


def run_bench(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["bench", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str, who: str) -> list[list[str]]:
    return [line.split()[1:] for line in out.splitlines() if line.split()[:1] == [who]]


def header(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("code "))


def solutions(tmp_path, kv_cache: str) -> str:
    """A folder holding the reference's attention and this kv_cache.py."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(REFERENCE / "attention.py", folder / "attention.py")
    (folder / "kv_cache.py").write_text(textwrap.dedent(kv_cache))
    return str(folder)


def test_kv_cache_table_on_the_reference(capsys):
    code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", str(REFERENCE))
    assert code == 0, err
    for column in ("tokens", "with cache (ms)", "without (ms)", "speed-up"):
        assert column in header(out)
    for who in ("yours", "reference"):
        table = rows(out, who)
        assert [int(r[0]) for r in table] == list(bench.TOKENS_QUICK)
        # Measured on a loaded 2-core machine: 5.7x to 10x at 128 tokens (about 50x at 512); the
        # cache does O(T) work per step against O(T^2), so only a broken cache loses here.
        assert float(table[-1][-1].rstrip("x")) > 1, out
    assert "your " not in out  # no complaint about the learner's code


def test_quantization_table_on_the_reference(capsys):
    code, out, err = run_bench(capsys, "quantization", "--quick", "--solutions", str(REFERENCE))
    assert code == 0, err
    for column in ("layer", "float (KiB)", "int8 (KiB)", "int8/float", "max abs error", "rel error", "float (ms)", "int8 (ms)"):
        assert column in header(out)
    for who in ("yours", "reference"):
        table = rows(out, who)
        assert [r[0] for r in table] == [f"{o}x{i}" for o, i in bench.LINEARS_QUICK]
        assert all(float(r[3]) < 0.3 and float(r[5]) < 0.01 for r in table), out


def test_stub_says_not_implemented_and_shows_the_reference(tmp_path, capsys):
    folder = tmp_path / "stubs"
    folder.mkdir()
    for name in ("attention", "kv_cache"):
        shutil.copy(curriculum.ROOT / "katas" / f"{name}.py", folder / f"{name}.py")
    code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", str(folder))
    assert code == 0, err
    assert "your CachedCausalSelfAttention.forward is not implemented yet: run `kata check kv_cache`" in out
    assert rows(out, "yours") == [] and len(rows(out, "reference")) == len(bench.TOKENS_QUICK)


def test_quantization_stub_names_the_method(tmp_path, capsys):
    shutil.copy(curriculum.ROOT / "katas" / "quantization.py", tmp_path / "quantization.py")
    code, out, err = run_bench(capsys, "quantization", "--quick", "--solutions", str(tmp_path))
    assert code == 0, err
    assert "your Int8Linear.from_float is not implemented yet: run `kata check quantization`" in out


def test_an_unfinished_dependency_points_at_its_own_kata(tmp_path, capsys):
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(curriculum.ROOT / "katas" / "attention.py", folder / "attention.py")
    source = (REFERENCE / "kv_cache.py").read_text().replace("from reference.attention", "from katas.attention")
    (folder / "kv_cache.py").write_text(source)
    code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", str(folder))
    assert code == 0, err
    assert "your scaled_dot_product_attention is not implemented yet: run `kata check attention`" in out


def test_wrong_outputs_are_not_timed(tmp_path, capsys):
    folder = solutions(tmp_path, """
        from reference.kv_cache import KVCache, CachedCausalSelfAttention as Right

        class CachedCausalSelfAttention(Right):
            def forward(self, x, cache=None):
                return super().forward(x, cache) * 1.01
    """)
    code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", folder)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("your "))
    assert line.startswith("your kv_cache code gives wrong outputs on the benchmark's inputs (the output of the causal "
                           "forward over 16 tokens: ") and line.endswith("run `kata check kv_cache`"), line
    assert rows(out, "yours") == [] and rows(out, "reference")


def test_an_exception_names_the_line(tmp_path, capsys):
    folder = solutions(tmp_path, """
        from reference.kv_cache import CachedCausalSelfAttention

        class KVCache:
            def __init__(self):
                self.k = []

            def update(self, k, v):
                return self.k[3], v
    """)
    code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", folder)
    assert code == 0, err
    assert ("your KVCache.update raised IndexError: list index out of range (kv_cache.py, line 9, in "
            "KVCache.update): run `kata check kv_cache`") in out


def test_missing_file_is_not_started(tmp_path, capsys):
    code, out, err = run_bench(capsys, "quantization", "--quick", "--solutions", str(tmp_path))
    assert code == 0, err
    assert f"you have not started quantization: {tmp_path.resolve() / 'quantization.py'} does not exist" in out
    assert rows(out, "reference")


@pytest.mark.parametrize("name", ["lora", "no_such_kata"])
def test_a_kata_without_a_bench_gets_one_line(capsys, name):
    code, out, err = run_bench(capsys, name)
    assert code == 2 and out == ""
    assert err == f"kata: no bench for {name!r}; the katas with one are: kv_cache, quantization\n"


def test_endless_loop_is_stopped_at_the_limit(tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text(curriculum.config_path().read_text().replace("kata_timeout = 60", "kata_timeout = 3"))
    monkeypatch.setenv("KATA_CONFIG", str(config))
    curriculum.settings.cache_clear()
    folder = solutions(tmp_path, """
        from reference.kv_cache import CachedCausalSelfAttention

        class KVCache:
            def __init__(self):
                while True:
                    pass
    """)
    try:
        start = time.monotonic()
        code, out, err = run_bench(capsys, "kv_cache", "--quick", "--solutions", folder)
        elapsed = time.monotonic() - start
    finally:
        curriculum.settings.cache_clear()
    assert code == 0, err
    assert "your kv_cache code ran past the 3 s limit and was stopped (an endless loop?): run `kata check kv_cache`" in out
    assert rows(out, "reference") and elapsed < 3 + 30  # the limit, then the reference's own quick run


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed (optional)")
def test_plot_is_written_to_the_current_folder(tmp_path, capsys):
    code, out, err = run_bench(capsys, "quantization", "--quick", "--solutions", str(REFERENCE))
    assert code == 0, err
    assert (tmp_path / "bench_quantization.png").stat().st_size > 0
    assert f"Plot: {tmp_path / 'bench_quantization.png'}" in out


def test_notes_follow_what_was_measured():
    ref = [[64, 1.0, 4.0, 4.0, 128.0], [512, 2.0, 100.0, 50.0, 1024.0]]
    slow = [[64, 3.0, 4.0, 1.3, 128.0], [512, 40.0, 100.0, 2.5, 1024.0]]
    assert "Your cache speeds generation up 2.5x at 512 tokens, the reference's 50.0x" in bench.kv_cache_note(
        {"yours": slow, "reference": ref})
    assert "Your cache" not in bench.kv_cache_note({"yours": ref, "reference": ref})
    assert "memory" in bench.kv_cache_note({"reference": ref})
    rows = [["256x256", 257.0, 65.0, 0.253, 1e-2, 4e-3, 0.1, 0.3]]
    note = bench.quantization_note({"reference": rows})
    assert "int8 keeps 25% of the float layer's bytes" in note and "4.0e-03" in note and "slower here" in note
    faster = [["256x256", 257.0, 65.0, 0.253, 1e-2, 4e-3, 0.3, 0.1]]
    assert "slower" not in bench.quantization_note({"reference": faster})
