"""The offline default end to end: every comparison, figure and the Snakemake report.

Runs config.yaml as shipped (datasets, models, tasks, comparisons, figures) except for one seed,
two low-shot n (the ends) and a smaller imprinting grid that still holds every configuration the
comparisons and figures name: about 2.5 minutes on 2 cores beside the rest of the suite, instead
of the full default's 3.5 alone.
"""

import re

import matplotlib.image
import pandas as pd
import pytest
import yaml

from imprint.figures import FIGURES
from tests.conftest import REPO, run_snakemake, write_config
from tests.install_env import readme_install_env

pytestmark = pytest.mark.workflow

DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())
# Every registered figure but `layers` and `embedding_dim` (the default has no model with several
# layers, nor an embedding-dimension study).
DRAWN = sorted(set(FIGURES) - {"layers", "embedding_dim"})


def snakemake(workdir, *args):
    """Snakemake as the README's install runs it: without the test extra's packages."""
    return run_snakemake(workdir, "--configfile", "default.yaml", *args, env=readme_install_env())


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("default")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = [0]
    config["imprinting"].update(gen=["all", "mean", "kmeans", "ls"], k=[1, 2, 5, 20], m=[1])
    config["lowshot"]["tasks"]["digits"]["n_shot"] = [1, 20]  # the ends
    write_config(workdir / "default.yaml", config)
    snakemake(workdir)
    snakemake(workdir, "--report", "report.html")
    return workdir


def test_every_figure_of_the_offline_default_is_a_valid_pdf_and_png(default_run):
    figures = default_run / "results" / "figures"
    assert sorted(path.name for path in figures.iterdir()) == sorted(
        f"{name}.{ext}" for name in DRAWN for ext in ("pdf", "png")
    )
    for name in DRAWN:
        pdf = (figures / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF"), name
        image = matplotlib.image.imread(figures / f"{name}.png")
        assert image.shape[0] > 300 and image.shape[1] > 600, name
        assert image[..., :3].std() > 0.05, f"{name}.png is blank"


def test_every_comparison_of_the_offline_default_has_its_table_and_diagram(default_run):
    results = default_run / "results"
    for name in DEFAULT["comparisons"]:
        table = pd.read_csv(results / "tables" / f"{name}.csv")
        assert (table["n_groups"] == 2 * 6).all()  # 2 models x the 6 tasks on all train images
        assert (results / "cd_diagrams" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (results / "cd_diagrams" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    methods = pd.read_csv(results / "tables" / "methods.csv")
    assert set(methods["treatment"]) == set(DEFAULT["comparisons"]["methods"]["configurations"])
    # The README's headline: k-means proxies ("ours") and least squares rank ahead of the
    # earlier imprinting methods, Hosoda et al. (quantile NORMpost) last of all.
    rank = methods.set_index("treatment")["mean_rank"]
    earlier = ["Qi et al.", "Janson et al.", "Hosoda et al."]
    assert rank["ours (k-means k=20)"] < rank[earlier].min()
    assert rank["least squares"] < rank[earlier].min()
    assert rank["Hosoda et al."] == rank.max()
    assert set(methods.columns) >= {
        "mean_accuracy",
        "std_accuracy",
        "mean_rank",
        "friedman_pvalue",
        "posthoc_test",
    }


def test_the_readmes_neural_collapse_directions_hold(default_run):
    nc1 = pd.read_csv(default_run / "results" / "tables" / "nc1_summary.csv")
    nc1 = nc1[(nc1["model"] == "cnn") & (nc1["variant"] == "papyan")].set_index("task")["nc1"]
    assert nc1["base"] < 0.5 < 2 < nc1["novel"]  # base classes collapsed, novel ones not
    assert nc1["1in1"] < nc1["2in1"] < nc1["5in1"]  # merging d classes per label: NC1 grows
    gain = pd.read_csv(default_run / "results" / "tables" / "nc1_vs_gain.csv")
    assert (gain["spearman_rho"] > 0.3).all()  # more proxies help more where NC1 is higher


def test_the_readmes_lowshot_directions_hold(default_run):
    summary = pd.read_csv(default_run / "results" / "tables" / "lowshot_summary.csv")
    novel = summary.pivot(index="n_shot", columns="method", values="novel_accuracy_mean")
    overall = summary.pivot(index="n_shot", columns="method", values="all_accuracy_mean")
    assert list(novel.index) == [1, 20]
    # Imprinting >> Rand-noFT: random novel weights never beat the trained base weights
    assert (novel["imprint"] > 0.3).all() and (novel["rand_noft"] < 0.05).all()
    # fine-tuning (either start) and AllClassJoint raise all-class accuracy over imprinting
    for method in ("rand_ft", "imprint_ft", "all_class_joint"):
        assert overall.loc[20, method] > overall.loc[20, "imprint"] + 0.1, method


def test_the_report_holds_every_figure_and_table_with_its_caption(default_run):
    report = (default_run / "report.html").read_text()
    embedded = set(re.findall(r'"data_uri": "data:[^;]+;charset=utf8;filename=([^;"]+)', report))
    assert {f"{name}.png" for name in DRAWN} <= embedded
    assert "nc1_vs_gain.csv" in embedded
    comparisons = set(DEFAULT["comparisons"])
    assert {f"{name}.png" for name in comparisons} | {
        f"{name}.csv" for name in comparisons
    } <= embedded
    assert {"summary.csv", "nc1_summary.csv", "gen_time_summary.csv", "lowshot_summary.csv"} <= (
        embedded
    )
    # Captions are rendered from the config: the named configurations, the test used.
    assert "Janson et al.: norm_pre=none, gen=mean, norm_post=none" in report
    assert "Nemenyi test (Demšar, 2006" in report or "Nemenyi test (Dem\\u0161ar, 2006" in report
    assert "This run: 2 FMs" in report
