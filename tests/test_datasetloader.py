import io
import json
import threading
from collections import Counter

import pytest

from predictionservice import datasetloader, datasetreaders
from predictionservice.exceptions import Conflict, InvalidDataset


def test_bank_full_loads_as_mongoimport_would(bank_collection):
    assert bank_collection.count_documents({}) == 45211
    doc = bank_collection.find_one({}, {"_id": 0})
    assert list(doc) == [
        "age",
        "job",
        "marital",
        "education",
        "default",
        "balance",
        "housing",
        "loan",
        "contact",
        "day",
        "month",
        "duration",
        "campaign",
        "pdays",
        "previous",
        "poutcome",
        "y",
    ]
    assert isinstance(doc["age"], int) and isinstance(doc["job"], str)
    labels = Counter(d["y"] for d in bank_collection.find({}, {"y": 1}))
    assert labels == {"no": 39922, "yes": 5289}


def test_comma_csv_is_detected_and_typed(mongo_db):
    data = b'name,score,ratio,note\n"Ann, Jr.",3,0.5,\nBob,-4,1e3,"x"\n'
    n = datasetloader.load_csv(mongo_db.people, io.BytesIO(data))
    assert n == 2
    docs = list(mongo_db.people.find({}, {"_id": 0}))
    assert docs == [
        {"name": "Ann, Jr.", "score": 3, "ratio": 0.5, "note": None},
        {"name": "Bob", "score": -4, "ratio": 1000.0, "note": "x"},
    ]


def test_semicolon_uci_format_with_bom(mongo_db):
    data = '\ufeff"a";"b"\n1;"x;y"\n'.encode()
    datasetloader.load_csv(mongo_db.c, io.BytesIO(data))
    assert mongo_db.c.find_one({}, {"_id": 0}) == {"a": 1, "b": "x;y"}


def test_a_decimal_comma_csv_is_read_as_numbers(mongo_db):
    """'1,5;2,5' is what a spreadsheet in most of Europe saves: numbers, not strings that no
    schema can use ('no usable feature' was the answer)."""
    data = b"a;b;c;label\n1,5;-2,25;,5;yes\n3;4,0;x,y;no\n"
    datasetloader.load_csv(mongo_db.eu, io.BytesIO(data))
    docs = list(mongo_db.eu.find({}, {"_id": 0}))
    assert docs == [{"a": 1.5, "b": -2.25, "c": 0.5, "label": "yes"}, {"a": 3, "b": 4.0, "c": "x,y", "label": "no"}]
    assert datasetreaders.typed("1,5") == "1,5"  # a comma-delimited file cannot mean a decimal comma


def _existing(collection):
    collection.insert_many([{"keep": i} for i in range(3)])
    return sorted(d["keep"] for d in collection.find())


@pytest.mark.parametrize(
    "data, message",
    [
        (b"a;b;c\n1;2;3\n4;5\n", "line 3: 2 fields where the header has 3"),
        (b"", "empty input"),
        (b"a;b\n", "no rows"),
        (b"a;b\n1;\xff\xfe\n", "not UTF-8"),
        (b"a;a\n1;2\n", "duplicate column"),
        (b"$a;b\n1;2\n", "may not start with '$'"),
        # issue 11: a header past the caps, a cell past the csv module's limit, a row past 16 MiB
        (b"a" * 70_000 + b"\n1\n", "line 1: the header is longer than 65536 characters"),
        (",".join(f"c{i}" for i in range(1001)).encode() + b"\n1\n", "1001 columns; a dataset has at most 1000"),
        # curl -d @file.csv strips the newlines: the header would run into the first row
        (b"cultivar;alcohol1;14.232;13.2", "single line with no line break: 'curl -d @file' strips"),
        (b"a;b", "--data-binary @file.csv -H 'Content-Type: text/csv'"),
    ],
)
def test_bad_input_is_refused_and_leaves_the_collection_intact(mongo_db, data, message):
    before = _existing(mongo_db.target)
    with pytest.raises(InvalidDataset, match=message.replace("$", r"\$")):
        datasetloader.load_csv(mongo_db.target, io.BytesIO(data))
    assert sorted(d["keep"] for d in mongo_db.target.find()) == before
    assert mongo_db.list_collection_names() == ["target"]  # no temporary collection left behind


