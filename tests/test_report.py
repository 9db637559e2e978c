"""itt.report on the fixture tree: hand-worked numbers, written files, CLI and bad inputs."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import fixtures_results as fx  # noqa: E402
from itt import report  # noqa: E402
from itt.reporting.render import latex_escape, to_markdown  # noqa: E402
from itt.reporting.stats import mean_std, paired_p_value  # noqa: E402

DOMAIN = ("sentiment", "domain", "vader_amazon")
XL = ("sentiment", "cross_lingual", "marc")
TOL = dict(abs=1e-9)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    fx.write_fixture_results(root)
    return root


@pytest.fixture(scope="module")
def df(results_root: Path) -> pd.DataFrame:
    return report.load_results([results_root])


@pytest.fixture(scope="module")
def written(results_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return report.write_report([results_root / "multirun", results_root / "runs"],
                               tmp_path_factory.mktemp("report"))


def _row(frame: pd.DataFrame, **where: object) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key] == value
    rows = frame[mask]
    assert len(rows) == 1, f"{where}: {len(rows)} rows"
    return rows.iloc[0]


# --------------------------------------------------------------------------- loading


def test_load_results_one_row_per_cell(df: pd.DataFrame) -> None:
    assert len(df) == fx.N_RESULTS == 30
    for column in ["experiment", "model", "pretraining", "intermediate", "target", "field",
                   "setting", "benchmark", "target_domain", "intermediate_domain", "seed",
                   "value", "metric", "per_language", "majority", "zero_shot", "status"]:
        assert column in df.columns
    assert set(df["status"]) == {"ok"}
    assert set(df["intermediate"]) == {"none", "vader_movie", "mnli"}
    cell = _row(df, model="minilm", intermediate="none", target="marc", seed=0)
    assert cell["pretraining"] == "text" and cell["setting"] == "cross_lingual"
    assert cell["value"] == pytest.approx(0.80) and cell["metric"] == "accuracy"
    assert cell["per_language"]["de"]["accuracy"] == pytest.approx(0.75)
    assert cell["majority"] == pytest.approx(0.34) and math.isnan(cell["zero_shot"])
    assert _row(df, model="codebert", intermediate="vader_movie", target="vader_amazon",
                seed=1)["zero_shot"] == pytest.approx(0.56)
    assert _row(df, model="me5_small", intermediate="mnli", target="xnli", seed=0)["same_domain"] is True
    assert _row(df, model="me5_small", intermediate="mnli", target="panx", seed=0)["same_domain"] is False
    assert _row(df, model="me5_small", intermediate="none", target="panx", seed=0)["metric"] == "f1"


def test_load_results_other_metric(results_root: Path) -> None:
    frame = report.load_results([results_root], metric="macro_f1")
    values = frame[(frame["model"] == "minilm") & (frame["target"] == "vader_amazon")
                   & (frame["intermediate"] == "none")]["value"]
    assert mean_std(values)[:2] == pytest.approx((0.71, 0.02), **TOL)
    assert set(frame["metric"]) == {"macro_f1"}


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("key", list(fx.EXPECTED), ids=lambda k: "-".join(k))
def test_gain_table_hand_worked_numbers(df: pd.DataFrame, key: tuple[str, str, str]) -> None:
    model, inter, target = key
    want = fx.EXPECTED[key]
    row = _row(report.gain_table(df, correction="none"), model=model, intermediate=inter, target=target)
    assert (row["without_mean"], row["without_std"], row["without_n"]) == pytest.approx(want["without"], **TOL)
    assert (row["with_mean"], row["with_std"], row["with_n"]) == pytest.approx(want["with_"], **TOL)
    assert row["gain"] == pytest.approx(want["gain"], **TOL)
    assert row["gain_std"] == pytest.approx(want["gain_std"], **TOL)
    assert row["n_pairs"] == want["n_pairs"]
    assert row["p_value"] == pytest.approx(want["p"], abs=1e-9)
    assert row["significance"] == want["significance"]
    assert row["zero_shot"] == pytest.approx(want["zero_shot"], nan_ok=True, **TOL)
    assert row["majority"] == pytest.approx(want["majority"], nan_ok=True, **TOL)


def test_p_values_match_closed_forms() -> None:
    # t = 5*sqrt(3) with 2 df: p = 1 - t / sqrt(t^2 + 2)
    assert paired_p_value([0.74, 0.77, 0.80], [0.70, 0.72, 0.74]) == pytest.approx(0.0130724576, abs=1e-9)
    # t = -13 with 1 df: p = 1 - 2/pi * atan(13)
    assert paired_p_value([0.44, 0.48], [0.50, 0.55]) == pytest.approx(0.0488745039, abs=1e-9)
    assert math.isnan(paired_p_value([0.8], [0.7]))                 # one pair: n/a
    assert math.isnan(paired_p_value([0.7, 0.8], [0.7, 0.8]))       # no difference at all
    assert paired_p_value([0.74, 0.77, 0.80], [0.70, 0.72, 0.74], "wilcoxon") == pytest.approx(0.25)
    boot = paired_p_value([0.74, 0.77, 0.80], [0.70, 0.72, 0.74], "bootstrap")
    assert 0 < boot < 0.05 and boot == paired_p_value([0.74, 0.77, 0.80], [0.70, 0.72, 0.74], "bootstrap")
    with pytest.raises(ValueError, match="unknown test"):
        paired_p_value([1, 2], [0, 1], "anova")


def test_paper_table_cells(df: pd.DataFrame) -> None:
    table = report.paper_table(df, correction="none")
    assert list(table.index) == ["codebert", "me5_small", "minilm"]
    assert table.columns.names == ["field", "setting", "target", "column"]
    # domain targets first, then cross-lingual, then XTREME-R
    assert [c[2] for c in table.columns][0] == "vader_amazon"
    assert list(dict.fromkeys(c[1] for c in table.columns)) == ["domain", "cross_lingual", "xtreme"]
    assert table.loc["minilm", (*DOMAIN, "majority")] == "0.510"
    assert table.loc["minilm", (*DOMAIN, "no ITT")] == "0.720 ± 0.020"
    assert table.loc["minilm", (*DOMAIN, "zero-shot vader_movie")] == "0.660"
    assert table.loc["minilm", (*DOMAIN, "ITT vader_movie")] == "0.770 ± 0.030"
    # gains of 0.04, 0.05, 0.06: t interval 0.05 ± t(0.975, 2) 0.01 / sqrt(3) = ± 0.0248
    assert table.loc["minilm", (*DOMAIN, "gain vader_movie")] == "+0.050 [+0.025, +0.075]"
    assert table.loc["minilm", (*DOMAIN, "p vader_movie")] == "0.013"
    assert table.loc["minilm", (*DOMAIN, "verdict vader_movie")] == "helps ▲"
    assert table.loc["codebert", (*DOMAIN, "gain vader_movie")] == "-0.020 [-0.045, +0.005]"
    assert table.loc["codebert", (*DOMAIN, "p vader_movie")] == "0.074"
    assert table.loc["codebert", (*DOMAIN, "verdict vader_movie")] == "undecided"
    assert table.loc["codebert", (*XL, "gain vader_movie")] == "-0.065 [-0.129, -0.001]"
    assert table.loc["codebert", (*XL, "verdict vader_movie")] == "hurts ▼"
    assert table.loc["codebert", (*XL, "ITT vader_movie")] == "0.460 ± 0.028 (n=2)"
    assert table.loc["minilm", (*XL, "no ITT")] == "0.810 ± 0.014 (n=2)"
    assert table.loc["minilm", (*XL, "p vader_movie")] == "0.205"
    assert table.loc["me5_small", ("nli", "xtreme", "xnli", "no ITT")] == "0.610 ± 0.014"
    assert table.loc["me5_small", (*DOMAIN, "no ITT")] == "–"


def test_gains_are_corrected_over_the_table(df: pd.DataFrame) -> None:
    """Holm over the six tested gains: the smallest p (0.0131) times 6 is 0.078 > 0.05."""
    from itt.reporting.stats import correct

    gains = report.gain_table(df)
    tested = gains[gains["p_value"].notna()]
    assert len(tested) == 6
    assert list(tested["p_adjusted"]) == pytest.approx(list(correct(tested["p_value"], "holm")))
    row = _row(gains, model="minilm", target="vader_amazon", intermediate="vader_movie")
    assert row["p_adjusted"] == pytest.approx(6 * 0.0130724576, abs=1e-9)
    assert row["verdict"] == "undecided" and row["significance"] == ""
    assert set(gains["verdict"]) == {"undecided"}       # nothing survives the correction
    assert set(tested["test"]) == {"paired t-test over seeds"}   # no examples.json here
    bh = report.gain_table(df, correction="bh")
    assert list(bh.loc[bh["p_value"].notna(), "p_adjusted"]) == pytest.approx(
        list(correct(tested["p_value"], "bh")))
    table = report.paper_table(df)
    assert table.loc["minilm", (*DOMAIN, "p vader_movie")] == "0.078"
    assert table.loc["minilm", (*DOMAIN, "verdict vader_movie")] == "undecided"


def test_paper_table_says_na_with_fewer_than_two_pairs(df: pd.DataFrame) -> None:
    sub = df[(df["model"] == "minilm") & (df["target"] == "marc")
             & ~((df["intermediate"] == "none") & (df["seed"] == 1))]
    row = _row(report.gain_table(sub), intermediate="vader_movie")
    assert row["n_pairs"] == 1 and row["gain"] == pytest.approx(0.01, **TOL)
    assert math.isnan(row["p_value"]) and row["significance"] == ""
    table = report.paper_table(sub)
    assert table.loc["minilm", (*XL, "p vader_movie")] == "n/a"
    assert table.loc["minilm", (*XL, "gain vader_movie")] == "+0.010"
    assert table.loc["minilm", (*XL, "verdict vader_movie")] == "undecided"
    # no seed in common: the gain is the difference of the means, untested
    unpaired = df[(df["model"] == "minilm") & (df["target"] == "marc")
                  & ((df["intermediate"] == "none") | (df["seed"] == 2))]
    row = _row(report.gain_table(unpaired), intermediate="vader_movie")
    assert row["n_pairs"] == 0 and row["gain"] == pytest.approx(0.87 - 0.81, **TOL)
    table = report.paper_table(unpaired)
    assert table.loc["minilm", (*XL, "gain vader_movie")] == "+0.060"
    assert table.loc["minilm", (*XL, "p vader_movie")] == "n/a"


def test_several_experiments_are_kept_apart(df: pd.DataFrame) -> None:
    two = df.copy()
    two.loc[two["target"].isin(["xnli", "panx"]), "experiment"] = "xt"
    table = report.paper_table(two, correction="none")
    assert list(table.index) == ["mini/codebert", "mini/minilm", "xt/me5_small"]
    assert table.loc["mini/minilm", (*DOMAIN, "gain vader_movie")] == "+0.050 [+0.025, +0.075]"
    # within one experiment (the XTREME-R cells here) labels stay plain
    assert list(report.xtreme_table(two).index) == [("me5_small", "none"), ("me5_small", "mnli")]


def test_per_language_table(df: pd.DataFrame) -> None:
    assert report.cross_lingual_targets(df) == ["marc", "panx", "xnli"]
    tidy = report.per_language_table(df, "marc", correction="none")
    en = _row(tidy, model="minilm", intermediate="none", language="en")
    assert (en["mean"], en["std"], en["n"]) == pytest.approx((0.91, math.sqrt(2) / 100, 2), **TOL)
    de = _row(tidy, model="codebert", intermediate="vader_movie", language="de")
    assert de["gain"] == pytest.approx(-0.065, **TOL) and de["significance"] == "hurts"
    view = report.per_language_view(df, "marc", tidy=tidy,
                                    main=report.gain_table(df, correction="none"))
    assert list(view.columns) == ["en", "de", "fr", "avg"]
    assert view.loc[("minilm", "ITT vader_movie"), "fr"] == "0.790 ± 0.030"
    assert view.loc[("codebert", "gain vader_movie"), "avg"] == "-0.065▼"


def test_xtreme_table(df: pd.DataFrame) -> None:
    table = report.xtreme_table(df)
    assert list(table.index) == [("me5_small", "none"), ("me5_small", "mnli")]
    assert list(table.columns) == ["xnli", "panx", "classification avg",
                                   "structured_prediction avg", "overall", "n_tasks"]
    base, itt = table.loc[("me5_small", "none")], table.loc[("me5_small", "mnli")]
    assert (base["xnli"], base["panx"], base["overall"]) == pytest.approx((0.61, 0.51, 0.56), **TOL)
    assert (itt["xnli"], itt["panx"], itt["overall"]) == pytest.approx((0.68, 0.49, 0.585), **TOL)
    assert base["n_tasks"] == 2


def test_domain_comparison(df: pd.DataFrame) -> None:
    xtreme = report.domain_comparison(df, xtreme_only=True)
    assert _row(xtreme, model="me5_small", domain="same")["mean_gain"] == pytest.approx(0.07, **TOL)
    assert _row(xtreme, model="me5_small", domain="different")["mean_gain"] == pytest.approx(-0.02, **TOL)
    assert set(xtreme["model"]) == {"me5_small"}
    everything = report.domain_comparison(df, gains=report.gain_table(df, correction="none"))
    minilm = _row(everything, model="minilm", domain="different")
    assert (minilm["n_task_pairs"], minilm["mean_gain"]) == pytest.approx((2, 0.0325), **TOL)
    assert (minilm["helps"], minilm["hurts"], minilm["undecided"]) == (1, 0, 1)
    corrected = _row(report.domain_comparison(df), model="minilm", domain="different")
    assert (corrected["helps"], corrected["undecided"]) == (0, 2)


def test_pretraining_comparison(df: pd.DataFrame) -> None:
    table = report.pretraining_comparison(df, gains=report.gain_table(df, correction="none"))
    text = _row(table, pretraining="text", setting="all")
    code = _row(table, pretraining="code", setting="all")
    multi = _row(table, pretraining="multilingual", setting="all")
    assert (text["mean_gain"], text["std_gain"]) == pytest.approx((0.0325, 0.035 / math.sqrt(2)), **TOL)
    assert code["mean_gain"] == pytest.approx(-0.0425, **TOL) and code["hurts"] == 1
    assert multi["mean_gain"] == pytest.approx(0.025, **TOL)
    assert _row(table, pretraining="code", setting="domain")["mean_gain"] == pytest.approx(-0.02, **TOL)


def test_failures_and_missing_cells(results_root: Path, df: pd.DataFrame) -> None:
    failures = report.load_failures([results_root])
    assert len(failures) == 1
    failed = failures.iloc[0]
    assert {k: failed[k] for k in fx.FAILED} == fx.FAILED
    assert failed["exception"] == fx.FAILED_EXCEPTION  # first line only
    missing = report.missing_cells(df, failures, report.load_plans([results_root]))
    assert len(missing) == 1
    row = missing.iloc[0]
    assert {k: row[k] for k in fx.MISSING} == fx.MISSING
    assert "plan.json" in row["reason"] and "counterpart" in row["reason"]


def test_superseded_failure_and_duplicate_result(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = fx.make_result("minilm", "none", "vader_amazon", 0, 0.5)
    new = fx.make_result("minilm", "none", "vader_amazon", 0, 0.7)
    old["finished_at"], new["finished_at"] = "2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00"
    for name, doc in [("a/result.json", new), ("b/result.json", old),
                      ("c/error.json", fx.make_error("minilm", "none", "vader_amazon", 0, "OSError: x"))]:
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        frame = report.load_results([tmp_path])
    assert len(frame) == 1 and frame["value"].iloc[0] == pytest.approx(0.7)
    assert "two results" in caplog.text
    assert report.load_failures([tmp_path]).empty  # the re-run succeeded


# --------------------------------------------------------------------------- files


def test_written_files(written: dict[str, Path]) -> None:
    for key in ["markdown", "latex", "cells_csv", "summary_csv", "heatmap"]:
        assert written[key].is_file(), key
    pngs = [p for p in written.values() if p.suffix == ".png"]
    assert {p.name for p in pngs} == {"gain_heatmap.png", "per_language_marc.png",
                                      "per_language_panx.png", "per_language_xnli.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.size[0] > 200 and image.size[1] > 100


def test_report_markdown_lists_failed_and_missing(written: dict[str, Path]) -> None:
    md = written["markdown"].read_text(encoding="utf-8")
    assert ("| minilm | 0.510 | 0.720 ± 0.020 | 0.660 | 0.770 ± 0.030 | +0.050 [+0.025, +0.075] "
            "| 0.078 | undecided |") in md
    assert "Holm's step-down correction" in md and "α = 0.05" in md and "Seeds: 0, 1, 2." in md
    assert ("| minilm | vader_amazon | vader_movie | 0.510 | 0.720 | 0.660 | 0.770 | "
            "+0.050 [+0.025, +0.075] | 0.078 | undecided | 3 |") in md
    assert md.index("## Gains") < md.index("## Main table")
    assert "| marc | 3 | en 300, de 300, fr 300 | 0, 1, 2 |" in md
    assert ("FAILED experiment=mini model=codebert intermediate=vader_movie target=marc seed=2: "
            + fx.FAILED_EXCEPTION) in md
    assert "If reserved but unallocated" not in md  # only the exception's first line
    assert "MISSING experiment=mini model=minilm intermediate=none target=marc seed=2" in md
    assert "![mean gain](figures/gain_heatmap.png)" in md
    assert "## XTREME-R" in md and "mnli→xnli" in md


def test_csv_files(written: dict[str, Path]) -> None:
    cells = pd.read_csv(written["cells_csv"], keep_default_na=False)
    main = cells[(cells["model"] == "minilm") & (cells["intermediate"] == "none")
                 & (cells["target"] == "vader_amazon") & (cells["source"] == "model")
                 & (cells["scope"] == "main")]
    assert sorted(main["value"].astype(float)) == pytest.approx([0.70, 0.72, 0.74])
    lang = cells[(cells["target"] == "marc") & (cells["scope"] == "language")
                 & (cells["language"] == "de") & (cells["metric"] == "accuracy")]
    assert len(lang) == 10  # marc cells: 12 planned, one failed, one missing
    assert set(cells["source"]) == {"model", "majority", "zero_shot"}
    summary = pd.read_csv(written["summary_csv"])
    row = _row(summary, model="minilm", target="vader_amazon", intermediate="vader_movie")
    assert row["gain"] == pytest.approx(0.05) and row["p_value"] == pytest.approx(0.0130724576)
    assert len(summary) == 6
    assert len(pd.read_csv(written["failures_csv"])) == 1
    assert len(pd.read_csv(written["missing_csv"])) == 1


def test_latex(written: dict[str, Path]) -> None:
    tex = written["latex"].read_text(encoding="utf-8")
    for snippet in [r"\begin{tabular}", r"\toprule", r"\midrule", r"\bottomrule",
                    r"\usepackage{booktabs}", r"vader\_amazon",
                    r"+0.050 [+0.025, +0.075]", r"$-$0.065 [$-$0.129, $-$0.001]",
                    r"\multicolumn{7}{c}{sentiment / domain}"]:
        assert snippet in tex, snippet
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}")
    assert "±" not in tex and "▲" not in tex


def test_render_helpers() -> None:
    assert latex_escape("a_b & 50% #1") == r"a\_b \& 50\% \#1"
    assert latex_escape("-0.020 ± 0.010▼") == r"$-$0.020 $\pm$ 0.010\textsuperscript{$\blacktriangledown$}"
    assert to_markdown(pd.DataFrame({"a": [1.23456, math.nan], "b": ["x|y", None]}), index=False) == (
        "| a | b |\n|---|---|\n| 1.235 | x\\|y |\n| – | – |")


def test_heatmap_without_itt_cells(df: pd.DataFrame, tmp_path: Path) -> None:
    fig = report.plot_gain_heatmap(df[df["intermediate"] == "none"], tmp_path / "h.png")
    assert fig is not None and (tmp_path / "h.png").stat().st_size > 0


# --------------------------------------------------------------------------- W&B


class _FakeWandb(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("wandb")
        self.inits: list[dict] = []
        self.logged: list[dict] = []
        fake = self

        class Table:
            def __init__(self, dataframe: pd.DataFrame) -> None:
                self.dataframe = dataframe

        class Image:
            def __init__(self, path: str) -> None:
                self.path = path

        class Run:
            def log(self, payload: dict) -> None:
                fake.logged.append(payload)

            def finish(self) -> None:
                pass

        self.Table, self.Image, self._Run = Table, Image, Run

    def init(self, **kwargs: object) -> object:
        self.inits.append(kwargs)
        return self._Run()


def test_wandb_logs_tables_and_images_when_online(results_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-value-123")
    paths = report.write_report([results_root / "runs"], tmp_path / "out", wandb=True)
    assert fake.inits and fake.inits[0]["job_type"] == "report"
    payload = fake.logged[0]
    assert isinstance(payload["summary"], fake.Table) and isinstance(payload["gain_heatmap"], fake.Image)
    assert "per_language/xnli" in payload
    for path in paths.values():
        assert b"secret-key-value-123" not in path.read_bytes()


def test_wandb_offline_writes_files_only(results_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from itt.reporting.wandb_log import log_report, wandb_online

    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    for mode in ["offline", "disabled"]:
        monkeypatch.setenv("WANDB_MODE", mode)
        assert not wandb_online()
        assert log_report({"t": pd.DataFrame({"a": [1]})}, {}) is False
    assert fake.inits == []


# --------------------------------------------------------------------------- CLI and bad input


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8", "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "itt.report", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_cli_reports_and_skips_a_malformed_result(results_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "results"
    shutil.copytree(results_root, root)
    bad = fx.write_malformed_result(root / "multirun" / "2026-11-21" / "12-00-00" / "99")
    out = tmp_path / "report"
    proc = _cli(str(root / "multirun"), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "+0.050 [+0.025, +0.075]" in proc.stdout and "-0.065 [-0.129, -0.001]" in proc.stdout
    assert "Holm's step-down correction" in proc.stdout
    assert "FAILED experiment=mini model=codebert" in proc.stdout
    assert "MISSING experiment=mini model=minilm" in proc.stdout
    assert str(out / "report.md") in proc.stdout and str(out / "cells.csv") in proc.stdout
    assert str(bad) in proc.stderr and "malformed" in proc.stderr
    assert "22 cells, 1 failed, 1 missing" in proc.stdout  # no finished result lost
    assert str(bad) in (out / "report.md").read_text(encoding="utf-8")


def test_cli_exit_2_without_results(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli(str(empty), cwd=tmp_path)
    assert proc.returncode == 2
    assert "no result.json found" in proc.stderr and str(empty) in proc.stderr


def test_report_does_not_import_torch(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys, itt.report; sys.exit(3 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          timeout=120).returncode == 0


def test_main_defaults_name_the_searched_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("ITT_OUTPUT_DIR", str(tmp_path / "outputs"))
    assert report.main([]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "outputs" / "multirun") in err and str(tmp_path / "outputs" / "runs") in err


@pytest.mark.parametrize("content, reason", [
    ('{"schema": "itt.result/1", "cell": ', "invalid JSON"),
    (json.dumps({**fx.make_result("minilm", "none", "marc", 0, 0.8), "metrics": {"main": "high"}}),
     "metrics.main"),
    (json.dumps({**fx.make_result("minilm", "none", "marc", 0, 0.8), "status": "failed"}), "status"),
    (json.dumps({**fx.make_result("minilm", "none", "marc", 0, 0.8),
                 "cell": {"model": "minilm", "target": "marc"}}), "seed"),
])
def test_main_exit_2_when_the_only_result_is_malformed(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       content: str, reason: str) -> None:
    bad = fx.write_malformed_result(tmp_path / "runs" / "x", content)
    assert report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and reason in err
    assert not (tmp_path / "out" / "report.md").exists()


# --------------------------------------------------------------------------- per-example statistics


def _write_cells_with_examples(root: Path, acc_with: float, acc_without: float, seeds: int = 3,
                               n: int = 300, stale_seed: int | None = None) -> None:
    """vader_amazon cells of minilm with examples.json (binary labels, fixed accuracy)."""
    rng = np.random.default_rng(11)
    for seed in range(seeds):
        gold = rng.integers(0, 2, n)
        for inter, acc in (("none", acc_without), ("vader_movie", acc_with)):
            pred = np.where(rng.random(n) < acc, gold, 1 - gold)
            main = float(np.mean(pred == gold))
            doc = fx.make_result("minilm", inter, "vader_amazon", seed, round(main, 6))
            doc["metrics"]["per_language"]["en"]["n"] = n
            doc["examples"] = "examples.json"
            cell = root / f"{inter}" / f"seed{seed}"
            fx._dump(cell / "result.json", doc)
            chash = "stale" if (seed == stale_seed and inter == "none") else doc["config_hash"]
            fx._dump(cell / "examples.json", {
                "schema": "itt.examples/1", "config_hash": chash, "main_metric": "accuracy",
                "target": {"en": {"pred": pred.tolist(), "gold": gold.tolist()}}, "zero_shot": {}})


def test_examples_json_gives_the_hierarchical_test(tmp_path: Path) -> None:
    from itt.reporting.stats import BOOTSTRAP_TEST, gain_stats

    _write_cells_with_examples(tmp_path, 0.85, 0.65)
    df = report.load_results([tmp_path])
    row = _row(report.gain_table(df), intermediate="vader_movie")
    assert row["test"] == BOOTSTRAP_TEST and row["n_examples"] == 300 and row["n_pairs"] == 3
    assert row["ci_low"] > 0 and row["verdict"] == "helps"
    # the same numbers as gain_stats on the files themselves
    def block(inter: str, seed: int) -> dict:
        return json.loads((tmp_path / inter / f"seed{seed}" / "examples.json").read_text())["target"]
    direct = gain_stats([block("vader_movie", s) for s in range(3)],
                        [block("none", s) for s in range(3)], "accuracy")
    assert (row["ci_low"], row["ci_high"], row["p_value"]) == pytest.approx(
        (direct.ci_low, direct.ci_high, direct.p))
    # the gain column is the seeds' result.json difference, equal to the examples' one
    assert row["gain"] == pytest.approx(direct.mean, abs=1e-5)
    ttest = _row(report.gain_table(df, test="ttest"), intermediate="vader_movie")
    assert ttest["test"] == "paired t-test over seeds" and ttest["gain"] == row["gain"]


def test_stale_examples_fall_back_to_seeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_cells_with_examples(tmp_path, 0.85, 0.65, stale_seed=1)
    df = report.load_results([tmp_path])
    with caplog.at_level("WARNING"):
        row = _row(report.gain_table(df), intermediate="vader_movie")
    assert row["test"] == "paired t-test over seeds"
    assert "config_hash stale" in caplog.text and "seed1" in caplog.text


def test_default_out_dir_and_stale_figures(tmp_path: Path, results_root: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITT_OUTPUT_DIR", str(tmp_path / "outputs"))
    _write_cells_with_examples(tmp_path / "multirun" / "mini", 0.8, 0.7, seeds=2)
    paths = report.write_report([tmp_path / "multirun" / "mini"])
    assert paths["markdown"] == tmp_path / "outputs" / "report" / "mini" / "report.md"
    figures = tmp_path / "outputs" / "report" / "mini" / "figures"
    stale = figures / "per_language_gone.png"
    stale.write_bytes(b"old")
    mine_too = figures / "notes.png"          # not a name the report draws: kept
    mine_too.write_bytes(b"keep")
    report.write_report([tmp_path / "multirun" / "mini"])
    assert not stale.exists() and mine_too.exists()
    # several experiments: the one input directory's name, else "all"
    two = report.load_results([results_root])
    two.loc[two["target"] == "xnli", "experiment"] = "xt"
    assert report.default_out_dir(two, [results_root / "multirun"]) == tmp_path / "outputs/report/multirun"
    assert report.default_out_dir(two, [results_root, tmp_path]) == tmp_path / "outputs/report/all"
