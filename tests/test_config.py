"""The instructor's knobs are checked before anything is graded: each problem is one line that names
the key and what it may hold, and `kata` exits 2 on it.

Most cases call curriculum.settings() on a changed copy of graders/config.toml; a few go through the
real CLI, which must print that one line and no traceback.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graders import curriculum

KATA = str(Path(sys.executable).parent / "kata")
REAL = curriculum.CONFIG.read_text()


def edit(old: str, new: str, text: str = REAL) -> str:
    """text with old, which must be there once, replaced."""
    assert text.count(old) == 1, f"graders/config.toml no longer has {old!r} once"
    return text.replace(old, new)


def without_table(name: str) -> str:
    """The config without the table [name]: its header and the lines up to the next header."""
    changed = re.sub(rf"^\[{re.escape(name)}\]\n(?:[^\[\n].*\n|\n)*", "", REAL, flags=re.M)
    assert changed != REAL
    return changed


ATTENTION_TOL = "[attention.tolerance]\ndefault = { atol = 1e-5, rtol = 1e-4 }"


def attention_tol(entry: str) -> str:
    return edit(ATTENTION_TOL, f"[attention.tolerance]\ndefault = {entry}")


CASES = {  # a changed config -> the problem settings() names, after the config's path
    "tolerance_string": (attention_tol('{ atol = "abc", rtol = 1e-4 }'),
                         '[attention.tolerance] default.atol must be a finite number >= 0, not "abc"'),
    "tolerance_negative": (attention_tol("{ atol = -1e-5, rtol = 1e-4 }"),
                           "[attention.tolerance] default.atol must be a finite number >= 0, not -1e-05"),
    "tolerance_nan": (attention_tol("{ atol = 1e-5, rtol = nan }"),
                      "[attention.tolerance] default.rtol must be a finite number >= 0, not nan"),
    "tolerance_infinite": (attention_tol("{ atol = inf, rtol = 1e-4 }"),
                           "[attention.tolerance] default.atol must be a finite number >= 0, not inf"),
    "tolerance_bool": (attention_tol("{ atol = true, rtol = 1e-4 }"),
                       "[attention.tolerance] default.atol must be a finite number >= 0, not true"),
    "tolerance_without_rtol": (attention_tol("{ atol = 1e-5 }"),
                               "[attention.tolerance] default.rtol is missing; give a finite number >= 0"),
    "tolerance_extra_key_nan": (edit("max_ratio = 2.0", "max_ratio = nan"),
                                "[kv_cache.tolerance] flops.max_ratio must be a finite number >= 0, not nan"),
    "tolerance_not_a_table": (attention_tol("1e-5"),
                              "[attention.tolerance] default must be a table { atol = ..., rtol = ... }, not 1e-05"),
    "tolerance_entry_missing": (edit("grads = { atol = 1e-4, rtol = 1e-3 }  # backward", "#"),
                                "[layer_norm.tolerance] has no entry grads, which check layer_norm_grads uses; "
                                "add grads = { atol = ..., rtol = ... }"),
    "tolerance_table_missing": (without_table("attention.tolerance"),
                                "[attention.tolerance] has no entry default, which check softmax_rows uses; "
                                "add default = { atol = ..., rtol = ... }"),
    "check_without_points": (edit("softmax_square = 1\n", ""),
                             "[attention.points] gives no points to softmax_square; give every check of "
                             "graders/test_attention.py a number > 0"),
    "points_negative": (edit("softmax_square = 1", "softmax_square = -1"),
                        "[attention.points] softmax_square must be a number > 0, not -1"),
    "points_zero": (edit("softmax_square = 1", "softmax_square = 0"),
                    "[attention.points] softmax_square must be a number > 0, not 0"),
    "points_string": (edit("softmax_square = 1", 'softmax_square = "1"'),
                      '[attention.points] softmax_square must be a number > 0, not "1"'),
    "points_bool": (edit("softmax_square = 1", "softmax_square = true"),
                    "[attention.points] softmax_square must be a number > 0, not true"),
    "points_misspelt": (edit("softmax_square = 1", "softmax_squares = 1"),
                        "[attention.points] softmax_squares names no check of graders/test_attention.py "
                        "(did you mean softmax_square?) (and 1 more problem)"),
    "points_table_missing": (without_table("attention.points"),
                             "[attention.points] is missing; give each check of graders/test_attention.py its points"),
    "kata_missing": (without_table("attention.points").replace(ATTENTION_TOL + "\n", ""),
                     "[attention] is missing; give kata attention its [attention.points] and [attention.tolerance]"),
    "kata_misspelt": (REAL + "\n[attension.points]\nsoftmax_rows = 1\n",
                      "[attension] names no kata of katas/curriculum.toml (did you mean attention?)"),
    "kata_timeout_zero": (edit("kata_timeout = 60", "kata_timeout = 0"),
                          "kata_timeout must be a number of seconds > 0, not 0"),
    "kata_timeout_missing": (re.sub(r"^kata_timeout = .*\n", "", REAL, flags=re.M),
                             "kata_timeout is missing; give a number of seconds > 0"),
    "check_timeout_zero": (edit("check_timeout = 10", "check_timeout = 0"),
                           "check_timeout must be a number of seconds > 0, not 0"),
    "check_timeout_negative": (edit("check_timeout = 10", "check_timeout = -1"),
                               "check_timeout must be a number of seconds > 0, not -1"),
    "check_timeout_string": (edit("check_timeout = 10", 'check_timeout = "10"'),
                             'check_timeout must be a number of seconds > 0, not "10"'),
    "check_timeout_misspelt": (edit("check_timeout = 10", "check_timout = 10"),
                               "check_timout is not a setting (did you mean check_timeout?); the settings are seed, "
                               "check_timeout, kata_timeout, memory_mb, and a table per kata (and 1 more problem)"),
    "memory_fraction": (edit("memory_mb = 4096", "memory_mb = 1.5"),
                        "memory_mb must be a whole number of megabytes > 0, not 1.5"),
    "memory_bool": (edit("memory_mb = 4096", "memory_mb = true"),
                    "memory_mb must be a whole number of megabytes > 0, not true"),
    "memory_negative": (edit("memory_mb = 4096", "memory_mb = -5"),
                        "memory_mb must be a whole number of megabytes > 0, not -5"),
    "seed_string": (edit("seed = 1729", 'seed = "abc"'), 'seed must be a whole number, not "abc"'),
    "seed_fraction": (edit("seed = 1729", "seed = 1.5"), "seed must be a whole number, not 1.5"),
    "one_kata_timeout": (REAL + "\n[attention]\ntimeout = -3\n",
                         "[attention] timeout must be a number of seconds > 0, not -3"),
    "kata_key_misspelt": (REAL + "\n[attention]\npoint = 2\n",
                          "[attention] point is not a setting (did you mean points?); a kata's table holds points, "
                          "tolerance and timeout"),
}


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Points KATA_CONFIG at a config with the given text; settings() reads it afresh."""
    def use(text: str | bytes) -> Path:
        path = tmp_path / "config.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        monkeypatch.setenv("KATA_CONFIG", str(path))
        curriculum.settings.cache_clear()
        return path

    monkeypatch.delenv("KATA_SEED", raising=False)
    yield use
    monkeypatch.undo()
    curriculum.settings.cache_clear()  # the next user reads the real config again


