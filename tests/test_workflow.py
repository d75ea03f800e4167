"""The Snakemake workflow end to end, on a tiny config in a temporary directory."""

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from imprint.grid import RESULT_COLUMNS, Grid
from imprint.lowshot import COLUMNS
from tests.conftest import copy_of_run, snakemake_command, tiny_config, write_config
from tests.conftest import run_snakemake as snakemake

pytestmark = pytest.mark.workflow


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """The rules a dry run would execute, with their job counts."""
    output = snakemake(workdir, "--dry-run", *args).stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("Reasons:")[0]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    jobs.pop("total", None)
    return {rule: int(count) for rule, count in jobs.items()}


@pytest.fixture(scope="module")
def finished_run(tiny_run, tmp_path_factory):
    return copy_of_run(tiny_run, tmp_path_factory.mktemp("run") / "run")


def copy_with_config(finished_run: Path, target: Path, edit) -> Path:
    """A copy of the finished run whose tiny.yaml is the tiny config changed by ``edit``."""
    workdir = copy_of_run(finished_run, target)
    config = tiny_config()
    edit(config)
    write_config(workdir / "tiny.yaml", config)
    return workdir


def planned_after(finished_run: Path, target: Path, edit) -> dict[str, int]:
    """The jobs Snakemake would run after ``edit`` to the tiny config of a finished run."""
    workdir = copy_with_config(finished_run, target, edit)
    return planned_jobs(workdir, "--configfile", "tiny.yaml")


def test_a_run_prints_no_warnings(finished_run):
    output = (finished_run / "snakemake.out").read_text()
    assert "Warning" not in output and "never awaited" not in output


