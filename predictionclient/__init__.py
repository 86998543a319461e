"""A Python client of the prediction service, and its command line (``python -m predictionclient``).

It needs only ``requests`` and ``tqdm``: copy this folder to any machine that can reach the
service. ``PREDICTION_SERVICE_URL`` and ``PREDICTION_SERVICE_TOKEN`` are its defaults.

    from predictionclient import PredictionClient
    client = PredictionClient()                      # $PREDICTION_SERVICE_URL or http://localhost:5000
    client.load_csv("bank.csv", "datasets.bank")
    job = {"name": "LogisticRegressionWrapper", "inputCollection": "datasets.bank",
           "schema": client.schema("datasets.bank", label="y")}
    model = client.train(job).wait(progress=True)["model_key"]
    client.predict(model, {"age": 41, "job": "management", ...})
"""

from predictionclient.client import Job, PredictionClient, PredictionServiceError

__all__ = ["Job", "PredictionClient", "PredictionServiceError"]
