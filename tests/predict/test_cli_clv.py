"""``spillover clv fit``: summary and transactions files, JSON, predictions output, and bad input."""

from __future__ import annotations

import importlib.resources
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from spillover.cli import app
from spillover.predict.simulate import simulate_transactions

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), prog_name="spillover")


@pytest.fixture
def cdnow_file(tmp_path):
    pytest.importorskip("lifetimes")
    source = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    with importlib.resources.as_file(source) as file:
        raw = pd.read_csv(file)
    path = tmp_path / "cdnow.csv"
    raw.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"}).to_csv(path, index=False)
    return path


def test_fit_summary_json(cdnow_file, tmp_path):
    out = tmp_path / "predictions.parquet"
    result = invoke("clv", "fit", "--summary", str(cdnow_file), "--output", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {k: round(v, 3) for k, v in data["bgnbd"].items()} == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {k: round(v, 2) for k, v in data["gamma_gamma"].items()} == {"p": 6.25, "q": 3.74, "v": 15.45}
    assert data["n_customers"] == 2357 and data["n_repeat_customers"] == 946
    assert data["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert data["bgnbd_standard_errors"]["r"] == pytest.approx(0.01256, abs=1e-5)
    assert data["converged"] is True and data["warnings"] == []
    predictions = pd.read_parquet(out)
    assert list(predictions.columns) == ["ID", "expected_purchases", "p_alive", "expected_spend", "clv"]
    assert len(predictions) == 2357 and data["output"]["rows"] == 2357
    assert predictions.loc[0, "p_alive"] == pytest.approx(0.7266, abs=1e-4)


def test_fit_summary_table(cdnow_file):
    result = invoke("clv", "fit", "--summary", str(cdnow_file))
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "4.414" in result.output and "2,357 customers" in result.output


def test_fit_pareto_nbd(cdnow_file):
    result = invoke("clv", "fit", "--summary", str(cdnow_file), "--model", "pareto-nbd", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "bgnbd" not in data
    assert {k: round(v, 3) for k, v in data["pareto_nbd"].items() if k != "beta"} == {"r": 0.553, "alpha": 10.578, "s": 0.606}
    assert data["log_likelihood"] == pytest.approx(-9595.0, abs=0.05) and "gamma_gamma" in data
    table = invoke("clv", "fit", "--summary", str(cdnow_file), "--model", "pareto-nbd")
    assert "Pareto/NBD" in table.output and "10.58" in table.output


def test_fit_transactions_with_holdout(tmp_path):
    path = tmp_path / "orders.csv"
    simulate_transactions(4_000, r=0.3, alpha=5.0, a=0.8, b=2.5, days=420, seed=2).assign(
        purchased_at=lambda f: f["purchased_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    ).to_csv(path, index=False)
    out = tmp_path / "clv.csv"
    result = invoke(
        "clv", "fit", "--transactions", str(path), "--customer-id", "customer_id", "--datetime", "purchased_at",
        "--monetary", "amount", "--freq", "W", "--calibration-end", "2024-11-30", "--output", str(out), "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["bgnbd"]) == {"r", "alpha", "a", "b"} and set(data["gamma_gamma"]) == {"p", "q", "v"}
    holdout = data["holdout"]
    assert holdout["periods"] > 0 and holdout["actual_purchases"] > 100
    assert holdout["predicted_purchases"] == pytest.approx(holdout["actual_purchases"], rel=0.2)
    predictions = pd.read_csv(out)
    assert predictions.columns[0] == "customer_id" and (predictions["clv"] > 0).all()


def test_bad_input_exits_2_naming_file_and_column(tmp_path, cdnow_file, capsys):
    from spillover.cli import main

    broken = tmp_path / "broken.csv"
    pd.read_csv(cdnow_file).drop(columns=["recency"]).to_csv(broken, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["clv", "fit", "--summary", str(broken)])
    assert exit_info.value.code == 2
    assert f"error: {broken}: required column 'recency' missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of --summary FILE or --transactions FILE"),
        (("--transactions", "t.csv"), "--transactions needs --customer-id COLUMN and --datetime COLUMN"),
        (("--summary", "s.csv", "--datetime", "at"), "--datetime only apply to --transactions"),
        (("--summary", "s.txt"), "s.txt: unsupported file type '.txt'; use .csv or .parquet"),
        (("--summary", "missing.csv"), "missing.csv: no such file"),
        (("--summary", "s.csv", "--freq", "M"), "--freq 'M' is not supported"),
        (("--summary", "s.csv", "--model", "pnbd"), "--model 'pnbd' is not supported; use bgnbd or pareto-nbd"),
    ],
)
def test_argument_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]}).to_csv("s.csv", index=False)
    result = invoke("clv", "fit", *args)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_transactions_errors_name_the_file(tmp_path):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"customer": ["a", "a"], "at": ["2024-01-01", "someday"]}).to_csv(path, index=False)
    result = invoke("clv", "fit", "--transactions", str(path), "--customer-id", "customer", "--datetime", "at")
    assert f"{path}: column 'at' has 1 row that are empty or not a date/time, first at row 2: 'someday'" in str(result.exception)
    result = invoke("clv", "fit", "--transactions", str(path), "--customer-id", "who", "--datetime", "at")
    assert f"{path}: column 'who' missing (found customer, at)" in str(result.exception)
