"""A kata's code cannot break the run: whatever it does costs that kata's points and nothing else."""

import json
import textwrap

import pytest

from graders import curriculum, runner
from learners import reference_as_learner

REFERENCE = curriculum.ROOT / "reference"
# Kata code cannot import the reference, so correct code here is a copy of the reference's source.
CORRECT = (REFERENCE / "attention.py").read_text()


def overriding(name: str, body: str) -> str:
    """The reference attention with `name` redefined by body, which may call the original as `ok`."""
    return f"{CORRECT}\nok = {name}\n{textwrap.dedent(body)}"


@pytest.fixture
def fast_limits(tmp_path, monkeypatch):
    """The real config with short time limits, so that hangs are cut quickly."""
    text = curriculum.config_path().read_text()
    text = text.replace("check_timeout = 10", "check_timeout = 1").replace("kata_timeout = 60", "kata_timeout = 30")
    config = tmp_path / "config.toml"
    config.write_text(text)
    monkeypatch.setenv("KATA_CONFIG", str(config))
    curriculum.settings.cache_clear()
    yield
    curriculum.settings.cache_clear()


def grade_attention(tmp_path, source: str) -> dict:
    folder = tmp_path / "solutions"
    folder.mkdir(exist_ok=True)
    (folder / "attention.py").write_text(textwrap.dedent(source))
    return runner.grade(["attention"], solutions=folder)["katas"][0]


def messages(result) -> str:
    return "\n".join(c["message"] for c in result["checks"])


def passed(result, prefix) -> list:
    return [c["passed"] for c in result["checks"] if c["name"].startswith(prefix)]


