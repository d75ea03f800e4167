"""The README's code blocks that can run offline, run: every Python block, every YAML block as
a config section (merged into the offline default and validated), and the practitioner's
`imprint` commands on a folder of real digits (the pretrained ResNet swapped for the offline
`pixels` backbone: the only change)."""

import copy
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imprint.config import validate_config
from tests.conftest import REPO, SCHEMA

BLOCKS = re.findall(r"```(\w*)\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def blocks(language):
    return [code for lang, code in BLOCKS if lang == language]


@pytest.mark.parametrize("code", blocks("python"))
def test_every_python_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.parametrize("code", blocks("yaml"))
def test_every_yaml_block_is_a_valid_config_section(code):
    config = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))
    fragment = yaml.safe_load(code)
    config.update(fragment)
    if "models" in fragment and "datasets" not in fragment:
        # a model fragment stands for FMs added to the default's datasets and tasks
        config["models"] = {
            **yaml.safe_load((REPO / "config.yaml").read_text())["models"],
            **fragment["models"],
        }
    validate_config(config, SCHEMA)


PRACTITIONER = next(code for code in blocks("bash") if "imprint fit" in code)


@pytest.mark.workflow  # subprocesses of the console script
def test_the_practitioners_commands_run_as_written(tmp_path):
    from tests.test_cli import write_digits

    write_digits(tmp_path / "photos", range(3), 0, 300)
    write_digits(tmp_path / "new_photos", range(3), 1000, 1100)
    write_digits(tmp_path / "more", (3,), 0, 300)
    (tmp_path / "more" / "digit3").rename(tmp_path / "photos_of_a_new_class")
    imprint = Path(sys.executable).with_name("imprint")  # .venv/bin/imprint in the README
    env = {**os.environ, "IMPRINT_CACHE": str(tmp_path / "cache")}
    for line in PRACTITIONER.strip().splitlines():
        command = shlex.split(line.replace("torchvision:resnet18", "pixels"))
        assert command[0] == ".venv/bin/imprint"
        done = subprocess.run(
            [str(imprint), *command[1:]], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, (line, done.stderr)
    info = subprocess.run(
        [str(imprint), "info", "my_classifier/", "--json"], cwd=tmp_path, capture_output=True,
        text=True, env=env,
    )  # fmt: skip
    classes = ["digit0", "digit1", "digit2", "photos_of_a_new_class"]
    assert yaml.safe_load(info.stdout)["classes"] == classes
