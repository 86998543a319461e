"""Writes examples/churn.csv: 300 made-up customers of a subscription service, and whether each
left (churned). Made up so the repository may ship it; seeded, so the file is always the same.
Who leaves is a noisy logistic function of the columns: learnable, never separable, so a model
trained on it gives probabilities strictly between 0 and 1.

    python examples/make_churn.py
"""

import csv
import math
import random
from pathlib import Path

PLANS = {"basic": 0.8, "standard": 0.0, "premium": -0.9}


def main() -> None:
    rng = random.Random(12)
    rows = []
    for _ in range(300):
        plan = rng.choice(list(PLANS))
        tenure = rng.randint(1, 72)
        fee = round(rng.uniform(10, 120), 2)
        calls = min(rng.randint(0, 4) + (rng.random() < 0.2) * rng.randint(1, 5), 9)
        margin = -0.9 - 0.05 * tenure + 0.015 * fee + 0.45 * calls + PLANS[plan] + rng.gauss(0, 0.8)
        churned = "yes" if rng.random() < 1 / (1 + math.exp(-margin)) else "no"
        rows.append({"tenure_months": tenure, "monthly_fee": fee, "plan": plan, "support_calls": calls,
                     "churned": churned})  # fmt: skip
    with open(Path(__file__).with_name("churn.csv"), "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
