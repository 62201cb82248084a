"""Inputs: the workbook and Partner Center's files read, and checked into records that carry their source."""