def test_a_header_cell_past_the_csv_field_limit_and_a_row_past_16_mib_are_refused(mongo_db):
    """Issue 11, finding 8: both were 500s (_csv.Error outside the try; DocumentTooLarge)."""
    before = _existing(mongo_db.target)
    cell = b"h" * 131_073
    with pytest.raises(InvalidDataset, match="line 1: malformed CSV header"):
        datasetloader.load_csv(mongo_db.target, io.BytesIO(cell + b",b\n1,2\n"), max_header_chars=10**6)
    header = ",".join(f"c{i}" for i in range(130)).encode()
    row = b",".join([b"x" * 130_000] * 130)  # 16.9 MB, every cell under the csv module's limit
    with pytest.raises(InvalidDataset, match="line 2: the row is larger than a MongoDB document may be"):
        datasetloader.load_csv(mongo_db.target, io.BytesIO(header + b"\n" + row + b"\n"))
    assert sorted(d["keep"] for d in mongo_db.target.find()) == before
    assert mongo_db.list_collection_names() == ["target"]


def test_the_duplicate_header_check_is_linear_and_the_caps_are_settings(mongo_db):
    """40,000 columns took 14 s to check for duplicates (names.count per name); the cap is a
    setting, and under a raised one the check names every duplicate at once."""
    names = [f"c{i}" for i in range(40_000)] + ["c7", "c9"]
    data = ",".join(names).encode() + b"\n" + b",".join([b"1"] * len(names)) + b"\n"
    with pytest.raises(InvalidDataset, match="line 1: the header is longer than 65536 characters"):
        datasetloader.load_csv(mongo_db.wide, io.BytesIO(data))
    with pytest.raises(InvalidDataset, match="40002 columns; a dataset has at most 1000"):
        datasetloader.load_csv(mongo_db.wide, io.BytesIO(data), max_header_chars=10**6)
    with pytest.raises(InvalidDataset, match=r"duplicate column\(s\) c7, c9$"):
        datasetloader.load_csv(mongo_db.wide, io.BytesIO(data), max_columns=50_000, max_header_chars=10**6)
    assert mongo_db.list_collection_names() == []


