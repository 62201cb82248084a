"""Documents made from the ledger's invoices: what an invoice shows, its PDF and e-invoice, its email, the
usage details workbook, and the look (templates, logo) they are made with."""
