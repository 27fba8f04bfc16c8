"""The demand-forecasting capstone (``kindml run forecast``): many daily series, a global MLP, batch forecasts written back to Feast."""
