"""The engine: cycles, pricing, tax, adjustments, credit notes and the plan of a run. Pure: it imports only
the vocabulary (model, money, errors, i18n), reads no file and writes none."""
