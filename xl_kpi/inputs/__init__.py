"""What xl_kpi reads: the plan workbook, facts files and raw CRM exports, checked cell by cell."""
