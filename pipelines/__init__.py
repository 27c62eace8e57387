"""Jobs that run on Ray tasks: report runs and exports."""
