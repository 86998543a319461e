"""A batch read by a typed, compiled JSON decoder (msgspec): what bounds bench_predict's batch
ratio even if the service changed its codec. The records are decoded straight into one struct per
record whose fields are the model's features, typed (a float, or one of the listed categories),
so no dict and no key string is made and every value is checked in C; the feature matrix is then
built from the structs' columns as DataParser.encode builds it from dicts. Never the service's:
a bench extra (requirements-bench.txt)."""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Literal

import msgspec
import numpy as np

from dataparser import DataParser


class TypedDecoder:
    """Decodes a /predict/ body of records into the parser's feature matrix in one typed pass."""

    def __init__(self, parser: DataParser):
        self.parser = parser
        fields = [(f.key, float if f.values is None else Literal[tuple(f.values)]) for f in parser.features]
        record = msgspec.defstruct("Record", fields, gc=False)
        body = msgspec.defstruct("Body", [("modelkey", str), ("records", msgspec.Raw)], gc=False)
        self.body = msgspec.json.Decoder(body)  # the envelope; the records are left as raw bytes
        self.records = msgspec.json.Decoder(list[record])  # resolved model's typed records
        self.row = attrgetter(*(f.key for f in parser.features))

    def encode(self, data: bytes) -> np.ndarray:
        """The feature matrix of the body's records (raises msgspec.ValidationError on a bad one)."""
        records = self.records.decode(self.body.decode(data).records)
        columns = list(zip(*map(self.row, records), strict=True))
        matrix = np.zeros((len(records), self.parser.num_features), dtype=np.float64)
        rows = np.arange(len(records))
        for f, column in zip(self.parser.features, columns, strict=True):
            if f.values is None:
                matrix[:, f.offset] = np.asarray(column, dtype=np.float64)
            elif not f.constant:
                values: Any = f.values
                matrix[rows, f.offset + np.fromiter(map(values.__getitem__, column), np.int64, len(column))] = 1.0
        return matrix