def test_every_stage_produces_its_outputs(finished_run):
    results = finished_run / "results"
    config = tiny_config()
    table = pd.read_csv(results / "tables" / "imprinting.csv")
    grid = Grid.from_config(config["imprinting"], 1e-4)
    assert list(table.columns) == ["model", "task", "seed", *RESULT_COLUMNS]
    # novel runs the global seeds 0 and 1, pairs its own seed 7
    assert len(table) == 2 * (2 + 1) * grid.size()
    assert set(table.loc[table["task"] == "pairs", "seed"]) == {7}
    assert table.groupby(["model", "task", "seed"]).size().eq(grid.size()).all()
    assert table["accuracy"].between(0, 1).all() and table["accuracy"].mean() > 0.5
    assert set(table["model"]) == {"pixels", "cnn"} and set(table["task"]) == {"novel", "pairs"}

    nc1 = pd.read_csv(results / "tables" / "nc1.csv")
    assert len(nc1) == 2 * (2 + 1) * 2 and (nc1["nc1"] > 0).all()
    by_variant = nc1.pivot_table(index=["model", "task", "seed"], columns="variant", values="nc1")
    assert (by_variant["imprint_code"] >= by_variant["papyan"]).all()
    assert set(nc1.loc[nc1["task"] == "pairs", "n_labels"]) == {3}
    summary = pd.read_csv(results / "tables" / "nc1_summary.csv")
    assert len(summary) == 4 * 2  # (model, task) x variant

    for name, treatments in [
        ("gen", {"mean", "ls", "kmeans k=1", "kmeans k=3"}),
        ("norm", {"post=none", "post=l2"}),
        ("agg", {"max", "mnn m=1", "mnn m=3"}),
    ]:
        comparison = pd.read_csv(results / "tables" / f"{name}.csv")
        assert set(comparison["treatment"]) == treatments
        assert (comparison["n_groups"] == 4).all()
        assert (results / "cd_diagrams" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (results / "cd_diagrams" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        paper = pd.read_csv(results / "paper_tables" / f"{name}.csv")
        assert len(paper) == len(treatments) and (paper["n_groups"] == 4).all()
        latex = (results / "paper_tables" / f"{name}.tex").read_text()
        assert latex.count("best in group") == len(treatments) and "Avg. Rank" in latex
    # Neither a few-shot nor a "d in 1" series in this config: seven figures.
    assert sorted(path.name for path in (results / "figures").iterdir()) == [
        f"{name}.{ext}"
        for name in (
            "finetune_curves",
            "gen_time",
            "gen_vs_k",
            "lowshot",
            "nc1",
            "nc1_vs_gain",
            "selection_optimism",
        )
        for ext in ("pdf", "png")
    ]
    lowshot = pd.read_csv(results / "tables" / "lowshot.csv", dtype={"epoch": "Int64"})
    assert list(lowshot.columns) == list(COLUMNS)
    assert dict(lowshot.groupby("model")["scope"].first()) == {"cnn": "full", "pixels": "head"}
    # per model and n: 3 untrained rows, 3 trained methods at epochs 0 and 1
    assert len(lowshot) == 2 * 2 * (3 + 3 * 2)
    assert set(lowshot.loc[lowshot["method"] == "imprint", "epoch"].isna()) == {True}
    assert lowshot[["novel_accuracy", "all_accuracy"]].stack().between(0, 1).all()
    lowshot_summary = pd.read_csv(results / "tables" / "lowshot_summary.csv")
    assert len(lowshot_summary) == 2 * 2 * 6 and (lowshot_summary["n_seeds"] == 1).all()
    gain = pd.read_csv(results / "tables" / "nc1_vs_gain.csv")
    assert set(gain["k"]) == {3}  # neither 5 nor 20 in this grid: its largest k
    # 2 models x the one task on all train images (pairs is n-shot): too few points for a rank
    # correlation, which says so with NaN rather than a number
    assert len(gain) == 2 and gain["spearman_rho"].isna().all()
    gen_time = pd.read_csv(results / "tables" / "gen_time_summary.csv")
    assert set(gen_time["gen"]) == {"mean", "kmeans", "ls"} and (gen_time["n_groups"] == 4).all()

    per_config = pd.read_csv(results / "tables" / "summary.csv")
    assert len(per_config) == grid.size()
    for split in ("train", "test"):
        assert (results / "embeddings" / "cnn" / "digits" / f"{split}.npz").exists()
    assert len(re.findall(r"epoch \d+:", (results / "logs" / "model" / "cnn.log").read_text())) == 2
    leftovers = [p for p in results.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    # Written atomically, yet readable by others like any plain file (not mkstemp's 0600).
    assert (results / "tables" / "imprinting.csv").stat().st_mode & 0o044 == 0o044


def test_the_selection_is_honest_and_the_exported_classifiers_predict_what_the_grid_reports(
    finished_run,
):
    from imprint.artifact import load_artifact
    from imprint.io import load_arrays

    results = finished_run / "results"
    selection = pd.read_csv(results / "tables" / "selection.csv")
    table = pd.read_csv(results / "tables" / "imprinting.csv")
    assert len(selection) == 2 * (2 + 1)  # (model) x (novel: 2 seeds, pairs: 1)
    assert set(selection["selected_by"]) == {"cv5"}  # every class has >= 5 training samples
    assert (selection["optimism"] >= 0).all()
    gap = selection["best_test_accuracy"] - selection["test_accuracy"]
    assert (selection["optimism"] - gap).abs().max() < 1e-9  # each written to 10 digits
    best = table.groupby(["model", "task", "seed"])["accuracy"].max()
    for row in selection.to_dict("records"):
        assert row["best_test_accuracy"] == best[(row["model"], row["task"], row["seed"])]
    summary = pd.read_csv(results / "tables" / "selection_summary.csv")
    assert len(summary) == 4 and (results / "figures" / "selection_optimism.png").stat().st_size

    for model in ("cnn", "pixels"):
        for task, seed in (("novel", 0), ("pairs", 7)):
            artifact = load_artifact(results / "classifiers" / model / task)
            chosen = selection[(selection["model"] == model) & (selection["task"] == task)]
            chosen = chosen[chosen["seed"] == seed].iloc[0]
            assert artifact.provenance["test_accuracy"] == chosen["test_accuracy"]
            split = load_arrays(results / "tasks" / task / f"seed{seed}.npz")
            dataset = "digits"
            test = load_arrays(results / "embeddings" / model / dataset / "test.npz")
            predicted = artifact.classifier.predict(test["embeddings"][split["test_index"]])
            names = artifact.classifier.classes_
            truth = names[split["test_label"]]
            # the grid's row for this configuration (tables hold 10 significant digits)
            assert (predicted == truth).mean() == pytest.approx(chosen["test_accuracy"], abs=1e-9)
            if task == "novel":
                assert list(names) == ["5", "6", "7", "8", "9"]
            else:  # "d in 1": each label merges two digits
                assert all(name.count("+") == 1 for name in names)
    # the CNN was trained by the workflow: its weights travel with its classifiers
    assert load_artifact(results / "classifiers" / "cnn" / "novel").backbone_file is not None
    assert load_artifact(results / "classifiers" / "pixels" / "novel").backbone_file is None


def test_a_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(finished_run, "--configfile", "tiny.yaml") == {}


def test_the_same_values_in_another_key_order_with_defaults_spelled_out_rerun_nothing(
    finished_run, tmp_path
):
    from imprint.config import validate_config
    from tests.conftest import SCHEMA
    from tests.test_config import reversed_mappings

    def spell_out_reversed(config):
        validate_config(config, SCHEMA)  # every default written out
        reordered = reversed_mappings(config)
        config.clear()
        config.update(reordered)

    assert planned_after(finished_run, tmp_path / "copy", spell_out_reversed) == {}


def test_two_configs_in_one_checkout_keep_their_own_results(finished_run, tmp_path):
    workdir = copy_of_run(finished_run, tmp_path / "copy")
    default_files = {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in (workdir / "results").rglob("*")
        if path.is_file()
    }
    other = tiny_config()
    # another grid on the same task names: without a folder of its own it would overwrite
    other |= {"results": "results/other", "seeds": [3]}
    other["models"].pop("cnn")
    other.pop("lowshot")
    other["imprinting"]["gen"] = ["mean", "kmeans"]
    write_config(workdir / "other.yaml", other)
    # up to the imprinting table: the stages where the two configs' files would collide
    targets = ["results/other/tables/imprinting.csv", "--configfile", "other.yaml"]
    finished = snakemake(workdir, *targets)
    output = finished.stdout + finished.stderr
    assert "are in results/other/" in output and "--report results/other/report.html" in output
    assert (workdir / "results/other/tables/imprinting.csv").exists()
    assert planned_jobs(workdir, "--configfile", "tiny.yaml") == {}
    for path, (content, mtime) in default_files.items():
        assert (path.read_bytes(), path.stat().st_mtime_ns) == (content, mtime), path

    # a third config file that names no folder of its own is refused before any job
    other.pop("results")
    write_config(workdir / "third.yaml", other)
    refused = snakemake(workdir, "--dry-run", "--configfile", "third.yaml", check=False)
    assert refused.returncode != 0
    assert (
        "config key 'results': results/ holds the results of tiny.yaml, not of third.yaml; "
        "give this config a folder of its own (results: results/third)"
    ) in refused.stdout + refused.stderr


def test_changing_only_the_grid_reruns_only_imprinting_and_statistics(finished_run, tmp_path):
    workdir = copy_with_config(
        finished_run, tmp_path / "copy", lambda config: config["imprinting"].update(m=[1, 2])
    )
    jobs = planned_jobs(workdir, "--configfile", "tiny.yaml")
    assert set(jobs) == {
        "imprinting",
        "collect_imprinting",
        "collect_gen_time",
        "summary",
        "comparison",
        "gen_time_summary",
        "nc1_vs_gain",
        "figure",
        # the selection runs in the imprinting jobs, and the grid changes what it chooses from
        "collect_selection",
        "selection_summary",
        "export_classifiers",
        "all",
    }
    assert jobs["imprinting"] == 6
    dry_run = snakemake(workdir, "--dry-run", "--configfile", "tiny.yaml").stdout
    figures = set(re.findall(r"output: results/figures/(\w+)\.pdf", dry_run))
    # not nc1: NC1 does not depend on the grid
    assert figures == {"gen_vs_k", "gen_time", "nc1_vs_gain", "selection_optimism"}

    upstream = [
        *workdir.glob("results/embeddings/**/*.npz"),
        *workdir.glob("results/models/*"),
        *workdir.glob("results/tasks/**/*.npz"),
        *workdir.glob("results/nc1/**/*.csv"),
    ]
    before = {path: path.stat().st_mtime_ns for path in upstream}
    # Only the comparison the new m shows in (figures and summaries add time, not evidence)
    snakemake(workdir, "results/tables/agg.csv", "--configfile", "tiny.yaml")
    assert {path: path.stat().st_mtime_ns for path in upstream} == before
    agg = pd.read_csv(workdir / "results" / "tables" / "agg.csv")
    assert set(agg["treatment"]) == {"max", "mnn m=1", "mnn m=2"}


def test_changing_the_lowshot_section_reruns_only_the_lowshot_stage(finished_run, tmp_path):
    jobs = planned_after(
        finished_run, tmp_path / "copy", lambda config: config["lowshot"].update(epochs=2)
    )
    assert jobs == {
        "lowshot": 2,  # (cnn, pixels) x seed 0
        "collect_lowshot": 1,
        "lowshot_summary": 1,
        "figure": 2,  # lowshot and finetune_curves
        "all": 1,
    }


def test_editing_a_task_reruns_only_that_tasks_jobs(finished_run, tmp_path):
    jobs = planned_after(
        finished_run, tmp_path / "copy", lambda config: config["tasks"]["pairs"].update(n_shot=5)
    )
    # pairs has one seed (7): its task, and its imprinting and NC1 for the two models
    assert jobs["task"] == 1 and jobs["imprinting"] == 2 and jobs["nc1"] == 2
    assert not {"dataset", "model", "embeddings", "lowshot"} & set(jobs)


def test_editing_a_model_reruns_only_that_models_jobs(finished_run, tmp_path):
    jobs = planned_after(
        finished_run, tmp_path / "copy", lambda config: config["models"]["cnn"].update(epochs=3)
    )
    assert jobs["model"] == 1 and jobs["embeddings"] == 2  # the CNN's train and test split
    # imprinting per (task, seed): novel x 2 seeds and pairs x seed 7; NC1 per task; low-shot
    assert jobs["imprinting"] == 3 and jobs["nc1"] == 2 and jobs["lowshot"] == 1
    assert not {"dataset", "task"} & set(jobs)


def test_editing_the_embedding_section_reruns_extraction_and_what_follows(finished_run, tmp_path):
    jobs = planned_after(
        finished_run, tmp_path / "copy", lambda config: config.update(embedding={"batch_size": 7})
    )
    # every (model, split) extraction and what reads embeddings; not the data or the CNN
    assert jobs["embeddings"] == 4 and jobs["imprinting"] == 6 and jobs["nc1"] == 4
    assert not {"dataset", "model", "task"} & set(jobs)


COMPARED_OUTPUTS = [
    "tables/imprinting.csv",
    "tables/summary.csv",
    "tables/nc1.csv",
    "tables/nc1_summary.csv",
    "tables/gen.csv",
    "tables/norm.csv",
    "tables/agg.csv",
    "cd_diagrams/gen.pdf",
    "cd_diagrams/norm.pdf",
    "cd_diagrams/agg.pdf",
    "cd_diagrams/gen.png",
    "figures/gen_vs_k.pdf",
    "figures/gen_vs_k.png",
    "figures/nc1.pdf",
    "figures/nc1.png",
    # low-shot fine-tuning (one thread per job): the same bytes from a killed and resumed run
    "tables/lowshot.csv",
    "tables/lowshot_summary.csv",
    "paper_tables/gen.csv",
    "paper_tables/gen.tex",
    "figures/lowshot.pdf",
    "figures/finetune_curves.pdf",
    "tables/selection.csv",
    "tables/selection_summary.csv",
    "classifiers/cnn/novel/classifier.json",
    "classifiers/cnn/novel/classifier.safetensors",
    "classifiers/cnn/novel/backbone.safetensors",
    "classifiers/pixels/pairs/classifier.safetensors",
]


def assert_same_results(run_a: Path, run_b: Path) -> None:
    for name in COMPARED_OUTPUTS:
        a, b = run_a / "results" / name, run_b / "results" / name
        assert a.read_bytes() == b.read_bytes(), f"{name} differs between runs"


def test_a_run_killed_during_imprinting_resumes_to_the_same_results(finished_run, tmp_path):
    """Also the determinism test: the finished run, copied to another folder without the results
    of its imprinting, NC1 and low-shot stages and of all that follows them, runs those again
    with one core (the first run had two), is killed in the middle of the imprinting stage and
    resumed, and ends with tables, diagrams and figures byte-identical to the first run's. (That
    the stages before them give the same bytes whatever the thread count is
    tests/test_determinism.py's test.)"""
    import os
    import shutil
    import signal
    import time

    run = copy_of_run(finished_run, tmp_path / "run")
    for stage in (
        "imprinting",
        "nc1",
        "lowshot",
        "tables",
        "cd_diagrams",
        "figures",
        "paper_tables",
    ):
        shutil.rmtree(run / "results" / stage)
    command = snakemake_command("--configfile", "tiny.yaml", cores=1)
    started = time.time_ns()
    process = subprocess.Popen(
        command,
        cwd=run,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    imprinting = run / "results" / "imprinting"
    deadline = time.monotonic() + 300
    while len(list(imprinting.glob("*/*/seed*.gen_time.csv"))) < 2:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no imprinting job finished in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # snakemake and the job it runs, mid-way
    process.wait()

    written = sorted(imprinting.glob("*/*/seed*.csv"))
    assert 0 < len(written) < 2 * 2 * 3, "kill the run in the middle of the imprinting stage"
    for table in written:  # written atomically: complete, or not there at all
        assert len(pd.read_csv(table)) > 0

    # What a user does after a hard kill: release Snakemake's stale lock, then run again
    # (rerun-incomplete is in the profile). Which jobs finished is Snakemake's own record: a
    # dry run plans every job it did not record as finished, outputs there or not.
    snakemake(run, "--configfile", "tiny.yaml", "--unlock")
    dry_run = snakemake(run, "--dry-run", "--configfile", "tiny.yaml").stdout
    planned = {
        run / path.strip()
        for outputs in re.findall(r"^\s*output: (.*)$", dry_run, flags=re.M)
        for path in outputs.split(",")
    }
    rerun = {path.parent / path.name.split(".")[0] for path in written if path in planned}
    assert len(rerun) <= 1, f"with one core only the killed job can be unfinished: {rerun}"
    finished = [path for path in written if path not in planned]
    assert finished, "no job had finished before the kill"
    before = {path: path.stat().st_mtime_ns for path in finished}
    snakemake(run, "--configfile", "tiny.yaml")
    assert {path: path.stat().st_mtime_ns for path in before} == before, "finished jobs reran"
    stale = [n for n in COMPARED_OUTPUTS if (run / "results" / n).stat().st_mtime_ns < started]
    assert not stale, f"not written again, so not compared: {stale}"
    assert_same_results(finished_run, run)


def test_editing_a_dataset_reruns_everything_from_that_dataset_on(finished_run, tmp_path):
    jobs = planned_after(
        finished_run,
        tmp_path / "copy",
        lambda config: config["datasets"]["digits"].update(test_size=0.4),
    )
    assert {"dataset", "model", "embeddings", "task", "imprinting", "nc1"} <= set(jobs)
    assert jobs["model"] == 1  # the CNN trains on digits; the pixels model does not depend on it
    assert jobs["embeddings"] == 4
