"""The engine: every KPI and payout rule, pure and vectorised, with no I/O (imports only numpy and pandas)."""
