"""datasetcli.py: the dataset command line, run as the manual gives it
(``python -m predictionservice.datasetloader``) and under its own name."""

import json
import subprocess
import sys

from helpers import ROOT


def test_command_line_load(mongo_db, mongo_uri, tmp_path):
    csv_file = tmp_path / "small.csv"
    csv_file.write_text('"a";"b"\n1;"x"\n2;"y"\n')
    cmd = [
        sys.executable,
        "-m",
        "predictionservice.datasetloader",
        "load",
        str(csv_file),
        "--uri",
        mongo_uri,
        "--db",
        mongo_db.name,
        "--collection",
        "small",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == {"inserted": 2, "collection": f"{mongo_db.name}.small"}
    bad = tmp_path / "bad.csv"
    bad.write_text("a;b\n1\n")
    out = subprocess.run([*cmd[:4], str(bad), *cmd[5:]], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "line 2" in out.stderr and "Traceback" not in out.stderr
    assert mongo_db.small.count_documents({}) == 2
    documents = tmp_path / "small.json"  # a JSON array, read a record at a time as an upload is
    documents.write_text('[{"a": 1},\n {"a": 2}, {"a": {"$gt": 3}}]')
    out = subprocess.run([*cmd[:4], str(documents), *cmd[5:-1], "j"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "item 2.a: field name '$gt'" in out.stderr and "Traceback" not in out.stderr
    documents.write_text('[{"a": 1},\n {"a": 2}]')
    out = subprocess.run([*cmd[:4], str(documents), *cmd[5:-1], "j"], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(out.stdout) == {"inserted": 2, "collection": f"{mongo_db.name}.j"}


def test_on_error_skip_loads_the_good_lines_and_names_the_bad_ones(mongo_db, mongo_uri, tmp_path):
    messy = tmp_path / "messy.csv"
    messy.write_text("a,b\n1,x\n2\n3,y\n4,z,extra\n5,w\n")
    cmd = [sys.executable, "-m", "predictionservice.datasetloader", "load", str(messy), "--uri", mongo_uri,
           "--db", mongo_db.name, "--collection", "messy"]  # fmt: skip
    refused = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 1 and "line 3" in refused.stderr and "line 5" in refused.stderr
    out = subprocess.run([*cmd, "--on-error", "skip"], capture_output=True, text=True, check=True, cwd=ROOT)
    answer = json.loads(out.stdout)
    assert (answer["inserted"], answer["skipped"]) == (3, 2)
    assert [bad["line"] for bad in answer["bad_lines"]] == [3, 5]
    assert sorted(d["a"] for d in mongo_db.messy.find()) == [1, 3, 5]


def test_the_command_line_runs_under_its_own_name_too():
    """datasetloader's entry hands over to datasetcli: the two commands are one parser."""
    helps = [
        subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        for module in ("predictionservice.datasetloader", "predictionservice.datasetcli")
    ]
    assert "load" in helps[0] and "download" in helps[0]
    assert helps[0].split("\n", 1)[1] == helps[1].split("\n", 1)[1]  # the usage line names the program
