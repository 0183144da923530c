"""`spillover impact estimate`: JSON and table output, NHEFS against Hernán & Robins, and errors
that name the file and the column (exit code 2)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from spillover.cli import main
from tests.impact.known_truth import confounded

# Hernán & Robins, "Causal Inference: What If", ch. 12-13: the effect of quitting smoking (qsmk) on
# weight gain 1971-1982 (wt82_71, kg) given these covariates, among the 1,566 with wt82 measured:
# 3.4 (95% CI 2.4 to 4.5) by IP weighting, 3.5 (2.6 to 4.5) by standardisation.
NHEFS_COVARIATES = ["sex", "race", "age", "education", "smokeintensity", "smokeyrs", "exercise", "active", "wt71"]


def run(capsys, *args):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as stopped:
        main(["impact", "estimate", *map(str, args)])
    out = capsys.readouterr()
    return stopped.value.code, out.out, out.err


@pytest.fixture(scope="module")
def flat_csv(tmp_path_factory):
    truth = confounded(2000, seed=11)
    frame = truth.frame()
    frame.insert(0, "customer_key", [f"c{i:05d}" for i in range(len(frame))])
    frame["region"] = np.where(truth.covariates[:, 2] > 0, "north", "south")
    frame.loc[::17, "x3"] = np.nan
    path = tmp_path_factory.mktemp("flat") / "customers.csv"
    frame.to_csv(path, index=False)
    return path, truth


@pytest.fixture(scope="module")
def nhefs_csv(tmp_path_factory):
    """NHEFS as the causaldata package ships it (a Stata file in its package data), wt82 known."""
    frame = pd.read_stata(resources.files("causaldata") / "nhefs" / "nhefs.dta")
    frame = frame[frame["wt82"].notna()]
    assert len(frame) == 1566
    table = frame[["qsmk", "wt82_71", *NHEFS_COVARIATES]].apply(pd.to_numeric)
    path = tmp_path_factory.mktemp("nhefs") / "nhefs.csv"
    table.to_csv(path, index=False)
    return path


def test_json_output_has_the_contract(capsys, flat_csv):
    path, truth = flat_csv
    code, out, _ = run(capsys, path, "--treatment", "bought", "--outcome", "margin", "--placebo-outcome", "margin_before", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {
        "estimand", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control", "naive_difference",
        "diagnostics", "warnings", "verdict",
    }
    assert data["estimand"] == "att" and data["ci_low"] <= truth.att <= data["ci_high"]
    assert data["naive_difference"] > truth.att + 1
    assert data["diagnostics"]["placebo"]["covers_zero"] is True
    assert set(data["diagnostics"]) >= {"overlap", "balance", "control_effective_sample_size", "sensitivity", "placebo"}
    # every other column is a covariate; the key is left out; the text column is one-hot encoded
    assert data["covariates"] == ["x0", "x1", "x2", "x3", "region"]
    assert data["encoded_covariates"] == 6
    assert "Column 'customer_key' has a distinct value on every row (an identifier?); left out of the covariates." in data["warnings"]
    assert "Covariate 'x3' has 118 missing values; the models treat them as their own branch." in data["warnings"]
    assert data["verdict"] == "reliable"


def test_the_propensity_model_can_be_chosen(capsys, flat_csv):
    path, truth = flat_csv
    code, out, _ = run(capsys, path, "--treatment", "bought", "--outcome", "margin", "--propensity-model", "logistic", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ci_low"] <= truth.att <= data["ci_high"] and data["verdict"] == "reliable"
    code, _, err = run(capsys, path, "--treatment", "bought", "--outcome", "margin", "--propensity-model", "forest")
    assert code == 2 and "propensity model must be one of boosting, logistic" in err


def test_table_output(capsys, flat_csv):
    path, _ = flat_csv
    code, out, _ = run(capsys, path, "--treatment", "bought", "--outcome", "margin", "--covariates", "x0,x1,x2,x3")
    assert code == 0
    assert "ATT of bought on margin" in out and "naive difference (attribution)" in out
    assert "verdict: reliable" in out


def test_nhefs_ate_of_quitting_smoking_matches_what_if(capsys, nhefs_csv):
    """ATE 3.4-3.5 kg (CI about 2.4 to 4.5) in the book; we accept an estimate within 3.0-4.0 and
    CI limits within 0.6 kg of the book's. Boosted trees on 1,566 rows are less efficient than the
    book's logistic and linear models with quadratic terms (observed: 3.26, CI 2.06 to 4.47; over
    seeds 3.26-3.35 with five repeated splits, 2.96-3.56 with one, hence --repeats 5)."""
    code, out, _ = run(
        capsys, nhefs_csv, "--treatment", "qsmk", "--outcome", "wt82_71", "--covariates", ",".join(NHEFS_COVARIATES),
        "--estimand", "ate", "--repeats", "5", "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert (data["n_treated"], data["n_control"]) == (403, 1163)
    assert data["naive_difference"] == pytest.approx(2.54, abs=0.01)  # the book's unadjusted 2.5
    assert 3.0 <= data["estimate"] <= 4.0
    assert abs(data["ci_low"] - 2.4) < 0.6 and abs(data["ci_high"] - 4.5) < 0.6


def write(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (lambda f: f, ["--treatment", "owner"], r"t.csv: treatment column 'owner' not found \(columns: x0, x1"),
        (lambda f: f, ["--covariates", "x0,size"], "t.csv: covariate column 'size' not found"),
        (lambda f: f.assign(bought=f.bought.map({0: "no", 1: "yes"})), [],
         r"t.csv: treatment column 'bought' must be 0/1 \(1 = bought the product\); found 'yes', 'no'|found 'no', 'yes'"),
        (lambda f: f.assign(bought=0), [], r"t.csv: treatment column 'bought' has no treated units \(no 1s\)"),
        (lambda f: f.assign(bought=1), [], r"t.csv: treatment column 'bought' has no control units \(no 0s\)"),
        (lambda f: f.assign(margin=7.5), [], r"t.csv: outcome column 'margin' is constant \(7.5 on every row\)"),
        (lambda f: f.assign(margin=f.margin.where(f.index > 1)), [], "t.csv: outcome column 'margin' has 2 missing values"),
        (lambda f: f, ["--estimand", "atc"], "--estimand must be att or ate, not 'atc'"),
        (lambda f: f, ["--covariates", "x0,margin"], "column 'margin' cannot be both a covariate and the treatment or an outcome"),
    ],
)
def test_bad_input_exits_2_with_a_message_naming_file_and_column(capsys, tmp_path, change, args, message):
    frame = change(confounded(200, seed=2).frame())
    path = write(tmp_path, frame)
    options = {"--treatment": "bought", "--outcome": "margin"}
    for flag, value in zip(args[::2], args[1::2]):
        options[flag] = value
    code, _, err = run(capsys, path, *[item for pair in options.items() for item in pair])
    assert code == 2
    assert err.startswith("error: ")
    import re

    assert re.search(message, err), err


def test_missing_and_unsupported_files(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "nope.csv", "--treatment", "d", "--outcome", "y")
    assert code == 2 and "nope.csv: no such file" in err
    (tmp_path / "t.xlsx").write_text("x")
    code, _, err = run(capsys, tmp_path / "t.xlsx", "--treatment", "d", "--outcome", "y")
    assert code == 2 and "unsupported file type; give a .csv, .csv.gz or .parquet file" in err


def test_perfectly_predicting_covariates_give_an_unreliable_verdict(capsys, tmp_path):
    rng = np.random.default_rng(4)
    spend = rng.gamma(2.0, 50.0, size=800)
    frame = pd.DataFrame({"spend_before": spend, "bought": (spend > 100).astype(int)})
    frame["margin"] = 0.1 * spend + 5 * frame.bought + rng.normal(size=800)
    code, out, _ = run(capsys, write(tmp_path, frame, "t.parquet"), "--treatment", "bought", "--outcome", "margin", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "unreliable"
    assert any("perfectly predict treatment" in w for w in data["warnings"])
