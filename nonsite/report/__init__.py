"""The period report (统计报表): its figures (``figures``), as a PDF (``pdf``) and as an Excel
workbook with charts (``workbook``), written by ``nonsite report``."""