def test_concurrent_appends_with_overlapping_ids_merge_all_or_nothing(mongo_db):
    """Issue 11, finding 13: two appends whose _ids overlap both passed the clash check, and the
    loser's merge failed halfway (500, 20,000 of 30,000 documents merged). One wins whole; the
    other is a 409 Conflict that merged nothing."""
    mongo_db.target.insert_one({"_id": -1})
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def append(name: str, ids: range) -> None:
        documents = ({"_id": i, "by": name} for i in ids)

        def gated() -> object:
            yield from documents
            barrier.wait(30)  # both temporary collections written: publish at the same moment

        try:
            outcome[name] = datasetloader.load_documents(mongo_db.target, gated(), mode="append", batch_size=5000)
        except Exception as exc:  # the test reads what each thread met
            outcome[name] = exc

    threads = [
        threading.Thread(target=append, args=("a", range(0, 30_000))),
        threading.Thread(target=append, args=("b", range(10_000, 40_000))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    won = [name for name, result in outcome.items() if result == 30_000]
    lost = [result for result in outcome.values() if isinstance(result, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcome
    assert isinstance(lost[0], Conflict), repr(lost[0])
    by = Counter(d.get("by") for d in mongo_db.target.find({}, {"by": 1}))
    assert by == {won[0]: 30_000, None: 1}  # the winner whole, nothing of the loser
    assert mongo_db.list_collection_names() == ["target"]


def test_ragged_row_deep_in_a_large_file_is_refused_after_batches_were_written(mongo_db):
    before = _existing(mongo_db.target)
    rows = "\n".join(f"{i};{i * 2}" for i in range(12_000))
    data = f"a;b\n{rows}\n1;2;3\n".encode()
    with pytest.raises(InvalidDataset, match="line 12002"):
        datasetloader.load_csv(mongo_db.target, io.BytesIO(data), batch_size=1000)
    assert sorted(d["keep"] for d in mongo_db.target.find()) == before
    assert mongo_db.list_collection_names() == ["target"]


def test_replace_and_append(mongo_db):
    datasetloader.load_csv(mongo_db.c, io.BytesIO(b"x\n1\n2\n"))
    datasetloader.load_csv(mongo_db.c, io.BytesIO(b"x\n3\n"), mode="append")
    assert sorted(d["x"] for d in mongo_db.c.find()) == [1, 2, 3]
    datasetloader.load_csv(mongo_db.c, io.BytesIO(b"x\n9\n"))
    assert [d["x"] for d in mongo_db.c.find()] == [9]


def test_json_documents_and_id_clash_on_append(mongo_db):
    docs = [{"_id": 1, "a": 1}, {"_id": 2, "a": {"b": 2}}]
    assert datasetloader.load_documents(mongo_db.j, datasetreaders.iter_json_documents(docs)) == 2
    with pytest.raises(Conflict, match="already exists") as clash:
        datasetloader.load_documents(
            mongo_db.j, datasetreaders.iter_json_documents([{"_id": 3}, {"_id": 2}]), mode="append"
        )
    assert clash.value.status == 409
    assert sorted(d["_id"] for d in mongo_db.j.find()) == [1, 2]
    for bad, message in [
        ({"a": 1}, "array"),
        ([1], "not an object"),
        ([{"a.b": 1}], "'.'"),
        ([{"x": {"$set": 1}}], "'\\$'"),
        ([{"x": [1, {"$where": "sleep(1000)"}]}], "'\\$'"),  # objects inside arrays too (issue 11)
        ([{"x": [[{"a.b": 1}]]}], "'.'"),
        ([{f"f{i}": i for i in range(1001)}], "1001 fields; a document has at most 1000"),
        ([{"x": [1, {"$where": "sleep(1000)"}]}], "'\\$'"),  # objects inside arrays too (issue 11)
        ([{"x": [[{"a.b": 1}]]}], "'.'"),
        ([{f"f{i}": i for i in range(1001)}], "1001 fields; a document has at most 1000"),
        ([{"x": float("nan")}], "finite"),
    ]:
        with pytest.raises(InvalidDataset, match=message):
            datasetloader.load_documents(mongo_db.j, datasetreaders.iter_json_documents(bad))


def test_a_json_file_loads_in_batches_of_bounded_text(mongo_db):
    """Records of 100 kB each: a batch is cut at DATASET_BATCH_BYTES of text, not at 5,000 records."""
    records = [{"i": i, "v": "x" * 100_000} for i in range(30)]
    read = [0]

    def parsed():
        for record in records:
            read[0] += 100_000
            yield record

    batches = list(datasetloader._batches(parsed(), 5000, lambda: read[0]))
    assert [len(batch) for batch in batches] == [11, 11, 8]
    assert datasetloader.load_json(mongo_db.j, io.BytesIO(json.dumps(records).encode())) == 30
    assert mongo_db.j.count_documents({}) == 30


def test_a_document_refused_by_mongodb_after_batches_were_written_leaves_the_target(mongo_db):
    """Inserts run one batch behind the parse (issue 16): a batch the server refuses, after
    others went in, still stops the load with a 4xx and leaves the target exactly as it was."""
    before = _existing(mongo_db.target)
    docs = [{"_id": i} for i in range(12_000)] + [{"_id": 5}]  # a clash in the third batch

    def parsed():
        yield from docs

    with pytest.raises(InvalidDataset, match="rejected by MongoDB"):
        datasetloader.load_documents(mongo_db.target, parsed(), batch_size=5000)
    assert sorted(d["keep"] for d in mongo_db.target.find()) == before
    assert mongo_db.list_collection_names() == ["target"]
