"""The SLURM profile, for real: a single-node SLURM (../shared/tools/local-slurm.sh, started by
.ci/run when it runs as root on Debian) runs the workflow through profiles/slurm."""

import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from imprint.grid import Grid
from tests.conftest import REPO, snakemake_command, tiny_config, write_config

pytestmark = pytest.mark.workflow


def slurm_is_up() -> str | None:
    """None if a SLURM node accepts jobs, else why not."""
    if shutil.which("sbatch") is None:
        return "no SLURM here (sbatch not found); .ci/run starts one when root on Debian"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    if states.returncode != 0 or not re.search(r"idle|mix|alloc", states.stdout):
        return f"no SLURM node is up: {states.stdout.strip() or states.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = slurm_is_up()
    if reason and os.environ.get("IMPRINT_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM was started for this run but is not usable: {reason}")
    if reason:
        pytest.skip(reason)


def test_the_workflow_runs_to_completion_through_the_slurm_profile(slurm, tmp_path):
    config = tiny_config()
    config["models"] = {"pixels": config["models"]["pixels"]}
    config["tasks"] = {"novel": config["tasks"]["novel"]}
    config["embedding"] = {"gpus": 1}
    config["comparisons"] = {"gen": config["comparisons"]["gen"]}
    config["lowshot"]["tasks"]["digits"]["models"] = ["pixels"]  # the CNN is gone
    write_config(tmp_path / "slurm.yaml", config)
    command = snakemake_command(
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--configfile",
        "slurm.yaml",
        # This cluster: accounting is off (so squeue for status, no account) and one node of
        # 2 CPUs, so groups of 2 single-threaded jobs and 1-thread embedding jobs.
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
        "--jobs",
        "4",
        "--set-threads",
        "embeddings=1",
        "model=1",
        "--group-components",
        "imprinting=2",
        "nc1=2",
        "--default-resources",
        "mem_mb=1000",
        "runtime=10",
        "--latency-wait",
        "5",
        "--verbose",  # logs every sbatch call
        # what the stages up to one comparison submit; summaries and figures add only latency
        "results/tables/imprinting.csv",
        "results/tables/nc1.csv",
        "results/cd_diagrams/gen.pdf",
        cores=None,
    )
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]

    table = pd.read_csv(tmp_path / "results" / "tables" / "imprinting.csv")
    grid = Grid.from_config(config["imprinting"], 1e-4)
    assert len(table) == len(config["seeds"]) * grid.size()
    assert table["accuracy"].between(0, 1).all()
    assert (tmp_path / "results" / "cd_diagrams" / "gen.pdf").read_bytes().startswith(b"%PDF")

    submitted = re.findall(
        r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/(\w+?)/", output
    )
    by_rule = {}
    for job_id, rule in submitted:
        by_rule.setdefault(rule, []).append(job_id)
    assert len(by_rule.get("rule_embeddings", [])) == 2, output[-3000:]
    assert "group_imprinting_imprinting" in by_rule, "imprinting jobs were not grouped"
    # What Snakemake asked SLURM for, from its own record of each submission (the sbatch calls
    # it logs with --verbose), not from the scheduler, which forgets a finished job after
    # MinJobAge: every submission has its call, and only embedding jobs ask for a GPU.
    calls = re.findall(r"sbatch call: (.*)", output)
    asked = {}
    for call in calls:
        rule = re.search(r"/slurm_logs/(\w+?)/", call)
        assert rule, call
        asked.setdefault(rule.group(1), []).append(bool(re.search(r"--gpus|--gres\S*gpu", call)))
    assert {rule: len(ids) for rule, ids in by_rule.items()} == {
        rule: len(gpus) for rule, gpus in asked.items()
    }, "a submission without its sbatch call, or a call without a submission"
    for rule, gpus in asked.items():
        assert set(gpus) == {rule == "rule_embeddings"}, (rule, calls)