def problem() -> str:
    with pytest.raises(curriculum.UsageError) as e:
        curriculum.settings()
    return str(e.value)


@pytest.mark.parametrize("case", CASES)
def test_each_bad_knob_is_one_line_that_names_it(config, case):
    text, said = CASES[case]
    path = config(text)
    assert problem() == f"{path}: {said}"


def test_the_real_config_passes_and_is_read_once(config):
    config(REAL)
    s = curriculum.settings()
    assert curriculum.settings() is s and s.seed == 1729 and s.memory_mb == 4096
    assert curriculum.kata("attention").points["softmax_hidden"] == 2


def test_an_empty_config_says_what_it_holds(config):
    path = config("")
    assert problem() == (f"{path} is empty; it holds check_timeout, kata_timeout, memory_mb and each kata's points "
                         f"and tolerances: start from a copy of graders/config.toml")


def test_kata_config_must_name_a_readable_text_file(config, tmp_path, monkeypatch):
    fix = "KATA_CONFIG must name a copy of graders/config.toml"
    monkeypatch.setenv("KATA_CONFIG", str(tmp_path))
    assert problem() == f"{tmp_path} is a folder; {fix}"
    monkeypatch.setenv("KATA_CONFIG", str(tmp_path / "nope.toml"))
    assert problem() == f"{tmp_path / 'nope.toml'} does not exist; {fix}"
    monkeypatch.setenv("KATA_CONFIG", "/dev/null/x")
    assert problem().startswith("/dev/null/x cannot be read (")
    path = config(bytes(range(256)))
    assert problem() == f"{path} is not a text file; {fix}"
    path = config("seed = [1,")
    assert problem().startswith(f"{path} is not valid TOML (")


