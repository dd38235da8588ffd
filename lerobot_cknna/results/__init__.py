"""What a run leaves behind: feature files, scores, the report, plots, comparisons across runs, provenance."""