# Each hostile submission: its source and a phrase that its feedback must contain.
HOSTILE = {
    "imports_the_reference": ("from reference.attention import *\n", "cannot import the reference solutions"),
    "import_error": ("import no_such_module\n", "failed to import: ModuleNotFoundError"),
    "syntax_error": ("def softmax(x, dim=-1)\n    return x\n", "failed to import: SyntaxError"),
    "exit_at_import": ("import sys\nsys.exit(3)\n", "failed to import: the import raised SystemExit"),
    "raises": (overriding("softmax", "def softmax(x, dim=-1):\n    return x[99]\n"),
               "raised IndexError: index 99 is out of bounds for dimension 0 with size"),
    "returns_garbage": ("def softmax(x, dim=-1):\n    return 'garbage'\n", "should be a tensor"),
    "nan": ("import torch\ndef softmax(x, dim=-1):\n    return torch.full_like(x, float('nan'))\n", "contains NaN in"),
    "wrong_shape": ("def softmax(x, dim=-1):\n    return x.transpose(0, 1)\n", "has shape"),
    "forbidden_getattr": ("import torch\ndef softmax(x, dim=-1):\n    return getattr(torch, 'soft' + 'max')(x, dim)\n",
                          "calls torch.softmax, which this kata forbids"),
    "forbidden_aten": ("import torch\ndef softmax(x, dim=-1):\n    return torch.ops.aten._softmax(x, dim, False)\n",
                       "calls aten._softmax, which this kata forbids"),
    "forbidden_caught": (overriding("softmax", "def softmax(x, dim=-1):\n    try:\n        return torch.softmax(x, dim)\n"
                                               "    except Exception:\n        return ok(x, dim)\n"),
                         "calls torch.softmax, which this kata forbids"),
    "forbidden_aten_caught": (overriding("softmax", "def softmax(x, dim=-1):\n    try:\n        torch.ops.aten._softmax(x, dim, False)\n"
                                                    "    except Exception:\n        pass\n    return ok(x, dim)\n"),
                              "calls aten._softmax, which this kata forbids"),
    "forbidden_alias": ("import torch\ndef softmax(x, dim=-1):\n    return torch._C._VariableFunctions.softmax(x, dim)\n",
                        "calls aten._softmax, which this kata forbids"),
    "in_place": (overriding("softmax", "def softmax(x, dim=-1):\n    x.mul_(1.0001)\n    return ok(x / 1.0001, dim)\n"),
                 "changed its input x in place"),
    "monkeypatch": ("import torch\ntorch.allclose = lambda *a, **k: True\n" + CORRECT, "your code replaced torch.allclose"),
    "exit_in_call": ("import sys\ndef softmax(x, dim=-1):\n    sys.exit(0)\n", "raised SystemExit"),
    "memory": ("import torch\ndef softmax(x, dim=-1):\n    return torch.empty(2**40, dtype=torch.uint8)\n", "raised RuntimeError"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_submission_fails_with_a_clear_message(tmp_path, name):
    source, phrase = HOSTILE[name]
    result = grade_attention(tmp_path, source)
    assert result["score"] < result["max_score"]
    assert phrase in messages(result)


def test_python_loop_costs_only_the_looping_check(tmp_path, fast_limits):
    result = grade_attention(tmp_path, overriding("softmax", "def softmax(x, dim=-1):\n    while dim == 0:\n        pass\n    return ok(x, dim)\n"))
    for check in result["checks"]:
        assert check["passed"] == (check["name"] != "softmax_dim0")
    assert "took too long" in messages(result)


@pytest.mark.parametrize("ending, phrase", [
    ("import os; os._exit(7)", "exited with status 7"),
    ("import ctypes; ctypes.string_at(0)", "crashed (SIGSEGV)"),
    # SIGALRM blocked: a stand-in for a long C call that no signal interrupts
    ("import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n            while True: pass",
     "took too long and was stopped"),
])
def test_dying_process_costs_only_the_checks_it_died_in(tmp_path, fast_limits, ending, phrase):
    source = overriding("scaled_dot_product_attention", f"""
    def scaled_dot_product_attention(q, k, v, mask=None):
        if mask is not None:
            {ending}
        return ok(q, k, v, mask)
    """)
    result = grade_attention(tmp_path, source)
    checks = {c["name"]: c for c in result["checks"]}
    for name in ("attention_mask", "attention_broadcast_mask", "attention_float64"):  # each with a mask
        assert not checks[name]["passed"] and phrase in checks[name]["message"], checks[name]
    for name in ("softmax_rows", "attention_basic", "attention_e_ne_ev", "softmax_hidden"):  # after one, without
        assert checks[name]["passed"], checks[name]
    assert all(phrase in c["message"] for c in result["checks"] if not c["passed"])


def test_flooding_stdout_does_not_stop_the_run(tmp_path):
    result = grade_attention(tmp_path, overriding("softmax", "def softmax(x, dim=-1):\n    print('x' * 10**7)\n    return ok(x, dim)\n"))
    assert result["score"] == result["max_score"]


def test_tensor_subclass_cannot_lie_about_its_values(tmp_path):
    source = """
    import torch
    class Liar(torch.Tensor):
        def __eq__(self, other): return torch.ones_like(other, dtype=torch.bool)
        def allclose(self, *a, **k): return True
    def softmax(x, dim=-1):
        return torch.zeros_like(x).as_subclass(Liar)
    """
    assert "entries are off" in messages(grade_attention(tmp_path, source))


def test_tensor_subclass_with_right_values_passes(tmp_path):
    source = overriding("softmax", """
    class Tagged(torch.Tensor):
        pass
    def softmax(x, dim=-1):
        return ok(x, dim).as_subclass(Tagged)
    """)
    result = grade_attention(tmp_path, source)
    assert all(passed(result, "softmax"))


def test_missing_file_is_not_started(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.grade(["attention"], solutions=tmp_path / "empty")["katas"][0]
    assert result["status"] == "not started" and result["score"] == 0
    assert all(c["message"].startswith("not started: ") for c in result["checks"])


def test_a_broken_kata_leaves_the_others_untouched(tmp_path):
    folder = reference_as_learner(tmp_path / "solutions")
    (folder / "lora.py").write_text("import os\nos._exit(1)\n")
    report = runner.grade(solutions=folder)
    for kata in report["katas"]:
        if kata["name"] == "lora":
            assert kata["score"] == 0 and "exited with status 1" in kata["checks"][0]["message"]
        else:
            assert kata["score"] == kata["max_score"], kata["name"]


def test_same_submission_same_report(tmp_path):
    source = overriding("scaled_dot_product_attention",
                        "def scaled_dot_product_attention(q, k, v, mask=None):\n    return ok(q, k, v, None)\n")
    first, second = grade_attention(tmp_path, source), grade_attention(tmp_path, source)
    assert 0 < first["score"] < first["max_score"]
    assert json.dumps(first) == json.dumps(second)


def test_hidden_checks_follow_the_instructors_seed(tmp_path, monkeypatch):
    """An answer hard-coded for one seed fails the hidden checks under another."""
    from graders.harness import Gen, seed_for

    monkeypatch.setenv("KATA_SEED", "1")
    curriculum.settings.cache_clear()
    one = Gen(seed_for("attention", "softmax_hidden", hidden=True)).randn(3)
    public_one = seed_for("attention", "softmax_rows", hidden=False)
    monkeypatch.setenv("KATA_SEED", "2")
    curriculum.settings.cache_clear()
    two = Gen(seed_for("attention", "softmax_hidden", hidden=True)).randn(3)
    assert not one.equal(two)
    assert seed_for("attention", "softmax_rows", hidden=False) == public_one
    curriculum.settings.cache_clear()


def test_feedback_blames_the_kata_this_one_builds_on(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    attention = (REFERENCE / "attention.py").read_text().replace("/ math.sqrt(q.shape[-1])", "")
    (folder / "attention.py").write_text(attention)
    causal = (REFERENCE / "causal_mask.py").read_text().replace("from reference.attention", "from katas.attention")
    (folder / "causal_mask.py").write_text(causal)
    result = runner.grade(["causal_mask"], solutions=folder)["katas"][0]
    blamed = [c for c in result["checks"] if "builds on your attention kata" in c["message"]]
    assert blamed and all(c["name"].startswith("attention_") for c in blamed)
    assert all(c["passed"] for c in result["checks"] if c["name"].startswith(("mask_", "value_error")))