def test_kata_seed_overrides_and_must_be_whole(config, monkeypatch):
    config(REAL)
    monkeypatch.setenv("KATA_SEED", "7")
    assert curriculum.settings().seed == 7
    for bad in ["1.5", "abc", ""]:
        monkeypatch.setenv("KATA_SEED", bad)
        curriculum.settings.cache_clear()
        assert problem() == f"KATA_SEED must be a whole number, not {bad!r}"
    path = config(edit("seed = 1729", 'seed = "abc"'))
    monkeypatch.setenv("KATA_SEED", "7")  # the config is still wrong, and is named
    assert problem() == f'{path}: seed must be a whole number, not "abc"'


MANIFEST = curriculum.MANIFEST.read_text()

MANIFEST_CASES = {  # a changed manifest -> the problem settings() names, after katas/curriculum.toml
    "forbidden_misspelt": (MANIFEST.replace('"torch.softmax",', '"torch.sofmax",', 1),
                           "kata attention forbids torch.sofmax, which torch {torch} does not have; "
                           "name the function as torch spells it"),
    "forbidden_aten_misspelt": (MANIFEST.replace('"aten._softmax",', '"aten._sofmax",', 1),
                                "kata attention forbids aten._sofmax, which torch {torch} does not have; "
                                "name the function as torch spells it"),
    "forbidden_not_a_list": (re.sub(r"forbidden = \[[^\]]*\]", 'forbidden = "torch.softmax"', MANIFEST, count=1),
                             'kata attention\'s forbidden must be a list of strings, not "torch.softmax"'),
    "name_not_an_identifier": (MANIFEST.replace('name = "attention"', 'name = "attention-2"', 1),
                               'kata #1\'s name must be a Python identifier (its files are katas/NAME.py and '
                               'graders/test_NAME.py), not "attention-2"'),
    "listed_twice": (MANIFEST.replace('name = "causal_mask"', 'name = "attention"', 1),
                     "kata attention is listed twice"),
    "no_title": (MANIFEST.replace('title = "Scaled dot-product attention"\n', "", 1),
                 "kata attention's title is missing; give a string that names the kata"),
    "key_misspelt": (MANIFEST.replace("hints = [", "hint = [", 1),
                     "kata attention: hint is not a key (did you mean hints?); a kata holds name, title, hints, "
                     "forbidden"),
    "no_kata": ("# nothing yet\n", "no [[kata]] block; give each kata one, with its name and title"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_each_bad_manifest_entry_is_one_line(config, tmp_path, monkeypatch, case):
    import torch

    text, said = MANIFEST_CASES[case]
    assert text != MANIFEST or case == "no_kata"
    path = tmp_path / "curriculum.toml"
    path.write_text(text)
    monkeypatch.setattr(curriculum, "MANIFEST", path)
    config(REAL)
    assert problem() == f"katas/curriculum.toml: {said.format(torch=torch.__version__)}"


def test_a_kata_without_a_grader_is_named(config, tmp_path, monkeypatch):
    path = tmp_path / "curriculum.toml"
    path.write_text(MANIFEST + '\n[[kata]]\nname = "sampling"\ntitle = "Sampling"\n')
    monkeypatch.setattr(curriculum, "MANIFEST", path)
    config(REAL + "\n[sampling.points]\ntop_p = 1\n")
    assert problem() == "katas/curriculum.toml: kata sampling has no grader graders/test_sampling.py"


# --------------------------------------------------------------------------------------- the CLI


def grade(env_config: str | None):
    env = {k: v for k, v in os.environ.items() if k not in ("KATA_CONFIG", "KATA_SEED")}
    if env_config is not None:
        env["KATA_CONFIG"] = env_config
    return subprocess.run([KATA, "grade", "--kata", "attention", "--solutions", "reference", "--format", "json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=curriculum.ROOT)


@pytest.mark.parametrize("case", ["tolerance_nan", "check_without_points", "seed_string"])
def test_the_cli_exits_2_with_the_one_line(tmp_path, case):
    text, said = CASES[case]
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = grade(str(path))
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"kata: {path}: {said}\n"


def test_the_cli_names_a_folder_given_as_the_config(tmp_path):
    result = grade(str(tmp_path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"kata: {tmp_path} is a folder; KATA_CONFIG must name a copy of graders/config.toml\n"


def test_a_good_copy_of_the_config_still_grades(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(REAL)
    result = grade(str(path))
    assert result.returncode == 0, result.stderr
    kata = json.loads(result.stdout)["katas"][0]
    assert kata["name"] == "attention" and kata["score"] == kata["max_score"] == curriculum.kata("attention").max_score
