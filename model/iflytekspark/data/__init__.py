"""Data preprocessing for iFlytekSpark: alpaca JSON to MindRecord rows (``python -m iflytekspark.data``)."""
