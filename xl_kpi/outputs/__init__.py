"""What xl_kpi writes into the output folder: KPI cards, the summary, results files, manifests."""
