"""sparkfeatures.py: what the encoding records of the read schema (the encoding itself is held
equal to DataParser's by the algorithms' tests and test_sparkmongo, which run it on Spark)."""

from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from dataparser import DataParser
from predictionservice.sparkfeatures import integral_features

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "age"}, {"key": "x"}, {"key": "n"}, {"key": "s"}, {"key": "job", "values": {"a": 0}}],
}


def test_integral_features_are_the_numeric_features_read_as_whole_numbers():
    read = StructType(
        [
            StructField("age", LongType()),
            StructField("x", DoubleType()),
            StructField("n", IntegerType()),
            StructField("s", StringType()),  # numbers spelled as text: not integral
            StructField("job", LongType()),  # a categorical is BYTES whatever its column
            StructField("y", StringType()),
        ]
    )
    assert integral_features(DataParser(SCHEMA), read) == ["age", "n"]
