"Reference answer to nbs/26c_reports.ipynb's exercise, and a typical mistake."

def table1_row(rows, category, columns=(("indoor", "simple"), ("indoor", "complex"), ("outdoor", "simple"), ("outdoor", "complex"))):
    counts = [sum(r["category"] == category and (r["scene"], r["complexity"]) == k for r in rows) for k in columns]
    return counts + [sum(counts)]

def table1_row_wrong(rows, category):
    "Orders the columns by complexity first: indoor simple, outdoor simple, indoor complex, outdoor complex."
    return table1_row(rows, category, (("indoor", "simple"), ("outdoor", "simple"), ("indoor", "complex"), ("outdoor", "complex")))
